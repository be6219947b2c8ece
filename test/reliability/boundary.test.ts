// The boundary rule: a tensor's dtype, shape and data are checked together (a real typed array of
// the right kind, not detached, length = the product of an integer shape) every time the API takes
// it, and what was checked is what the native code works on. Each case here was a crash or a wrong
// success before.
import t from 'tap';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Tensor, layerNorm, layerNormSync, rmsNorm, rmsNormSync, gatedResidual, gatedResidualSync, gelu, quantizeSync,
  absMax, mseClipSearch, Histogram, columnNorms, packWeights, QuantizedLinear, LinearF32, videoMetrics,
  encodeSafetensors, decodeSafetensors, writeSafetensors, readSafetensors, expectTensor, toFloat32,
} from '../../lib/index.js';

const f32 = (shape: number[], seed = 1) => new Tensor('float32', shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(seed * (i + 1))));
function detached(shape = [4, 8]) {
  const x = f32(shape);
  structuredClone(x.data.buffer, { transfer: [x.data.buffer] });
  return x;
}
function fromPrototype(fields: Record<string, unknown>): Tensor {
  return Object.assign(Object.create(Tensor.prototype), fields) as Tensor;
}

t.test('the norms refuse a detached tensor (they aborted the process)', async (t) => {
  const x = f32([4, 8]);
  t.throws(() => layerNormSync(detached()), { name: 'TypeError', message: /\bx\b.*detached/ });
  t.throws(() => rmsNormSync(detached()), { name: 'TypeError', message: /\bx\b.*detached/ });
  t.throws(() => rmsNormSync(x, { weight: detached([8]) }), { name: 'TypeError', message: /options\.weight.*detached/ });
  t.throws(() => gatedResidualSync(detached(), x, f32([8])), { name: 'TypeError', message: /\bx\b.*detached/ });
  t.throws(() => gatedResidualSync(x, x, detached([8])), { name: 'TypeError', message: /gate.*detached/ });
  await t.rejects(() => layerNorm(detached()), { name: 'TypeError', message: /detached/ });
  await t.rejects(() => rmsNorm(x, { weight: detached([8]) }), { name: 'TypeError', message: /detached/ });
  await t.rejects(() => gatedResidual(x, detached(), f32([8])), { name: 'TypeError', message: /\by\b.*detached/ });
  await t.rejects(() => gelu(detached()), { name: 'TypeError', message: /detached/ });
});

t.test('tensors are frozen and only the constructor makes them', async (t) => {
  const x = f32([4, 8]);
  t.throws(() => {
    (x as { data: unknown }).data = new Float32Array(3);
  }, TypeError, 'data cannot be reassigned');
  t.throws(() => {
    (x as { shape: unknown }).shape = [2, 2];
  }, TypeError, 'shape cannot be reassigned');
  const made = fromPrototype({ dtype: 'float32', shape: [2, 16.5], data: new Float32Array(33), size: 33 });
  t.notOk(made instanceof Tensor, 'an object made from Tensor.prototype is not a Tensor');
  t.throws(() => expectTensor(made, 'x'), { name: 'TypeError', message: /Expected a Tensor for x/ });
  const w = f32([16, 8]);
  const fractional = fromPrototype({ dtype: "float32", shape: [16.5, 8], data: w.data, size: 132 }) as Tensor<"float32">;
  for (const [name, call] of [
    ['absMax', () => absMax(fractional)],
    ['mseClipSearch', () => mseClipSearch(fractional, { candidates: [[-1, 1]], dtype: 'int8' })],
    ['Histogram.add', () => new Histogram({ bins: 8, lo: -1, hi: 1 }).add(fractional)],
    ['columnNorms', () => columnNorms(fractional)],
    ['packWeights', () => packWeights(fractional)],
    ['QuantizedLinear.fromFloat', () => QuantizedLinear.fromFloat(fractional, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } })],
    ['videoMetrics (Float64Array data in a float32 tensor)', () => videoMetrics(fromPrototype({ dtype: 'float32', shape: [1, 1, 2, 2], data: new Float64Array(4), size: 4 }), f32([1, 1, 2, 2]))],
    ['rmsNorm weight with null data', () => rmsNormSync(f32([2, 8]), { weight: fromPrototype({ dtype: 'float32', shape: [8], data: null, size: 8 }) })],
    ['toFloat32', () => toFloat32(fractional)],
  ] as const) {
    await t.rejects(async () => call(), { name: 'TypeError', message: /Expected a Tensor|Expected .*Tensor/ }, `${name} refuses it`);
  }
});

t.test('typed-array subclasses cannot lie about their kind or length', async (t) => {
  class NamedAsFloat32 extends Uint8Array {
    static override get name() {
      return 'Float32Array';
    }
  }
  t.throws(() => new Tensor('float32', [4], new NamedAsFloat32(16) as unknown as Float32Array), { name: 'TypeError', message: /Float32Array/ });
  class Longer extends Float32Array {
    override get length() {
      return 100;
    }
  }
  t.throws(() => new Tensor('float32', [100], new Longer(4)), { name: 'RangeError', message: /Expected 100 elements.*received 4/ });
  const ok = new Tensor('float32', [4], new Longer(4));
  t.equal(Object.getPrototypeOf(ok.data), Float32Array.prototype, 'a subclass is replaced by a plain view of the same memory');
  t.equal(ok.data.length, 4);
  const buf = Buffer.from([1, 2, 3]);
  const u8 = new Tensor('uint8', [3], buf);
  t.same(Array.from(u8.data), [1, 2, 3], 'a Buffer is taken as its bytes');
});

t.test("an option that is not one of the layer's modes is an error", async (t) => {
  const l = LinearF32.fromFloat(f32([4, 8]));
  t.throws(() => l.forwardSync(f32([2, 8]), { mode: 'bogus' as never }), { name: 'RangeError', message: /options\.mode/ });
  await t.rejects(l.forward(f32([2, 8]), { mode: 'bogus' as never }), { name: 'RangeError', message: /options\.mode/ });
  t.equal(l.forwardSync(f32([2, 8]), { mode: 'fast' }).data.length, 8);
});

t.test('quantize gives the same clean error as before for a detached input', async (t) => {
  t.throws(() => quantizeSync(detached(), { dtype: 'int8' }), { name: 'TypeError', message: /\bx\b.*detached/ });
});

t.test('safetensors name maps have no prototype: a tensor may be called __proto__', async (t) => {
  const named: Record<string, Tensor> = Object.create(null);
  named['__proto__'] = f32([2]);
  named['dtype'] = f32([3]);
  const bytes = encodeSafetensors(named, { ['__proto__']: 'meta', format: 'pt' });
  const { tensors, metadata } = decodeSafetensors(bytes);
  t.equal(Object.getPrototypeOf(tensors), null, 'tensors is prototype-free');
  t.equal(Object.getPrototypeOf(metadata), null, 'metadata is prototype-free');
  t.ok(Object.prototype.hasOwnProperty.call(tensors, '__proto__'), 'the tensor named __proto__ is an entry');
  t.same(Object.keys(tensors).sort(), ['__proto__', 'dtype']);
  t.same(Array.from(tensors['__proto__'].data), Array.from(f32([2]).data));
  t.equal(tensors['dtype'].shape[0], 3, "a tensor named dtype is not a field of the map's prototype");
  t.equal(metadata['__proto__'], 'meta');
  t.equal((tensors as unknown as { shape?: unknown }).shape, undefined, 'no inherited tensor fields');
});

t.test('writeSafetensors refuses a lying Tensor-like and writes nothing', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-boundary-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'x.safetensors');
  const liar = fromPrototype({ dtype: 'float32', shape: [1000], data: new Float32Array(4), size: 1000 });
  await t.rejects(writeSafetensors(file, { w: liar }), { name: 'TypeError', message: /tensors\.w/ });
  await t.rejects(writeSafetensors(file, { w: detached() }), { name: 'TypeError', message: /tensors\.w.*detached/ });
  t.notOk(existsSync(file), 'no file was written');
  await writeSafetensors(file, { w: f32([4]) });
  t.same(Array.from((await readSafetensors(file)).tensors.w.data), Array.from(f32([4]).data), 'a real tensor round-trips');
});
