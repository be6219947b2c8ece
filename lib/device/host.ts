// The CUDA backend of the host-tensor primitives (quantize, dequantize, chooseQParams with
// `backend: 'cuda'` or 'auto' on a GPU machine): copy in, run on the device, copy the results back
// into the host outputs the primitive has already checked, and free the device memory.
import type { FloatDType, QuantDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import type { QParams } from '../primitives/quantize.js';
import { QTensor } from '../primitives/qtensor.js';
import { chooseQParamsOnDevice, dequantizeOnDevice, DeviceQTensor, quantizeOnDevice, type DeviceQuantizeOptions } from './quantize.js';
import { DeviceTensor } from './tensor.js';

function withoutHostOut(options: object): DeviceQuantizeOptions {
  const { out: _out, backend: _backend, device: _device, ...rest } = options as Record<string, unknown>;
  return rest as DeviceQuantizeOptions;
}

export async function quantizeOnCuda(x: Tensor<FloatDType>, options: object, out: Tensor<QuantDType>, device: number): Promise<QTensor> {
  const dx = await DeviceTensor.fromHost(x, { device });
  try {
    const q = await quantizeOnDevice(dx, withoutHostOut(options));
    try {
      await q.data.toHost({ out });
      const [scale, zeroPoint] = await Promise.all([q.scale.toHost(), q.zeroPoint.toHost()]);
      return new QTensor({ data: out, scale: scale.data, zeroPoint: zeroPoint.data, scheme: q.scheme, granularity: q.granularity });
    } finally {
      q.dispose();
    }
  } finally {
    dx.dispose();
  }
}

export async function dequantizeOnCuda(q: QTensor, out: Tensor<'float32'>, device: number): Promise<Tensor<'float32'>> {
  const dq = await DeviceQTensor.fromHost(q, { device });
  try {
    const dx = await dequantizeOnDevice(dq);
    try {
      return await dx.toHost({ out });
    } finally {
      dx.dispose();
    }
  } finally {
    dq.dispose();
  }
}

export async function chooseQParamsOnCuda(x: Tensor<FloatDType>, options: object, device: number): Promise<QParams> {
  const dx = await DeviceTensor.fromHost(x, { device });
  try {
    return await chooseQParamsOnDevice(dx, withoutHostOut(options));
  } finally {
    dx.dispose();
  }
}
