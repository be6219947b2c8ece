import t from 'tap';
import { LinearF32, QuantizedLinear, Tensor, packWeights } from '../../lib/index.js';
import { gemmNative } from '../../lib/gemm/native.js';
import { randTensor, rng } from './reference.js';

const r = rng(31);
const w = randTensor(r, [6, 40]);

t.test('QuantizedLinear rejects bad options with errors naming them', (t) => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{ weight: { dtype: 'int2' } }, 'RangeError', /options.weight.dtype/],
    [{ weight: { scheme: 'affine' } }, 'RangeError', /options.weight.scheme/],
    [{ weight: { groupSize: 24 } }, 'RangeError', /multiple of 16 for options.weight.groupSize/],
    [{ weight: { groupSize: 0 } }, 'RangeError', /options.weight.groupSize/],
    [{ weight: { groupSize: 16.5 } }, 'TypeError', /options.weight.groupSize/],
    [{ weight: { scale: new Float32Array(5) } }, 'RangeError', /6 elements.*options.weight.scale/],
    [{ weight: { scale: Float32Array.of(1, 1, NaN, 1, 1, 1) } }, 'RangeError', /options.weight.scale.*element 2 is NaN/],
    [{ weight: { scale: Float32Array.of(1, 1, 0, 1, 1, 1) } }, 'RangeError', /options.weight.scale/],
    [{ weight: { scale: new Float32Array(6).fill(1), zeroPoint: new Int32Array(6).fill(200) } }, 'RangeError', /options.weight.zeroPoint.*-128 and 127/],
    [{ weight: { dtype: 'int4', scale: new Float32Array(6).fill(1), zeroPoint: new Int32Array(6).fill(8) } }, 'RangeError', /-8 and 7/],
    [{ weight: { zeroPoint: new Int32Array(6) } }, 'TypeError', /options.weight.scale/],
    [{ weight: { scale: [1, 1, 1, 1, 1, 1] } }, 'TypeError', /options.weight.scale/],
    [{ activation: { type: 'perTensor' } }, 'RangeError', /options.activation.type/],
    [{ activation: { type: 'static', scale: NaN, zeroPoint: 0 } }, 'RangeError', /options.activation.scale/],
    [{ activation: { type: 'static', scale: -1, zeroPoint: 0 } }, 'RangeError', /options.activation.scale/],
    [{ activation: { type: 'static', scale: 1e-50, zeroPoint: 0 } }, 'RangeError', /options.activation.scale/],
    [{ activation: { type: 'static', scale: 0.1, zeroPoint: 300, dtype: 'uint8' } }, 'RangeError', /options.activation.zeroPoint/],
    [{ activation: { type: 'static', scale: 0.1, zeroPoint: 1.5 } }, 'TypeError', /options.activation.zeroPoint/],
    [{ activation: { type: 'dynamic', dtype: 'int4' } }, 'RangeError', /options.activation.dtype/],
    [{ activation: 'dynamic' }, 'TypeError', /options.activation/],
    [{ mode: 'slow' }, 'RangeError', /options.mode/],
    [{ bias: new Float32Array(5) }, 'RangeError', /options.bias/],
    [{ bias: Float32Array.of(1, 2, 3, Infinity, 5, 6) }, 'RangeError', /options.bias/],
    [7, 'TypeError', /options/],
  ];
  for (const [options, name, message] of cases) {
    t.throws(() => QuantizedLinear.fromFloat(w, options as never), { name, message }, JSON.stringify(options, (_k, v) => (ArrayBuffer.isView(v) ? `${v.constructor.name}` : v)));
  }
  t.throws(() => QuantizedLinear.fromFloat(Tensor.zeros('float16', [6, 40]) as never), { name: 'TypeError', message: /weight to have dtype float32/ });
  t.throws(() => QuantizedLinear.fromFloat(randTensor(r, [2, 32769])), { name: 'RangeError', message: /32768 input features/ });
  t.throws(() => QuantizedLinear.fromQuantized(Tensor.zeros('uint8', [6, 40]) as never, { scale: new Float32Array(6) }), { name: 'TypeError', message: /weight to have dtype int8 or int4/ });
  t.throws(() => QuantizedLinear.fromQuantized(Tensor.zeros('int8', [6, 40]), { scale: new Float32Array(6) }), { name: 'RangeError', message: /options.scale/ });
  t.throws(() => QuantizedLinear.fromQuantized(Tensor.zeros('int8', [6, 40]), {} as never), { name: 'TypeError', message: /options.scale/ });
  t.end();
});

t.test('forward rejects inputs that do not fit the layer', async (t) => {
  const layer = QuantizedLinear.fromFloat(w);
  t.throws(() => layer.forwardSync(randTensor(r, [3, 39])), { name: 'RangeError', message: /last dimension of x to be 40/ });
  await t.rejects(layer.forward(Tensor.zeros('int8', [3, 40]) as never), { name: 'TypeError', message: /x to have dtype float32/ });
  t.throws(() => layer.forwardSync(randTensor(r, [3, 40]), { mode: 'fastest' as never }), { name: 'RangeError', message: /options.mode/ });
  t.throws(() => layer.debugAccumulatorsSync(randTensor(r, [40, 1])), { name: 'RangeError', message: /x/ });
});

t.test('the native side re-checks handle kinds and lengths', (t) => {
  const nat = gemmNative();
  const q = QuantizedLinear.fromFloat(w);
  const f = packWeights(w);
  const x = new Float32Array(2 * 40);
  t.throws(() => nat.gemmF32Forward(q.packed.handle, x, 2, null, new Float32Array(12), false), { name: 'TypeError', message: /not float32 weights/ });
  t.throws(() => nat.gemmIntForward(f.handle, x, 2, null, new Float32Array(12), false, false), { name: 'TypeError', message: /not a quantized layer/ });
  t.throws(() => nat.gemmIntForward({} as never, x, 2, null, new Float32Array(12), false, false), { name: 'TypeError' });
  t.throws(() => nat.gemmIntForward(q.packed.handle, x, 3, null, new Float32Array(18), false, false), { name: 'RangeError', message: /x has 80 elements, expected 120/ });
  t.throws(() => nat.gemmIntForward(q.packed.handle, x, 2, null, new Float32Array(11), false, false), { name: 'RangeError', message: /y has 11/ });
  t.throws(() => nat.gemmF32Forward(f.handle, x, 2, new Float32Array(5), new Float32Array(12), false), { name: 'RangeError', message: /bias/ });
  t.throws(() => nat.gemmF32Forward(f.handle, new Int32Array(80) as never, 2, null, new Float32Array(12), false), { name: 'TypeError', message: /x/ });
  const h = nat.gemmIntCreate(4, 10, null);
  t.throws(() => nat.gemmIntForward(h, new Float32Array(10), 1, null, new Float32Array(4), false, false), { message: /do not cover/ });
  const spec = Int32Array.of(0, 10, 4, 0, 1, 4, 0, 0, 1);
  t.throws(() => nat.gemmIntAddSegment(h, spec, 1, null, new Int8Array(40).fill(9), new Float32Array(4).fill(1), new Int32Array(4), null, null), {
    name: 'RangeError',
    message: /int4 weight value out of range/,
  });
  t.throws(() => nat.gemmIntAddSegment(h, Int32Array.of(0, 11, 8, 0, 1, 4, 0, 0, 1), 1, new Float32Array(40), null, null, null, null, null), {
    name: 'RangeError',
  });
  t.throws(() => nat.gemmIntCreate(4, 10, Int32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 8)), { name: 'RangeError', message: /perm/ });
  t.throws(() => LinearF32.fromFloat(q.packed as never), { name: 'TypeError', message: /packed for a quantized layer/ });
  t.end();
});
