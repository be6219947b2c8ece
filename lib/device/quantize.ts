// The quantize primitives on CUDA, for tensors already on a device (DeviceTensor in, DeviceTensor
// out). Options and their checks are those of lib/primitives/quantize.ts (quantize_options.ts), and
// the integers, scales and zero points are the CPU's, bit for bit (cuda/quantize.cu).
import { native } from '../native/binding.js';
import { DTYPE_CODE, FLOAT_DTYPES, type FloatDType, type QuantDType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { describe, expectObject } from '../util/validate.js';
import { blockLayout, type Granularity } from '../primitives/granularity.js';
import { type Scheme } from '../primitives/qparams.js';
import { QTensor } from '../primitives/qtensor.js';
import { checkComputedScales, fillEmpty, resolveChooseQParamsOptions, resolveQuantizeOptions } from '../primitives/quantize_options.js';
import type { ChooseQParamsOptions, QParams, QuantTypeOptions } from '../primitives/quantize.js';
import { DeviceTensor, expectDeviceTensor, type DeviceHandle } from './tensor.js';

type Dims = [outer: number, axisLen: number, inner: number, mode: number, groupSize: number];
interface QuantizeCudaNative {
  cudaQuantize(x: DeviceHandle, xType: number, ...rest: [...Dims, scale: DeviceHandle, zeroPoint: DeviceHandle, qType: number, out: DeviceHandle]): Promise<void>;
  cudaDequantize(q: DeviceHandle, qType: number, ...rest: [...Dims, scale: DeviceHandle, zeroPoint: DeviceHandle, out: DeviceHandle]): Promise<void>;
  cudaChooseQParams(x: DeviceHandle, xType: number, ...rest: [...Dims, qType: number, symmetric: boolean, scale: DeviceHandle, zeroPoint: DeviceHandle]): Promise<void>;
  cudaQuantizePerToken(x: DeviceHandle, xType: number, rows: number, cols: number, qType: number, symmetric: boolean, out: DeviceHandle, scale: DeviceHandle, zeroPoint: DeviceHandle): Promise<void>;
}
const addon = (): QuantizeCudaNative => native<QuantizeCudaNative>();

function dims(shape: readonly number[], g: Granularity): Dims {
  const l = blockLayout(shape, g);
  return [l.outer, l.axisLen, l.inner, l.mode, l.groupSize];
}

/**
 * A quantized tensor on a device: the integers (`data`), one float32 scale and one int32 zero point
 * per block of the granularity (also on the device), the scheme and the granularity, as QTensor.
 */
export class DeviceQTensor<D extends QuantDType = QuantDType> {
  readonly data: DeviceTensor<D>;
  readonly scale: DeviceTensor<'float32'>;
  readonly zeroPoint: DeviceTensor<'int32'>;
  readonly scheme: Scheme;
  readonly granularity: Granularity;

  /** Internal: made by quantizeOnDevice and DeviceQTensor.fromHost, which check the parts. */
  constructor(data: DeviceTensor<D>, scale: DeviceTensor<'float32'>, zeroPoint: DeviceTensor<'int32'>, scheme: Scheme, granularity: Granularity) {
    this.data = data;
    this.scale = scale;
    this.zeroPoint = zeroPoint;
    this.scheme = scheme;
    this.granularity = granularity;
  }

  get dtype(): D {
    return this.data.dtype;
  }
  get shape(): readonly number[] {
    return this.data.shape;
  }
  get device(): number {
    return this.data.device;
  }

  /**
   * Copies a QTensor to a device.
   *
   * @example
   * const dq = await DeviceQTensor.fromHost(quantizeSync(x, { dtype: 'int8' }), { device: 0 });
   */
  static async fromHost<D extends QuantDType>(q: QTensor<D>, options: { device?: number } = {}): Promise<DeviceQTensor<D>> {
    if (!(q instanceof QTensor)) throw new TypeError(`Expected a QTensor for q but received ${describe(q)}`);
    const parts: DeviceTensor[] = [];
    try {
      const data = await DeviceTensor.fromHost(q.data, options);
      parts.push(data);
      const scale = await DeviceTensor.fromHost(new Tensor('float32', [q.scale.length], q.scale), options);
      parts.push(scale);
      const zeroPoint = await DeviceTensor.fromHost(new Tensor('int32', [q.zeroPoint.length], q.zeroPoint), options);
      return new DeviceQTensor(data, scale, zeroPoint, q.scheme, q.granularity);
    } catch (e) {
      for (const p of parts) p.dispose();
      throw e;
    }
  }

  /** Copies the integers, scales and zero points back into a (checked) QTensor. */
  async toHost(): Promise<QTensor<D>> {
    const [data, scale, zeroPoint] = await Promise.all([this.data.toHost(), this.scale.toHost(), this.zeroPoint.toHost()]);
    return new QTensor({ data, scale: scale.data, zeroPoint: zeroPoint.data, scheme: this.scheme, granularity: this.granularity });
  }

  /** Frees the three device buffers (idempotent). */
  dispose(): void {
    this.data.dispose();
    this.scale.dispose();
    this.zeroPoint.dispose();
  }
}

export interface DeviceQuantizeOptions extends QuantTypeOptions {
  scheme?: Scheme;
  granularity?: Granularity;
  /** Given scales (host values, one per block); computed on the device when absent. */
  scale?: Float32Array | readonly number[] | number;
  /** Given zero points (host values); required with `scale` for the asymmetric scheme. */
  zeroPoint?: Int32Array | readonly number[] | number;
  /** A device tensor of the quantized dtype, x's shape and device to write into (reused between calls). */
  out?: DeviceTensor;
}

async function deviceParams(count: number, device: number, scale?: Float32Array, zeroPoint?: Int32Array): Promise<[DeviceTensor<'float32'>, DeviceTensor<'int32'>]> {
  const s = scale ? await DeviceTensor.fromHost(new Tensor('float32', [count], scale), { device }) : await DeviceTensor.empty('float32', [count], { device });
  try {
    const z = zeroPoint ? await DeviceTensor.fromHost(new Tensor('int32', [count], zeroPoint), { device }) : await DeviceTensor.empty('int32', [count], { device });
    return [s, z];
  } catch (e) {
    s.dispose();
    throw e;
  }
}

function deviceOut<D extends QuantDType>(out: unknown, dtype: D, x: DeviceTensor): DeviceTensor<D> | undefined {
  if (out === undefined) return undefined;
  const t = expectDeviceTensor(out, 'out', [dtype]);
  if (t.shape.length !== x.shape.length || t.shape.some((d, i) => d !== x.shape[i]) || t.device !== x.device) {
    throw new RangeError(`Expected out to have shape [${x.shape.join(', ')}] on cuda:${x.device} but received [${t.shape.join(', ')}] on cuda:${t.device}`);
  }
  if (t === (x as DeviceTensor)) throw new RangeError('Expected out not to share memory with the input');
  return t;
}

/**
 * quantize (lib/primitives/quantize.ts) on the tensor's CUDA device: the same options, semantics and
 * results, `q = clamp(roundHalfToEven(x / scale) + zeroPoint, qmin, qmax)` per block (NaN -> zero
 * point), 4-bit results packed two per byte. Per token without a given scale is dynamic and fused:
 * one kernel reduces each row's range, picks its scale and zero point and quantizes the row. Without
 * a given scale, x must be finite (RangeError naming x otherwise, and the row per token).
 *
 * @example
 * const x = await DeviceTensor.fromHost(activations);                     // float32 [tokens, K]
 * const q = await quantizeOnDevice(x, { dtype: 'int8', granularity: { type: 'perToken' } });
 * const host = await q.toHost();                                           // a QTensor
 */
export async function quantizeOnDevice<D extends QuantDType>(x: DeviceTensor, options: DeviceQuantizeOptions & { dtype: D }): Promise<DeviceQTensor<D>>;
export async function quantizeOnDevice(x: DeviceTensor, options: DeviceQuantizeOptions): Promise<DeviceQTensor>;
export async function quantizeOnDevice(x: DeviceTensor, options: DeviceQuantizeOptions): Promise<DeviceQTensor> {
  const t = expectDeviceTensor(x, 'x', FLOAT_DTYPES) as DeviceTensor<FloatDType>;
  const r = resolveQuantizeOptions(t.shape, options);
  const given = r.scale !== undefined;
  const out = deviceOut(expectObject(options, 'options').out, r.dtype, t);
  if (t.size === 0 && !given) {
    r.scale = new Float32Array(r.count);
    r.zeroPoint = new Int32Array(r.count);
    fillEmpty(r.scale, r.zeroPoint, r.dtype, r.scheme);
  }
  const [scale, zeroPoint] = await deviceParams(r.count, t.device, r.scale, r.zeroPoint);
  let data: DeviceTensor<QuantDType> | undefined;
  try {
    data = out ?? (await DeviceTensor.empty(r.dtype, t.shape, { device: t.device }));
    if (t.size > 0) {
      const xType = DTYPE_CODE[t.dtype];
      const qType = DTYPE_CODE[r.dtype];
      const symmetric = r.scheme === 'symmetric';
      const h = [t.handle('x'), data.handle('out'), scale.handle('scale'), zeroPoint.handle('zeroPoint')] as const;
      if (!given && r.granularity.type === 'perToken') {
        const cols = t.shape[t.shape.length - 1];
        await addon().cudaQuantizePerToken(h[0], xType, r.count, cols, qType, symmetric, h[1], h[2], h[3]);
      } else {
        const l = dims(t.shape, r.granularity);
        if (!given) await addon().cudaChooseQParams(h[0], xType, ...l, qType, symmetric, h[2], h[3]);
        await addon().cudaQuantize(h[0], xType, ...l, h[2], h[3], qType, h[1]);
      }
    }
    if (!given && t.size > 0) checkComputedScales((await scale.toHost()).data);
    return new DeviceQTensor(data, scale, zeroPoint, r.scheme, r.granularity);
  } catch (e) {
    if (data !== out) data?.dispose();
    scale.dispose();
    zeroPoint.dispose();
    throw e;
  }
}

/**
 * dequantize on the device: `x' = (q - zeroPoint) * scale` per block, float32, exactly the CPU's
 * values (one rounded multiply per element).
 *
 * @example
 * const back = await dequantizeOnDevice(q); // DeviceTensor float32
 */
export async function dequantizeOnDevice(q: DeviceQTensor, options: { out?: DeviceTensor<'float32'> } = {}): Promise<DeviceTensor<'float32'>> {
  if (!(q instanceof DeviceQTensor)) throw new TypeError(`Expected a DeviceQTensor for q but received ${describe(q)}`);
  const data = expectDeviceTensor(q.data, 'q.data');
  const o = expectObject(options, 'options');
  let out: DeviceTensor<'float32'> | undefined;
  if (o.out !== undefined) {
    out = expectDeviceTensor(o.out, 'out', ['float32']);
    if (out.shape.length !== data.shape.length || out.shape.some((d, i) => d !== data.shape[i]) || out.device !== data.device) {
      throw new RangeError(`Expected out to have shape [${data.shape.join(', ')}] on cuda:${data.device} but received [${out.shape.join(', ')}] on cuda:${out.device}`);
    }
  }
  const result = out ?? (await DeviceTensor.empty('float32', data.shape, { device: data.device }));
  if (data.size === 0) return result;
  try {
    const l = dims(data.shape, q.granularity);
    await addon().cudaDequantize(data.handle('q.data'), DTYPE_CODE[data.dtype], ...l, q.scale.handle('q.scale'), q.zeroPoint.handle('q.zeroPoint'), result.handle('out'));
  } catch (e) {
    if (result !== out) result.dispose();
    throw e;
  }
  return result;
}

/**
 * chooseQParams on the device (the range reduction of each block runs on the GPU); the parameters
 * come back to the host, identical to the CPU's.
 *
 * @example
 * const { scale, zeroPoint } = await chooseQParamsOnDevice(x, { dtype: 'uint8', granularity: { type: 'perChannel', axis: 0 } });
 */
export async function chooseQParamsOnDevice(x: DeviceTensor, options: ChooseQParamsOptions): Promise<QParams> {
  const t = expectDeviceTensor(x, 'x', FLOAT_DTYPES) as DeviceTensor<FloatDType>;
  const r = resolveChooseQParamsOptions(t.shape, options);
  if (t.size === 0) {
    const scale = new Float32Array(r.count);
    const zeroPoint = new Int32Array(r.count);
    fillEmpty(scale, zeroPoint, r.dtype, r.scheme);
    return { scale, zeroPoint };
  }
  const [scale, zeroPoint] = await deviceParams(r.count, t.device);
  try {
    const l = dims(t.shape, r.granularity);
    await addon().cudaChooseQParams(t.handle('x'), DTYPE_CODE[t.dtype], ...l, DTYPE_CODE[r.dtype], r.scheme === 'symmetric', scale.handle('scale'), zeroPoint.handle('zeroPoint'));
    const result = { scale: (await scale.toHost()).data, zeroPoint: (await zeroPoint.toHost()).data };
    checkComputedScales(result.scale);
    return result;
  } finally {
    scale.dispose();
    zeroPoint.dispose();
  }
}
