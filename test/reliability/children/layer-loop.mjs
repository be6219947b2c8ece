// Child of test/reliability/memory.test.ts: builds and drops layers in a loop that never yields to
// the event loop (where N-API finalizers run), disposing each one, and reports the resident memory
// before and after. Prints JSON.
//   node layer-loop.mjs <index.js> <iterations>
import { loadChildLibrary } from './library.mjs';

const { lib, index, args: [iterationsArg = '2000'] } = await loadChildLibrary();
const iterations = Number(iterationsArg);
const { Tensor } = lib;
const w = new Tensor('float32', [256, 512], Float32Array.from({ length: 256 * 512 }, (_, i) => Math.sin(i)));
const x = new Tensor('float32', [4, 512], Float32Array.from({ length: 4 * 512 }, (_, i) => Math.cos(i)));

const probe = lib.QuantizedLinear.fromFloat(w, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } });
const weightBytes = probe.weightBytes;
probe.dispose();
const afterDispose = probe.weightBytes;

const rssBefore = process.memoryUsage().rss;
let rssMid = 0;
for (let i = 0; i < iterations; i++) {
  if (i === Math.floor(iterations / 3)) rssMid = process.memoryUsage().rss;
  const kind = i % 3;
  const layer = kind === 0
    ? lib.QuantizedLinear.fromFloat(w, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } })
    : kind === 1
      ? lib.DualScaleLinear.fromFloat(w, { outlierIdx: [1, 7, 300], outlier: { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } }, normal: { weight: { dtype: 'int4' }, activation: { type: 'dynamic' } } })
      : lib.LinearF32.fromFloat(w);
  layer.forwardSync(x);
  layer.dispose();
  if (i % 50 === 0) lib.matmulSync(x, w); // packs for the call and frees it at once
}
const rssAfter = process.memoryUsage().rss;
let useAfterDispose = '';
try {
  probe.forwardSync(x);
} catch (e) {
  useAfterDispose = `${e.constructor.name}: ${e.message}`;
}
process.stdout.write(JSON.stringify({ index, iterations, rssBefore, rssMid, rssAfter, weightBytes, afterDispose, useAfterDispose }) + '\n');
