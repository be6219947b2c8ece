// Device memory on a GPU: round trips of every dtype, copies, dispose and finalizers, and the errors
// for a bad device, use after dispose and out-of-memory (a JS error; the process goes on).
// Run: node --expose-gc --test test-gpu/   (skips with a message where there is no CUDA device)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { backends, DeviceTensor, gpuSkipReason, rng, Tensor } from './qarvd.mjs';

const skip = await gpuSkipReason();
if (skip) console.log(`# skipped: ${skip}`);

const DTYPES = ['float32', 'float16', 'bfloat16', 'int32', 'int8', 'uint8', 'int4', 'uint4'];
const SIZES = [0, 1, 7, 33, 1023, 65537];

function randomHost(dtype, shape, seed) {
  const t = Tensor.zeros(dtype, shape);
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const r = rng(seed);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
  // An odd 4-bit count keeps a zero padding nibble, as Tensor requires.
  if ((dtype === 'int4' || dtype === 'uint4') && t.size % 2 === 1) bytes[bytes.length - 1] &= 0x0f;
  return t;
}

test('fromHost / toHost round-trip every dtype and awkward size bit for bit', { skip }, async () => {
  for (const dtype of DTYPES) {
    for (const n of SIZES) {
      const host = randomHost(dtype, [n], n * 31 + dtype.length);
      const d = await DeviceTensor.fromHost(host, { device: 0 });
      assert.equal(d.device, 0);
      assert.deepEqual(d.shape, [n]);
      const back = await d.toHost();
      assert.deepEqual(back.data, host.data, `${dtype} [${n}]`);
      d.dispose();
    }
  }
});

test('copyFrom copies on the device; toHost writes into a given out', { skip }, async () => {
  const host = randomHost('float32', [3, 1001], 5);
  const a = await DeviceTensor.fromHost(host);
  const b = await DeviceTensor.empty('float32', [3, 1001]);
  await b.copyFrom(a);
  const out = Tensor.zeros('float32', [3, 1001]);
  assert.equal(await b.toHost({ out }), out);
  assert.deepEqual(out.data, host.data);
  await assert.rejects(b.copyFrom(await DeviceTensor.empty('float32', [1001, 3])), RangeError);
  a.dispose();
  b.dispose();
});

test('dispose is idempotent and use after dispose is a clear error', { skip }, async () => {
  const d = await DeviceTensor.fromHost(Tensor.fromArray([1, 2, 3]));
  d.dispose();
  d.dispose();
  assert.equal(d.disposed, true);
  await assert.rejects(d.toHost(), /disposed/);
  const e = await DeviceTensor.empty('float32', [3]);
  await assert.rejects(e.copyFrom(d), /src to be a live DeviceTensor but it was disposed/);
});

test('a bad device index is a RangeError naming device', { skip }, async () => {
  const count = backends().cuda.devices.length;
  await assert.rejects(DeviceTensor.empty('int8', [4], { device: count }), (e) => e instanceof RangeError && /device/.test(e.message));
});

test('out of memory is a JS error naming the operation, the device and the CUDA message', { skip }, async () => {
  const total = backends().cuda.devices[0].totalMemory;
  const elements = Math.ceil((total * 2) / 4);
  await assert.rejects(DeviceTensor.empty('float32', [elements]), (e) => {
    assert.match(e.message, /^allocate on cuda:0: cudaMalloc\(\d+ bytes\) failed: out of memory/);
    return true;
  });
  // The device is still usable afterwards.
  const d = await DeviceTensor.fromHost(Tensor.fromArray([4, 5]));
  assert.deepEqual((await d.toHost()).data, new Float32Array([4, 5]));
  d.dispose();
});

test('the finalizer frees memory of tensors that are dropped without dispose()', { skip: skip || (!globalThis.gc && 'needs node --expose-gc') }, async () => {
  // Allocate twice the device's memory in chunks, dropping each: only freeing by the finalizer
  // lets this finish.
  const total = backends().cuda.devices[0].totalMemory;
  const chunk = 4 * 1024 ** 3;
  for (let used = 0; used < 2 * total; used += chunk) {
    await DeviceTensor.empty('uint8', [chunk]);
    globalThis.gc();
    await tick();
  }
});

test('operations run off the event loop: timers fire while the GPU works', { skip }, async () => {
  const big = await DeviceTensor.empty('float32', [256 * 1024 * 1024]);
  const copy = await DeviceTensor.empty('float32', [256 * 1024 * 1024]);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  for (let i = 0; i < 20; i++) await copy.copyFrom(big);
  clearInterval(timer);
  assert.ok(ticks > 0, 'the event loop turned during the copies');
  big.dispose();
  copy.dispose();
});
