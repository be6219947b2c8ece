// The CUDA W8A8 layer (DeviceQuantizedLinear, cuda/gemm_int.cu) against the CPU QuantizedLinear
// (mode 'fast') on random data of awkward shapes: M = 1 and rows past a 128-row tile, K not a multiple
// of 32 or 64, N not a multiple of 8 or 128, the DiT shapes, and K = 32768 with accumulators near
// 2^31. Budgets: the int32 accumulators and the activation scales and zero points EXACTLY equal; the
// outputs too (the epilogue repeats the CPU's two roundings, fl(fl(acc * fl(sa * sw)) + b)), checked
// first against a relative budget of 1e-6 of |acc * sa * sw| + |b| so that a failure says whether it
// is a rounding or a wrong result. Both kernels ('tensorCores' and the 'simple' reference) are run.
// Run: node --test test-gpu/   (skips with a message where there is no CUDA device)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeviceQuantizedLinear, DeviceTensor, gpuSkipReason, QuantizedLinear, quantizeValue, rng, Tensor } from './qarvd.mjs';

const skip = await gpuSkipReason();
if (skip) console.log(`# skipped: ${skip}`);

function randomInt8(n, k, seed) {
  const r = rng(seed);
  return new Tensor('int8', [n, k], Int8Array.from({ length: n * k }, () => Math.floor(r() * 256) - 128));
}

// Rows of different magnitudes and offsets (so that the per-token parameters differ), some exact ties
// of the rounding, and in the first rows the special cases: NaN and infinities (left out of the range,
// NaN -> zero point, infinities saturate), a constant row, a zero row, a row of NaN only.
function randomX(m, k, seed, specials = true) {
  const r = rng(seed);
  const x = new Float32Array(m * k);
  for (let i = 0; i < m; i++) {
    const mag = 10 ** (r() * 4 - 2), off = (r() - 0.3) * mag;
    for (let j = 0; j < k; j++) x[i * k + j] = r() < 0.03 ? Math.floor(r() * 9 - 4) + 0.5 : off + (r() - 0.5) * 2 * mag;
  }
  if (specials && m >= 5) {
    x[0] = NaN;
    x[k - 1] = Infinity;
    x[k + 1] = -Infinity;
    x.fill(1.25, 2 * k, 3 * k);
    x.fill(0, 3 * k, 4 * k);
    x.fill(NaN, 4 * k, 5 * k);
  }
  return new Tensor('float32', [m, k], x);
}

function weightParams(n, seed, asymmetric) {
  const r = rng(seed);
  return {
    scale: Float32Array.from({ length: n }, () => 1e-3 + r() * 0.02),
    zeroPoint: asymmetric ? Int32Array.from({ length: n }, () => Math.floor(r() * 256) - 128) : undefined,
  };
}

const ACTIVATIONS = [
  undefined, // dynamic, int8, asymmetric (the default)
  { type: 'dynamic', scheme: 'symmetric' },
  { type: 'dynamic', dtype: 'uint8' },
  { type: 'dynamic', dtype: 'uint8', scheme: 'symmetric' },
  { type: 'static', scale: 0.05, zeroPoint: -7 },
  { type: 'static', scale: 0.02, zeroPoint: 131, dtype: 'uint8' },
];

function assertSameInts(a, b, what, cols) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: element ${i} (row ${Math.floor(i / cols)}, column ${i % cols}) is ${a[i]} on CUDA and ${b[i]} on the CPU`);
  }
}

// The relative budget first (a wrong value fails here), then bit equality (a rounding fails there).
function assertOutputs(gpu, cpu, acc, actScale, wscale, bias, n, what) {
  let exact = 0, worst = 0, worstAt = -1;
  for (let i = 0; i < cpu.length; i++) {
    const row = Math.floor(i / n), col = i % n;
    const size = Math.abs(acc[i] * actScale[row] * wscale[col]) + (bias ? Math.abs(bias[col]) : 0);
    const err = Math.abs(gpu[i] - cpu[i]) / (size || 1);
    if (!(err <= 1e-6)) assert.fail(`${what}: element ${i} (row ${row}, column ${col}) is ${gpu[i]} on CUDA and ${cpu[i]} on the CPU (relative ${err})`);
    if (Object.is(gpu[i], cpu[i])) exact++;
    if (err > worst) [worst, worstAt] = [err, i];
  }
  assert.equal(exact, cpu.length, `${what}: ${cpu.length - exact} outputs within budget but not bit-identical (worst relative ${worst} at ${worstAt})`);
}

async function compare({ m, k, n, seed, activation, asymmetric = true, bias = true, kernels = ['tensorCores'], x }) {
  const what = `M=${m} K=${k} N=${n} activation=${JSON.stringify(activation)} zw=${asymmetric} bias=${bias}`;
  const q = randomInt8(n, k, seed);
  const { scale, zeroPoint } = weightParams(n, seed + 1, asymmetric);
  const b = bias ? Float32Array.from({ length: n }, (_, i) => ((i * 37) % 11) - 5.5) : undefined;
  const cpu = QuantizedLinear.fromQuantized(q, { scale, zeroPoint, bias: b, activation });
  const gpu = await DeviceQuantizedLinear.fromQuantized(q, { scale, zeroPoint, bias: b, activation });
  try {
    x ??= randomX(m, k, seed + 2);
    const want = cpu.debugAccumulatorsSync(x);
    const y = cpu.forwardSync(x);
    for (const kernel of kernels) {
      const got = await gpu.debugAccumulators(x, { kernel });
      assertSameInts(got.actScale.data, want.actScale.data, `${what} ${kernel}: activation scales`, 1);
      assertSameInts(got.actZeroPoint.data, want.actZeroPoint.data, `${what} ${kernel}: activation zero points`, 1);
      assertSameInts(got.acc.data, want.acc.data, `${what} ${kernel}: accumulators`, n);
      const out = await gpu.forward(x, { kernel });
      assert.deepEqual(out.shape, [m, n]);
      assertOutputs(out.data, y.data, want.acc.data, want.actScale.data, scale, b, n, `${what} ${kernel}: outputs`);
    }
    return { want, q, zeroPoint };
  } finally {
    gpu.dispose();
  }
}

test('small and awkward shapes: both kernels equal the CPU for every activation quantization', { skip }, async () => {
  let seed = 1;
  const shapes = [
    [1, 1, 1], [1, 31, 7], [2, 33, 9], [5, 64, 8], [7, 65, 129], [7, 300, 256], [13, 97, 300], [129, 128, 127], [130, 257, 255],
  ];
  for (const [m, k, n] of shapes) {
    for (const activation of ACTIVATIONS) {
      await compare({ m, k, n, seed: (seed += 10), activation, kernels: ['tensorCores', 'simple'] });
    }
    await compare({ m, k, n, seed: (seed += 10), activation: undefined, asymmetric: false, bias: false, kernels: ['tensorCores', 'simple'] });
  }
});

test('the accumulators equal a plain loop over the quantized operands', { skip }, async () => {
  const m = 9, k = 70, n = 11;
  const x = randomX(m, k, 3, false);
  const { want, q, zeroPoint } = await compare({ m, k, n, seed: 5, activation: { type: 'dynamic', dtype: 'uint8' }, x });
  for (let i = 0; i < m; i++) {
    const sa = want.actScale.data[i], za = want.actZeroPoint.data[i];
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += (quantizeValue(x.data[i * k + t], sa, za, 'uint8') - za) * (q.data[j * k + t] - zeroPoint[j]);
      assert.equal(want.acc.data[i * n + j], s, `row ${i}, column ${j}`);
    }
  }
});

test('the issue shapes: M in {1, 7, 192, 4680}, K in {256, 300, 1536, 8960}, N in {256, 1536, 8960}', { skip }, async () => {
  let seed = 1000;
  const cases = [
    [1, 256, 256], [1, 8960, 1536], [7, 300, 1536], [7, 1536, 8960], [192, 256, 8960], [192, 300, 256],
    [192, 1536, 1536], [192, 8960, 1536], [4680, 256, 256], [4680, 300, 1536],
    [4680, 1536, 1536], [4680, 1536, 8960], [4680, 8960, 1536],
  ];
  for (const [m, k, n] of cases) {
    await compare({ m, k, n, seed: (seed += 10), activation: undefined });
  }
  await compare({ m: 192, k: 1536, n: 1536, seed: 7, activation: undefined, kernels: ['simple'] });
});

test('K = 32768: accumulators of +-255 * 255 * 32768 (next to 2^31) are exact', { skip }, async () => {
  const k = 32768, n = 3;
  // Weights 127 with zero point -128: wq - zw = 255; the third channel alternates sign.
  const q = new Tensor('int8', [n, k], Int8Array.from({ length: n * k }, (_, i) => (i >= 2 * k && i % 2 ? -128 : 127)));
  const zeroPoint = new Int32Array([-128, -128, -128]);
  const scale = new Float32Array([1, 0.5, 0.25]);
  // uint8 activations, static scale 1: x = 255 -> xq - za = 255 (za = 0), x = -1000 -> -255 (za = 255).
  for (const [value, zp] of [[255, 0], [-1000, 255]]) {
    const activation = { type: 'static', scale: 1, zeroPoint: zp, dtype: 'uint8' };
    const x = new Tensor('float32', [2, k], new Float32Array(2 * k).fill(value));
    const cpu = QuantizedLinear.fromQuantized(q, { scale, zeroPoint, activation });
    const gpu = await DeviceQuantizedLinear.fromQuantized(q, { scale, zeroPoint, activation });
    const want = cpu.debugAccumulatorsSync(x).acc.data;
    const sign = value > 0 ? 1 : -1;
    assert.equal(want[0], sign * 255 * 255 * k, 'the CPU reaches the extreme');
    for (const kernel of ['tensorCores', 'simple']) {
      assertSameInts((await gpu.debugAccumulators(x, { kernel })).acc.data, want, `x = ${value} ${kernel}`, n);
      assertSameInts(new Int32Array((await gpu.forward(x, { kernel })).data.buffer), new Int32Array(cpu.forwardSync(x).data.buffer), `x = ${value} ${kernel} outputs (bits)`, n);
    }
    gpu.dispose();
  }
});

test('device API: DeviceTensor in and out, fromLayer, batched shapes, reuse, errors', { skip }, async () => {
  const k = 200, n = 300;
  const w = new Tensor('float32', [n, k], Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.37)));
  const cpu = QuantizedLinear.fromFloat(w, { bias: new Float32Array(n).fill(0.5), weight: { scheme: 'asymmetric' } });
  const gpu = await DeviceQuantizedLinear.fromLayer(cpu, { device: 0 });
  assert.equal(gpu.inFeatures, k);
  assert.equal(gpu.outFeatures, n);
  assert.ok(gpu.weightBytes >= n * k);
  const x = new Tensor('float32', [2, 3, k], randomX(6, k, 9).data);
  const want = cpu.forwardSync(x);
  const hostY = await gpu.forward(x);
  assert.deepEqual(hostY.shape, [2, 3, n]);
  assert.deepEqual(hostY.data, want.data);
  const dx = await DeviceTensor.fromHost(x);
  const out = await DeviceTensor.empty('float32', [2, 3, n]);
  const dy = await gpu.forward(dx, { out });
  assert.equal(dy, out);
  assert.deepEqual((await dy.toHost()).data, want.data);
  const acc = await gpu.debugAccumulators(dx);
  assert.deepEqual(acc.acc.data, cpu.debugAccumulatorsSync(x).acc.data);
  const empty = await gpu.forward(new Tensor('float32', [0, k], new Float32Array(0)));
  assert.deepEqual(empty.shape, [0, n]);
  await assert.rejects(gpu.forward(new Tensor('float32', [2, k + 1], new Float32Array(2 * (k + 1)))), { name: 'RangeError', message: /inFeatures/ });
  await assert.rejects(gpu.forward(dx, { out: await DeviceTensor.empty('float32', [6, n]) }), { name: 'RangeError', message: /options\.out/ });
  await assert.rejects(gpu.forward(x, { out }), { name: 'TypeError', message: /options\.out/ });
  await assert.rejects(gpu.forward(x, { kernel: 'fast' }), { name: 'RangeError', message: /options\.kernel/ });
  for (const t of [dx, out, gpu]) t.dispose();
  gpu.dispose();
  await assert.rejects(gpu.forward(x), /disposed/);
});
