// DeviceQuantizedLinear (the CUDA W8A8 layer) on any machine: argument checks naming the argument,
// made before any device is looked for, and what a machine without a device sees. The kernels
// themselves are checked against the CPU layer by test-gpu/gemm.test.mjs on GPU machines; here, with
// a device present, one small comparison runs.
import t from 'tap';
import { backends, DeviceQuantizedLinear, DeviceTensor, QuantizedLinear, Tensor } from '../../lib/index.js';
import { native } from '../../lib/native/binding.js';
import { rng } from '../helpers/rng.js';

const { cuda } = backends();
const hasDevice = cuda.devices.length > 0;

function randomInt8(n: number, k: number, seed: number): Tensor<'int8'> {
  const r = rng(seed);
  return new Tensor('int8', [n, k], Int8Array.from({ length: n * k }, () => Math.floor(r() * 256) - 128));
}

function randomFloat(shape: number[], seed: number): Tensor<'float32'> {
  const r = rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  return new Tensor('float32', shape, Float32Array.from({ length: size }, () => (r() - 0.5) * 6));
}

const N = 5;
const K = 37;
const q = randomInt8(N, K, 1);
const scale = new Float32Array(N).fill(0.01);

t.test('fromQuantized checks its arguments and names them', async (t) => {
  const bad = async (weight: unknown, options: unknown, error: { name: string; message: RegExp }, what: string) =>
    t.rejects(DeviceQuantizedLinear.fromQuantized(weight as never, options as never), error, what);
  await bad([1, 2], { scale }, { name: 'TypeError', message: /Tensor for weight/ }, 'not a tensor');
  await bad(randomFloat([N, K], 2), { scale }, { name: 'TypeError', message: /weight/ }, 'float weights');
  await bad(new Tensor('int8', [K], new Int8Array(K)), { scale }, { name: 'RangeError', message: /weight to have shape \[outFeatures, inFeatures\]/ }, 'rank 1');
  await bad(new Tensor('int8', [0, K], new Int8Array(0)), { scale }, { name: 'RangeError', message: /weight/ }, 'empty');
  await bad(new Tensor('int8', [1, 32769], new Int8Array(32769)), { scale: new Float32Array(1).fill(1) }, { name: 'RangeError', message: /at most 32768 input features/ }, 'K too large');
  await bad(q, undefined, { name: 'TypeError', message: /options/ }, 'no options');
  await bad(q, {}, { name: 'TypeError', message: /options\.scale/ }, 'no scale');
  await bad(q, { scale: new Float32Array(N + 1) }, { name: 'RangeError', message: /options\.scale/ }, 'scale length');
  await bad(q, { scale: new Float32Array(N) }, { name: 'RangeError', message: /positive finite values in options\.scale/ }, 'zero scale');
  await bad(q, { scale, zeroPoint: new Int32Array(N).fill(128) }, { name: 'RangeError', message: /options\.zeroPoint/ }, 'zero point range');
  await bad(q, { scale, bias: new Float32Array(N - 1) }, { name: 'RangeError', message: /options\.bias/ }, 'bias length');
  await bad(q, { scale, bias: new Float32Array(N).fill(NaN) }, { name: 'RangeError', message: /bias/ }, 'bias not finite');
  await bad(q, { scale, activation: { type: 'dynamic', dtype: 'int4' } }, { name: 'RangeError', message: /options\.activation\.dtype/ }, 'activation dtype');
  await bad(q, { scale, activation: { type: 'static', scale: 0.1, zeroPoint: 300 } }, { name: 'RangeError', message: /options\.activation\.zeroPoint/ }, 'static zero point');
  await bad(q, { scale, device: -1 }, { name: 'RangeError', message: /options\.device/ }, 'negative device');
  await bad(q, { scale, device: 0.5 }, { name: 'TypeError', message: /integer for options\.device/ }, 'fractional device');
});

t.test('fromLayer takes only int8 per-channel QuantizedLinear layers', async (t) => {
  const w = randomFloat([N, 64], 3);
  await t.rejects(DeviceQuantizedLinear.fromLayer({} as never), { name: 'TypeError', message: /QuantizedLinear for layer/ });
  await t.rejects(DeviceQuantizedLinear.fromLayer(QuantizedLinear.fromFloat(w, { weight: { dtype: 'int4' } })), {
    name: 'RangeError',
    message: /int8 weights per output channel .* but received int4/,
  });
  await t.rejects(DeviceQuantizedLinear.fromLayer(QuantizedLinear.fromFloat(w, { weight: { groupSize: 32 } })), {
    name: 'RangeError',
    message: /in groups of 32/,
  });
  await t.rejects(DeviceQuantizedLinear.fromLayer(QuantizedLinear.fromFloat(w), { device: -2 }), { name: 'RangeError', message: /options\.device/ });
});

t.test('the native entry point re-checks sizes and handles before any GPU work', async (t) => {
  interface GemmNative {
    cudaHandle(): object;
    cudaGemmW8A8(...args: unknown[]): Promise<void>;
  }
  const n = native<GemmNative>();
  const h = n.cudaHandle();
  const args = (m: number, k: number, x: unknown) => [x, m, k, 4, h, h, h, h, null, true, false, false, 1, 0, h, false, null, null, false, null];
  t.throws(() => n.cudaGemmW8A8(...args(1, 0, h)), { name: 'RangeError', message: /0 < k <= 32768/ }, 'k = 0');
  t.throws(() => n.cudaGemmW8A8(...args(1, 40000, h)), { name: 'RangeError', message: /0 < k <= 32768/ }, 'k too large');
  t.throws(() => n.cudaGemmW8A8(...args(0, 8, h)), { name: 'RangeError', message: /m, n > 0/ }, 'm = 0');
  t.throws(() => n.cudaGemmW8A8(...args(2, 8, {})), { name: 'TypeError', message: /device buffer/ }, 'x not a buffer');
  t.throws(() => n.cudaGemmW8A8(...args(2, 8, h)), { message: /x is not allocated or was disposed/ }, 'empty handle');
});

if (!hasDevice) {
  t.test('without a device: valid layers reject with "no CUDA device: <status>"', async (t) => {
    const expected = { name: 'Error', message: `no CUDA device: ${cuda.status}` };
    await t.rejects(DeviceQuantizedLinear.fromQuantized(q, { scale }), expected);
    await t.rejects(DeviceQuantizedLinear.fromQuantized(q, { scale, device: 3, activation: { type: 'static', scale: 0.5, zeroPoint: 3 } }), expected);
    await t.rejects(DeviceQuantizedLinear.fromLayer(QuantizedLinear.fromFloat(randomFloat([N, K], 4))), expected);
  });
} else {
  t.test('with a device: accumulators and outputs equal the CPU layer', async (t) => {
    const cpu = QuantizedLinear.fromQuantized(q, { scale, zeroPoint: new Int32Array(N).fill(3), bias: new Float32Array(N).fill(0.25) });
    const gpu = await DeviceQuantizedLinear.fromLayer(cpu);
    const x = randomFloat([3, K], 5);
    const want = cpu.debugAccumulatorsSync(x);
    const got = await gpu.debugAccumulators(x);
    t.same(got.acc.data, want.acc.data);
    t.same(got.actScale.data, want.actScale.data);
    t.same(got.actZeroPoint.data, want.actZeroPoint.data);
    t.same((await gpu.forward(x)).data, cpu.forwardSync(x).data);
    const dx = await DeviceTensor.fromHost(x);
    const dy = await gpu.forward(dx);
    t.same((await dy.toHost()).data, cpu.forwardSync(x).data);
    for (const d of [dx, dy, gpu]) d.dispose();
    await t.rejects(gpu.forward(x), { message: /disposed/ });
  });
}
