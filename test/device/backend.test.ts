// The CUDA backend on any machine: argument checks, the backend option, and what a machine without a
// device sees (clear "no CUDA device" errors, 'auto' falling back to the CPU with the CPU's results).
// The GPU side itself is checked by test-gpu/ on GPU machines; here, with a device present, only
// the round trips below run.
import t from 'tap';
import {
  backends,
  chooseQParams,
  chooseQParamsSync,
  dequantize,
  dequantizeOnDevice,
  dequantizeSync,
  DeviceTensor,
  quantize,
  quantizeOnDevice,
  quantizeSync,
  Tensor,
  type QuantizeOptions,
} from '../../lib/index.js';
import { resolveBackend } from '../../lib/device/backend.js';
import { native } from '../../lib/native/binding.js';
import { rng } from '../helpers/rng.js';

const { cuda } = backends();
const hasDevice = cuda.devices.length > 0;

function randomTensor(shape: number[], seed: number): Tensor<'float32'> {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor('float32', shape, Float32Array.from({ length: n }, () => (r() - 0.5) * 8));
}

const x = randomTensor([5, 37], 1);
const CASES: QuantizeOptions[] = [
  { dtype: 'int8' },
  { dtype: 'uint4', granularity: { type: 'perToken' } },
  { dtype: 'int4', scheme: 'asymmetric', granularity: { type: 'perChannel', axis: 0 } },
  { dtype: 'uint8', granularity: { type: 'perGroup', axis: 0, groupSize: 5 } },
];

t.test('the backend option is checked and names its argument', async (t) => {
  t.throws(() => quantizeSync(x, { dtype: 'int8', backend: 'gpu' as never }), { name: 'RangeError', message: /backend/ });
  t.throws(() => quantizeSync(x, { dtype: 'int8', backend: 'cuda' }), { name: 'TypeError', message: /backend 'cpu' or 'auto' for quantizeSync/ });
  t.throws(() => dequantizeSync(quantizeSync(x, { dtype: 'int8' }), { backend: 'cuda' }), { name: 'TypeError', message: /dequantizeSync/ });
  t.throws(() => chooseQParamsSync(x, { dtype: 'int8', backend: 'cuda' }), { name: 'TypeError', message: /chooseQParamsSync/ });
  await t.rejects(quantize(x, { dtype: 'int8', backend: 'cpu', device: -1 }), { name: 'RangeError', message: /device/ });
  await t.rejects(quantize(x, { dtype: 'int8', backend: 7 as never }), { name: 'RangeError', message: /backend/ });
  t.same(resolveBackend(undefined), { kind: 'cpu' });
  t.same(resolveBackend({}), { kind: 'cpu' }, "the default is 'cpu' for host tensors");
});

t.test('device ops check their arguments before any GPU work', async (t) => {
  await t.rejects(quantizeOnDevice(x as never, { dtype: 'int8' }), { name: 'TypeError', message: /DeviceTensor for x/ });
  await t.rejects(dequantizeOnDevice(quantizeSync(x, { dtype: 'int8' }) as never), { name: 'TypeError', message: /DeviceQTensor for q/ });
  await t.rejects(DeviceTensor.fromHost([1, 2] as never), { name: 'TypeError', message: /Tensor for tensor/ });
  await t.rejects(DeviceTensor.empty('float64' as never, [2]), { name: 'RangeError', message: /dtype/ });
  await t.rejects(DeviceTensor.empty('float32', [-1]), { message: /shape/ });
});

if (!hasDevice) {
  t.test('without a device: backends() lists none and says why', async (t) => {
    t.same(cuda.devices, []);
    t.ok(cuda.status.length > 0, `status: ${cuda.status}`);
  });

  t.test('without a device: creating a DeviceTensor rejects with "no CUDA device: <status>"', async (t) => {
    const expected = { name: 'Error', message: `no CUDA device: ${cuda.status}` };
    await t.rejects(DeviceTensor.fromHost(x), expected);
    await t.rejects(DeviceTensor.empty('int8', [4], { device: 0 }), expected);
    await t.rejects(DeviceTensor.empty('int8', [0]), expected, 'even when empty');
    await t.rejects(quantize(x, { dtype: 'int8', backend: 'cuda' }), expected);
    await t.rejects(dequantize(quantizeSync(x, { dtype: 'int8' }), { backend: 'cuda' }), expected);
    await t.rejects(chooseQParams(x, { dtype: 'int8', backend: 'cuda' }), expected);
    t.throws(() => resolveBackend({ backend: 'cuda' }), expected);
  });

  t.test('without a device: the native side rejects too, and never aborts', async (t) => {
    interface DeviceNative {
      cudaHandle(): object;
      cudaAlloc(h: object, device: number, bytes: number): Promise<void>;
      cudaUpload(h: object, host: ArrayBufferView): Promise<void>;
      cudaFree(h: object): void;
    }
    const n = native<DeviceNative>();
    const h = n.cudaHandle();
    await t.rejects(n.cudaAlloc(h, 0, 1024), { name: 'Error', message: /^no CUDA device: / });
    t.throws(() => n.cudaUpload(h, new Uint8Array(4)), { name: 'Error', message: /not allocated or was disposed/ });
    t.throws(() => n.cudaUpload({}, new Uint8Array(4)), { name: 'TypeError', message: /device buffer/ });
    n.cudaFree(h);
    n.cudaFree(h);
    t.pass('freeing an empty handle twice is harmless');
  });

  t.test("without a device: 'auto' runs on the CPU with the CPU's results", async (t) => {
    t.same(resolveBackend({ backend: 'auto', device: 3 }), { kind: 'cpu' });
    for (const o of CASES) {
      const cpu = quantizeSync(x, o);
      const auto = await quantize(x, { ...o, backend: 'auto' });
      t.same(auto.data.data, cpu.data.data, `data ${JSON.stringify(o)}`);
      t.same(auto.scale, cpu.scale);
      t.same(auto.zeroPoint, cpu.zeroPoint);
      t.same((await dequantize(cpu, { backend: 'auto' })).data, dequantizeSync(cpu).data);
      t.same(await chooseQParams(x, { ...o, backend: 'auto' }), chooseQParamsSync(x, o));
      t.same(quantizeSync(x, { ...o, backend: 'auto' }).data.data, cpu.data.data, "the Sync twins accept 'auto'");
    }
  });
} else {
  t.test('with a device: host round trips through the CUDA backend equal the CPU', async (t) => {
    for (const o of CASES) {
      const cpu = quantizeSync(x, o);
      const gpu = await quantize(x, { ...o, backend: 'cuda' });
      t.same(gpu.data.data, cpu.data.data, `data ${JSON.stringify(o)}`);
      t.same(gpu.scale, cpu.scale);
      t.same(gpu.zeroPoint, cpu.zeroPoint);
      t.same((await dequantize(cpu, { backend: 'cuda' })).data, dequantizeSync(cpu).data);
    }
    const d = await DeviceTensor.fromHost(x);
    t.same((await d.toHost()).data, x.data);
    d.dispose();
    d.dispose();
    await t.rejects(d.toHost(), { message: /disposed/ });
  });
}
