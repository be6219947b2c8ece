// The CUDA quantize family against the CPU backend on random data of awkward sizes: every dtype,
// scheme, granularity and float input type. Integer results, scales and zero points must be EXACTLY
// equal; dequantized floats too (one rounded multiply per element on both sides: budget 0 ulp).
// Run: node --test test-gpu/   (skips with a message where there is no CUDA device)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chooseQParams, chooseQParamsOnDevice, chooseQParamsSync, dequantize, dequantizeOnDevice, dequantizeSync,
  DeviceQTensor, DeviceTensor, gpuSkipReason, quantize, quantizeOnDevice, quantizeSync, rng, Tensor,
} from './qarvd.mjs';

const skip = await gpuSkipReason();
if (skip) console.log(`# skipped: ${skip}`);

const QDTYPES = ['int8', 'uint8', 'int4', 'uint4'];
const SCHEMES = ['symmetric', 'asymmetric'];
const XTYPES = ['float32', 'float16', 'bfloat16'];

// Shapes and granularities chosen to hit every kernel path: odd and tiny sizes, M = 1, K not a
// multiple of 8 or 32, axes in the middle, groups along outer axes, and 32-bit index limits.
const CASES = [
  { shape: [1], g: { type: 'perTensor' } },
  { shape: [7], g: { type: 'perTensor' } },
  { shape: [3, 1537], g: { type: 'perTensor' } },
  { shape: [5, 33], g: { type: 'perChannel', axis: 0 } },
  { shape: [5, 33], g: { type: 'perChannel', axis: 1 } },
  { shape: [3, 7, 9], g: { type: 'perChannel', axis: 1 } },
  { shape: [1, 4099], g: { type: 'perChannel', axis: -1 } },
  { shape: [4, 96], g: { type: 'perGroup', axis: 1, groupSize: 32 } },
  { shape: [3, 100], g: { type: 'perGroup', axis: 1, groupSize: 25 } },
  { shape: [6, 5, 3], g: { type: 'perGroup', axis: 0, groupSize: 3 } },
  { shape: [2, 12, 7], g: { type: 'perGroup', axis: 1, groupSize: 4 } },
  { shape: [1, 1], g: { type: 'perToken' } },
  { shape: [1, 4096], g: { type: 'perToken' } },
  { shape: [3, 1], g: { type: 'perToken' } },
  { shape: [5, 37], g: { type: 'perToken' } },
  { shape: [4, 2, 1543], g: { type: 'perToken' } },
  { shape: [9, 1536], g: { type: 'perToken' } },
  { shape: [33, 8960], g: { type: 'perToken' } },
  { shape: [0, 5], g: { type: 'perToken' } },
];

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

// Random input of a float dtype: mostly normal values of a few magnitudes, some exact ties of the
// rounding (k + 0.5), zeros of both signs and subnormals.
function randomX(xtype, shape, seed) {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  const mag = 10 ** Math.floor(r() * 6 - 3);
  for (let i = 0; i < n; i++) {
    const u = r();
    if (u < 0.05) values[i] = Math.floor(r() * 20 - 10) + 0.5;
    else if (u < 0.07) values[i] = r() < 0.5 ? 0 : -0;
    else if (u < 0.08) values[i] = (r() - 0.5) * 1e-39;
    else values[i] = (r() - 0.5) * 2 * mag;
  }
  if (xtype === 'float32') return new Tensor('float32', shape, values);
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    f32[0] = values[i];
    // bfloat16: the top half (truncation is fine for test data); float16: a random finite pattern.
    bits[i] = xtype === 'bfloat16' ? u32[0] >>> 16 : Math.floor(r() * 0x7c00) | (r() < 0.5 ? 0x8000 : 0);
  }
  return new Tensor(xtype, shape, bits);
}

function assertSameQ(gpu, cpu, what) {
  assert.deepEqual(gpu.data.dtype, cpu.data.dtype, what);
  assert.deepEqual(gpu.scale, cpu.scale, `${what}: scale`);
  assert.deepEqual(gpu.zeroPoint, cpu.zeroPoint, `${what}: zeroPoint`);
  const a = gpu.data.data, b = cpu.data.data;
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${what}: byte ${i} is ${a[i]} on CUDA and ${b[i]} on the CPU`);
  }
}

function assertSameFloats(a, b, what) {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i} is ${a[i]} on CUDA and ${b[i]} on the CPU`);
  }
}

test('quantize (computed parameters) equals the CPU for every dtype, scheme, granularity and input type', { skip }, async () => {
  let seed = 1;
  for (const { shape, g } of CASES) {
    for (const xtype of XTYPES) {
      const x = randomX(xtype, shape, seed++);
      for (const dtype of QDTYPES) {
        for (const scheme of SCHEMES) {
          const o = { dtype, scheme, granularity: g };
          const what = `${xtype} [${shape}] ${JSON.stringify(g)} ${dtype} ${scheme}`;
          const cpu = quantizeSync(x, o);
          assertSameQ(await quantize(x, { ...o, backend: 'cuda' }), cpu, what);
          assertSameFloats((await dequantize(cpu, { backend: 'cuda' })).data, dequantizeSync(cpu).data, `dequantize ${what}`);
          if (g.type !== 'perToken') {
            const p = await chooseQParams(x, { ...o, backend: 'cuda' });
            const c = chooseQParamsSync(x, o);
            assert.deepEqual(p, c, `chooseQParams ${what}`);
          }
        }
      }
    }
  }
});

test('quantize with given parameters: NaN -> zero point, infinities and huge values saturate', { skip }, async () => {
  const r = rng(77);
  const specials = [NaN, Infinity, -Infinity, 3e38, -3e38, 0.5, 1.5, 2.5, -0.5, -2.5];
  for (const n of [1, 9, 1001]) {
    const x = new Tensor('float32', [n], Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? specials[i % specials.length] : (r() - 0.5) * 300)));
    for (const dtype of QDTYPES) {
      const zp = dtype.startsWith('u') ? (dtype === 'uint8' ? 131 : 9) : -1;
      for (const o of [{ dtype, scale: 0.5, zeroPoint: zp, scheme: 'asymmetric' }, { dtype, scale: 1 }]) {
        const what = `[${n}] ${JSON.stringify(o)}`;
        assertSameQ(await quantize(x, { ...o, backend: 'cuda' }), quantizeSync(x, o), what);
      }
    }
  }
});

test('non-finite input with computed parameters rejects as on the CPU (the row named per token)', { skip }, async () => {
  const x = new Tensor('float32', [4, 9], new Float32Array(36).fill(1));
  x.data[2 * 9 + 4] = NaN;
  for (const granularity of [{ type: 'perTensor' }, { type: 'perChannel', axis: 1 }, { type: 'perToken' }]) {
    const o = { dtype: 'int8', granularity };
    let cpuError;
    try {
      quantizeSync(x, o);
    } catch (e) {
      cpuError = e;
    }
    await assert.rejects(quantize(x, { ...o, backend: 'cuda' }), (e) => e.constructor === cpuError.constructor && e.message === cpuError.message);
  }
});

test('device API: quantizeOnDevice / dequantizeOnDevice with reused outputs, DeviceQTensor round trip', { skip }, async () => {
  const x = randomX('float32', [17, 1000], 5);
  const dx = await DeviceTensor.fromHost(x);
  const out = await DeviceTensor.empty('int4', [17, 1000]);
  const o = { dtype: 'int4', granularity: { type: 'perGroup', axis: 1, groupSize: 8 } };
  const q = await quantizeOnDevice(dx, { ...o, out });
  assert.equal(q.data, out);
  const cpu = quantizeSync(x, o);
  assertSameQ(await q.toHost(), cpu, 'quantizeOnDevice');
  const back = await dequantizeOnDevice(q);
  assertSameFloats((await back.toHost()).data, dequantizeSync(cpu).data, 'dequantizeOnDevice');
  const dq = await DeviceQTensor.fromHost(cpu);
  assertSameQ(await dq.toHost(), cpu, 'DeviceQTensor.fromHost');
  assert.deepEqual(await chooseQParamsOnDevice(dx, o), chooseQParamsSync(x, o));
  await assert.rejects(quantizeOnDevice(dx, { dtype: 'int8', out }), TypeError);
  for (const t of [dx, q, back, dq]) t.dispose();
  await assert.rejects(quantizeOnDevice(dx, o), /disposed/);
});

test('large per-token activations (DiT shape 4680 x 8960) equal the CPU', { skip }, async () => {
  const x = randomX('float32', [4680, 8960], 11);
  for (const dtype of ['int8', 'uint8']) {
    for (const scheme of SCHEMES) {
      const o = { dtype, scheme, granularity: { type: 'perToken' } };
      assertSameQ(await quantize(x, { ...o, backend: 'cuda' }), quantizeSync(x, o), `${dtype} ${scheme}`);
    }
  }
});
