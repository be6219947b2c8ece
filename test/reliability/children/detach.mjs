// Child of test/reliability/async.test.ts (run with --expose-gc): transfers (detaches) the ArrayBuffer
// of an input, or of an output, while an async native call that reads or writes it is in flight,
// drops the transferred copy and forces garbage collection, many times. Each call must either give
// the result it would have given without the transfer, or reject with an Error. Prints
// {runs, correct, rejected, wrong, messages} as JSON.
//   node --expose-gc detach.mjs <index.js> <runs>
import { loadChildLibrary } from './library.mjs';

const { lib, args: [runsArg = '5'] } = await loadChildLibrary();
const runs = Number(runsArg);
const { Tensor } = lib;
const f32 = (shape, seed = 1) => new Tensor('float32', shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(seed * (i + 1))));
const same = (a, b) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));

const litter = [];
function steal(buffer) {
  // Transfer the buffer away, drop the copy, and let the collector free it.
  const bytes = buffer.byteLength;
  let moved = structuredClone(buffer, { transfer: [buffer] });
  moved = null;
  for (let i = 0; i < 3; i++) globalThis.gc();
  // Fill whatever memory was freed with garbage, so that a call still reading it would go wrong.
  for (let i = 0; i < 4; i++) litter.push(new Uint8Array(bytes).fill(0xff));
  return moved;
}

const w = f32([512, 512], 2);
const q = lib.QuantizedLinear.fromFloat(w, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } });
const f = lib.LinearF32.fromFloat(w);
const cases = {
  'quantized forward, x detached': async () => {
    const x = f32([4096, 512]);
    const expected = q.forwardSync(x).data;
    const p = q.forward(x);
    steal(x.data.buffer);
    return [expected, (await p).data];
  },
  'fp32 forward, x detached': async () => {
    const x = f32([4096, 512]);
    const expected = f.forwardSync(x).data;
    const p = f.forward(x);
    steal(x.data.buffer);
    return [expected, (await p).data];
  },
  'quantize, x detached': async () => {
    const x = f32([1 << 20]);
    const expected = lib.quantizeSync(x, { dtype: 'int8' }).data.data;
    const p = lib.quantize(x, { dtype: 'int8' });
    steal(x.data.buffer);
    return [expected, (await p).data.data];
  },
  'layerNorm, out detached': async () => {
    const x = f32([512, 256]);
    const out = Tensor.zeros('float32', [512, 256]);
    const p = lib.layerNorm(x, { out });
    steal(out.data.buffer);
    await p;
    return [null, null];
  },
  'rmsNorm, weight detached': async () => {
    const x = f32([512, 256]);
    const weight = f32([256], 3);
    const expected = lib.rmsNormSync(x, { weight }).data;
    const p = lib.rmsNorm(x, { weight });
    steal(weight.data.buffer);
    return [expected, (await p).data];
  },
};
const result = { runs, correct: 0, rejected: 0, wrong: 0, messages: [] };
for (let r = 0; r < runs; r++) {
  for (const [name, run] of Object.entries(cases)) {
    try {
      const [expected, got] = await run();
      if (expected === null || same(expected, got)) result.correct++;
      else {
        result.wrong++;
        result.messages.push(`${name}: a wrong result`);
      }
    } catch (e) {
      if (e instanceof Error && e.message) {
        result.rejected++;
        if (result.messages.length < 10) result.messages.push(`${name}: ${e.message}`);
      } else {
        result.wrong++;
        result.messages.push(`${name}: threw ${String(e)}`);
      }
    }
    litter.length = 0;
    globalThis.gc();
  }
}
process.stdout.write(JSON.stringify(result) + '\n');
