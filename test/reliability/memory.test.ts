// A loop that builds and drops layers without ever yielding to the event loop (where N-API
// finalizers run), as a calibration or search loop does. With dispose() the native weights go at
// once, and the resident memory stays bounded; before, it grew by about one layer per iteration
// (5.2 GB after 8,000).
import t from 'tap';
import { Tensor, QuantizedLinear, LinearF32, DualScaleLinear, packWeights } from '../../lib/index.js';
import { lastJson, runChild } from './child.js';

t.test('a build/dispose loop of 6000 layers keeps the resident memory bounded', async (t) => {
  const iterations = 6000;
  const r = await runChild('layer-loop.mjs', [String(iterations)], { timeoutMs: 180_000 });
  t.equal(r.code, 0, `the child finished (${r.stderr.slice(-300)})`);
  const out = lastJson<{ iterations: number; rssBefore: number; rssMid: number; rssAfter: number; weightBytes: number; afterDispose: number; useAfterDispose: string }>(r);
  t.ok(out);
  if (!out) return;
  const mib = (b: number) => (b / 2 ** 20).toFixed(0);
  t.comment(`library ${(out as { index?: string }).index}`);
  t.comment(`RSS ${mib(out.rssBefore)} MiB -> ${mib(out.rssMid)} MiB after ${Math.floor(iterations / 3)} layers -> ${mib(out.rssAfter)} MiB after ${iterations} (layers of ${out.weightBytes} native bytes)`);
  // Undisposed, the last two thirds of the loop alone would hold 4000 * weightBytes (about 510 MiB).
  const late = out.rssAfter - out.rssMid;
  t.ok(late < 150 * 2 ** 20, `the last ${iterations - Math.floor(iterations / 3)} layers grow the RSS by ${mib(late)} MiB, under 150 MiB (undisposed: ${mib((iterations * 2 / 3) * out.weightBytes)} MiB)`);
  t.ok(out.rssAfter - out.rssBefore < 300 * 2 ** 20, `the whole loop grows the RSS by ${mib(out.rssAfter - out.rssBefore)} MiB, under 300 MiB`);
  t.ok(out.weightBytes >= 256 * 512, 'the int8 layer holds its weights natively');
  t.equal(out.afterDispose, 0, 'a disposed layer holds no native bytes');
  t.match(out.useAfterDispose, /^Error: Use after dispose\(\)/, 'a disposed layer used again is a clear Error');
});

t.test('dispose() is idempotent and use after dispose is an Error', async (t) => {
  const w = new Tensor('float32', [16, 8], Float32Array.from({ length: 128 }, (_, i) => Math.sin(i)));
  const x = new Tensor('float32', [2, 8], Float32Array.from({ length: 16 }, (_, i) => Math.cos(i)));
  const layers = [
    LinearF32.fromFloat(w),
    QuantizedLinear.fromFloat(w, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } }),
    DualScaleLinear.fromFloat(w, { outlierIdx: [1, 3], outlier: { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } }, normal: { weight: { dtype: 'int4' }, activation: { type: 'dynamic' } } }),
  ];
  for (const l of layers) {
    const name = l.constructor.name;
    const before = l.forwardSync(x).data;
    t.ok(l.weightBytes > 0, `${name} holds native bytes`);
    l.dispose!();
    l.dispose!();
    t.equal(l.weightBytes, 0, `${name}: 0 native bytes once disposed`);
    t.throws(() => l.forwardSync(x), /Use after dispose\(\)/, `${name}: forwardSync after dispose`);
    await t.rejects(l.forward(x), /Use after dispose\(\)/, `${name}: forward after dispose`);
    t.equal(before.length, 2 * 16);
  }
  // A layer over shared packed weights does not free them: their owner does.
  const packed = packWeights(w);
  const a = LinearF32.fromFloat(packed);
  const b = LinearF32.fromFloat(packed);
  a.dispose();
  t.throws(() => a.forwardSync(x), /Use after dispose\(\)/);
  t.equal(b.forwardSync(x).data.length, 32, 'the other layer over the same packed weights still runs');
  packed.dispose();
  t.throws(() => b.forwardSync(x), /Use after dispose\(\)/, 'until the packed weights themselves are disposed');
});

t.test('an async forward in flight keeps its weights when the layer is disposed', async (t) => {
  const w = new Tensor('float32', [256, 256], Float32Array.from({ length: 256 * 256 }, (_, i) => Math.sin(i)));
  const x = new Tensor('float32', [512, 256], Float32Array.from({ length: 512 * 256 }, (_, i) => Math.cos(i)));
  const l = QuantizedLinear.fromFloat(w, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } });
  const expected = l.forwardSync(x).data;
  const p = l.forward(x);
  l.dispose();
  t.same((await p).data, expected, 'the call in flight finishes with the weights it started with');
});
