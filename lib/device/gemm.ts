// W8A8 linear layers on CUDA (cuda/gemm_int.cu): the CPU QuantizedLinear's integers and floats for
// int8 weights per output channel, with the weights uploaded once and x either on the host or
// already on the device.
import { QuantizedLinear, type Accumulators } from '../gemm/quantized.js';
import { toBias } from '../gemm/linear.js';
import { MAX_QUANTIZED_K, checkWeightParams, parseActivation, type ActivationQuantOptions, type SegmentConfig } from '../gemm/options.js';
import { native } from '../native/binding.js';
import { Tensor, expectTensor } from '../tensor/tensor.js';
import { describe, expectInteger, expectObject, expectOneOf } from '../util/validate.js';
import { checkDevice } from './backend.js';
import { DeviceTensor, expectDeviceTensor, type DeviceHandle } from './tensor.js';

interface GemmCudaNative {
  cudaGemmW8A8(
    x: DeviceHandle, m: number, k: number, n: number,
    wq: DeviceHandle, wscale: DeviceHandle, wzero: DeviceHandle, wsum: DeviceHandle, bias: DeviceHandle | null,
    dynamic: boolean, unsigned: boolean, symmetric: boolean, scale: number, zeroPoint: number,
    out: DeviceHandle, accumulators: boolean, actScale: DeviceHandle | null, actZeroPoint: DeviceHandle | null, simple: boolean,
    timing: Float64Array | null,
  ): Promise<void>;
}
const addon = (): GemmCudaNative => native<GemmCudaNative>();

/** Tiles of cuda/gemm_int.cuh (kGemmTileN, kGemmTileK): weights are stored zero-padded to them. */
const TILE_N = 128;
const TILE_K = 64;
const roundUp = (v: number, m: number): number => Math.ceil(v / m) * m;

/**
 * Which CUDA kernel multiplies: `tensorCores` (the default: int8 mma.sync) or `simple` (one thread
 * per output, a plain loop), which gives the same results and exists to tell a fault of the
 * tensor-core path from one of the quantization or the epilogue.
 */
export type DeviceGemmKernel = 'tensorCores' | 'simple';
const KERNELS: readonly DeviceGemmKernel[] = ['tensorCores', 'simple'];

/** Options of {@link DeviceQuantizedLinear.fromQuantized} (those of QuantizedLinear.fromQuantized, per channel, plus the device). */
export interface DeviceQuantizedLinearOptions {
  /** `[out]`: the weight scale of each output channel. */
  scale: Float32Array | Tensor<'float32'>;
  /** `[out]`, int8 range; default zeros. */
  zeroPoint?: Int32Array | Tensor<'int32'>;
  bias?: Tensor<'float32'> | Float32Array;
  /** Default: dynamic per token, int8, asymmetric. */
  activation?: ActivationQuantOptions;
  /** CUDA device index (default 0). */
  device?: number;
}

/** Options of a forward pass. */
export interface DeviceForwardOptions {
  /** A float32 device tensor of the output's shape on the layer's device, for device inputs. */
  out?: DeviceTensor<'float32'>;
  kernel?: DeviceGemmKernel;
}

interface Weights {
  wq: DeviceTensor<'int8'>;
  scale: DeviceTensor<'float32'>;
  zero: DeviceTensor<'int32'>;
  sum: DeviceTensor<'int32'>;
  bias: DeviceTensor<'float32'> | null;
}

/**
 * A W8A8 linear layer on a CUDA device, `y = x W^T + b` with int8 weights per output channel:
 *
 *   y[m,n] = b[n] + sa[m] * sw[n] * sum_k (xq[m,k] - za[m]) * (wq[n,k] - zw[n])
 *
 * the activations quantized per token inside the call (dynamic, the default) or with a static scale,
 * the integer sums exact (int32, int8 tensor cores) and the epilogue the CPU layer's float
 * operations, so that results equal {@link QuantizedLinear} (mode 'fast') for the same weights.
 * Weights are uploaded once; `forward` takes a host Tensor (copied in and out) or a DeviceTensor
 * (the result stays on the device). Free the device memory with `dispose()`.
 *
 * @example
 * const cpu = QuantizedLinear.fromFloat(w, { bias });                 // int8 per channel
 * const gpu = await DeviceQuantizedLinear.fromLayer(cpu, { device: 0 });
 * const y = await gpu.forward(x);                                     // Tensor float32 [..., out]
 * const dx = await DeviceTensor.fromHost(x);
 * const dy = await gpu.forward(dx);                                   // DeviceTensor, stays on the GPU
 * gpu.dispose();
 */
export class DeviceQuantizedLinear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly device: number;
  /** The activation quantization (normal form, as QuantizedLinear.config.activation). */
  readonly activation: SegmentConfig['activation'];
  #w: Weights | undefined;

  private constructor(n: number, k: number, device: number, activation: SegmentConfig['activation'], w: Weights) {
    this.inFeatures = k;
    this.outFeatures = n;
    this.device = device;
    this.activation = activation;
    this.#w = w;
  }

  /**
   * A layer from int8 weights `[out, in]` and their per-channel scales (and zero points), uploaded to
   * the device.
   *
   * @example
   * const layer = await DeviceQuantizedLinear.fromQuantized(q, { scale, bias, device: 0 });
   */
  static async fromQuantized(weight: Tensor<'int8'>, options: DeviceQuantizedLinearOptions): Promise<DeviceQuantizedLinear> {
    const opts = expectObject(options, 'options');
    const t = expectTensor(weight, 'weight', ['int8']);
    if (t.rank !== 2 || t.shape[0] === 0 || t.shape[1] === 0) {
      throw new RangeError(`Expected weight to have shape [outFeatures, inFeatures] but received [${t.shape.join(', ')}]`);
    }
    const [n, k] = t.shape;
    if (k > MAX_QUANTIZED_K) {
      throw new RangeError(`Expected at most ${MAX_QUANTIZED_K} input features (the int32 accumulators' limit) in weight but received ${k}`);
    }
    const { scale, zeroPoint } = checkWeightParams(opts.scale, opts.zeroPoint, 'int8', n, 'options');
    const bias = toBias(opts.bias, n, 'options.bias');
    const activation = parseActivation(opts.activation, 'options.activation');
    const device = checkDevice(opts.device, 'options.device');
    return DeviceQuantizedLinear.upload(t.data, n, k, scale, zeroPoint, bias, activation, device);
  }

  /**
   * The device twin of a CPU {@link QuantizedLinear} with int8 weights per output channel: the same
   * integers, scales, zero points, bias and activation quantization.
   *
   * @example
   * const gpu = await DeviceQuantizedLinear.fromLayer(QuantizedLinear.fromFloat(w), { device: 0 });
   */
  static async fromLayer(layer: QuantizedLinear, options: { device?: number } = {}): Promise<DeviceQuantizedLinear> {
    if (!(layer instanceof QuantizedLinear)) throw new TypeError(`Expected a QuantizedLinear for layer but received ${describe(layer)}`);
    const opts = expectObject(options, 'options');
    const cfg = layer.config;
    if (cfg.dtype !== 'int8' || cfg.groupSize !== 0) {
      throw new RangeError(
        `Expected layer to have int8 weights per output channel (the CUDA W8A8 layer) but received ${cfg.dtype}${cfg.groupSize ? ` in groups of ${cfg.groupSize}` : ''}`,
      );
    }
    const device = checkDevice(opts.device, 'options.device');
    const qw = layer.quantizedWeight();
    return DeviceQuantizedLinear.upload(
      qw.q.data as Int8Array, layer.outFeatures, layer.inFeatures, qw.scale.data, qw.zeroPoint.data, layer.bias, { ...cfg.activation }, device,
    );
  }

  private static async upload(
    q: Int8Array, n: number, k: number, scale: Float32Array, zeroPoint: Int32Array, bias: Float32Array | null,
    activation: SegmentConfig['activation'], device: number,
  ): Promise<DeviceQuantizedLinear> {
    const kPad = roundUp(k, TILE_K);
    const padded = new Int8Array(roundUp(n, TILE_N) * kPad);
    const sum = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      const row = q.subarray(r * k, (r + 1) * k);
      padded.set(row, r * kPad);
      let s = 0;
      for (let j = 0; j < k; j++) s += row[j];
      sum[r] = s;
    }
    const parts: DeviceTensor[] = [];
    const up = async <D extends 'int8' | 'int32' | 'float32'>(t: Tensor<D>): Promise<DeviceTensor<D>> => {
      const d = await DeviceTensor.fromHost(t, { device });
      parts.push(d);
      return d;
    };
    try {
      const w: Weights = {
        wq: await up(new Tensor('int8', [padded.length / kPad, kPad], padded)),
        scale: await up(new Tensor('float32', [n], scale)),
        zero: await up(new Tensor('int32', [n], zeroPoint)),
        sum: await up(new Tensor('int32', [n], sum)),
        bias: bias ? await up(new Tensor('float32', [n], bias)) : null,
      };
      return new DeviceQuantizedLinear(n, k, device, activation, w);
    } catch (e) {
      for (const p of parts) p.dispose();
      throw e;
    }
  }

  /** Bytes of device memory the layer holds (padded int8 weights, scales, zero points, sums, bias). */
  get weightBytes(): number {
    const w = this.weights('this');
    return w.wq.byteLength + w.scale.byteLength + w.zero.byteLength + w.sum.byteLength + (w.bias?.byteLength ?? 0);
  }

  get disposed(): boolean {
    return this.#w === undefined;
  }

  private weights(name: string): Weights {
    if (!this.#w) throw new Error(`Expected ${name} to be a live DeviceQuantizedLinear but it was disposed`);
    return this.#w;
  }

  /**
   * Applies the layer to x `[..., in]` (float32): a host Tensor gives a host Tensor, a DeviceTensor
   * (on the layer's device) gives a DeviceTensor `[..., out]` (written into `options.out` when given).
   */
  forward(x: Tensor<'float32'>, options?: { kernel?: DeviceGemmKernel }): Promise<Tensor<'float32'>>;
  forward(x: DeviceTensor<'float32'>, options?: DeviceForwardOptions): Promise<DeviceTensor<'float32'>>;
  async forward(x: Tensor<'float32'> | DeviceTensor<'float32'>, options: DeviceForwardOptions = {}): Promise<Tensor<'float32'> | DeviceTensor<'float32'>> {
    const o = expectObject(options, 'options');
    const simple = this.kernel(o.kernel);
    const w = this.weights('this');
    if (x instanceof DeviceTensor) {
      const dx = expectDeviceTensor(x, 'x', ['float32']);
      const { m, outShape } = this.rows(dx.shape, 'x');
      if (dx.device !== this.device) throw new RangeError(`Expected x on cuda:${this.device} (the layer's device) but received cuda:${dx.device}`);
      let out: DeviceTensor<'float32'> | undefined;
      if (o.out !== undefined) {
        out = expectDeviceTensor(o.out, 'options.out', ['float32']);
        if (out.shape.length !== outShape.length || out.shape.some((d, i) => d !== outShape[i]) || out.device !== this.device) {
          throw new RangeError(`Expected options.out to have shape [${outShape.join(', ')}] on cuda:${this.device} but received [${out.shape.join(', ')}] on cuda:${out.device}`);
        }
        if (out === (dx as DeviceTensor)) throw new RangeError('Expected options.out not to share memory with x');
      }
      const y = out ?? (await DeviceTensor.empty('float32', outShape, { device: this.device }));
      try {
        if (m > 0) await this.run(w, dx, m, y, false, null, null, simple);
      } catch (e) {
        if (y !== out) y.dispose();
        throw e;
      }
      return y;
    }
    if (o.out !== undefined) throw new TypeError('Expected no options.out for a host x (the result is a new host Tensor)');
    const hx = expectTensor(x, 'x', ['float32']);
    const { m, outShape } = this.rows(hx.shape, 'x');
    if (m === 0) return Tensor.zeros('float32', outShape);
    const dx = await DeviceTensor.fromHost(hx, { device: this.device });
    try {
      const dy = await DeviceTensor.empty('float32', outShape, { device: this.device });
      try {
        await this.run(w, dx, m, dy, false, null, null, simple);
        return await dy.toHost();
      } finally {
        dy.dispose();
      }
    } finally {
      dx.dispose();
    }
  }

  /**
   * The exact int32 accumulators `sum_k (xq[m,k] - za[m]) * (wq[n,k] - zw[n])` of x (host or device,
   * flattened to `[M, in]`) and the activation parameters of each row, in the shapes of the CPU
   * layer's `debugAccumulatorsSync` (`acc [M, out, 1]`, `actScale` and `actZeroPoint` `[M, 1]`), on
   * the host. For tests and debugging.
   *
   * @example
   * const gpu = await layer.debugAccumulators(x);
   * const cpu = cpuLayer.debugAccumulatorsSync(x); // gpu.acc.data equals cpu.acc.data
   */
  async debugAccumulators(x: Tensor<'float32'> | DeviceTensor<'float32'>, options: { kernel?: DeviceGemmKernel } = {}): Promise<Accumulators> {
    const simple = this.kernel(expectObject(options, 'options').kernel);
    const w = this.weights('this');
    const onDevice = x instanceof DeviceTensor;
    const checked = onDevice ? expectDeviceTensor(x, 'x', ['float32']) : expectTensor(x, 'x', ['float32']);
    const { m } = this.rows(checked.shape, 'x');
    if (onDevice && x.device !== this.device) throw new RangeError(`Expected x on cuda:${this.device} (the layer's device) but received cuda:${x.device}`);
    const n = this.outFeatures;
    const result: Accumulators = {
      acc: Tensor.zeros('int32', [m, n, 1]),
      actScale: Tensor.zeros('float32', [m, 1]),
      actZeroPoint: Tensor.zeros('int32', [m, 1]),
    };
    if (m === 0) return result;
    const owned: DeviceTensor[] = [];
    try {
      const dx = onDevice ? x : await DeviceTensor.fromHost(x, { device: this.device });
      if (!onDevice) owned.push(dx);
      const acc = await DeviceTensor.empty('int32', [m, n, 1], { device: this.device });
      owned.push(acc);
      const scale = await DeviceTensor.empty('float32', [m, 1], { device: this.device });
      owned.push(scale);
      const zero = await DeviceTensor.empty('int32', [m, 1], { device: this.device });
      owned.push(zero);
      await this.run(w, dx, m, acc, true, scale, zero, simple);
      await Promise.all([acc.toHost({ out: result.acc }), scale.toHost({ out: result.actScale }), zero.toHost({ out: result.actZeroPoint })]);
      return result;
    } finally {
      for (const t of owned) t.dispose();
    }
  }

  /**
   * For benchmarks: the GPU milliseconds of one forward pass of x (activation quantization, GEMM and
   * epilogue), timed with CUDA events over `repeat` runs back to back after one warm-up run, as
   * PyTorch benchmarks are timed; the Promise and copy overheads of `forward` are not included.
   *
   * @example
   * const ms = await layer.timeForward(dx, { repeat: 50 });
   * const tops = (2 * m * layer.inFeatures * layer.outFeatures) / (ms * 1e9);
   */
  async timeForward(x: DeviceTensor<'float32'>, options: { repeat?: number; kernel?: DeviceGemmKernel } = {}): Promise<number> {
    const o = expectObject(options, 'options');
    const repeat = o.repeat === undefined ? 20 : expectInteger(o.repeat, 'options.repeat', { min: 1, max: 1e6 });
    const simple = this.kernel(o.kernel);
    const w = this.weights('this');
    const dx = expectDeviceTensor(x, 'x', ['float32']);
    if (dx.device !== this.device) throw new RangeError(`Expected x on cuda:${this.device} (the layer's device) but received cuda:${dx.device}`);
    const { m, outShape } = this.rows(dx.shape, 'x');
    if (m === 0) return 0;
    const y = await DeviceTensor.empty('float32', outShape, { device: this.device });
    try {
      const timing = Float64Array.of(repeat, 0);
      await this.run(w, dx, m, y, false, null, null, simple, timing);
      return timing[1];
    } finally {
      y.dispose();
    }
  }

  /** Frees the layer's device memory (idempotent); the layer throws on use afterwards. */
  dispose(): void {
    const w = this.#w;
    if (!w) return;
    this.#w = undefined;
    for (const t of [w.wq, w.scale, w.zero, w.sum, w.bias]) t?.dispose();
  }

  private kernel(value: unknown): boolean {
    return (value === undefined ? 'tensorCores' : expectOneOf(value, 'options.kernel', KERNELS)) === 'simple';
  }

  private rows(shape: readonly number[], name: string): { m: number; outShape: number[] } {
    const k = this.inFeatures;
    if (shape.length === 0 || shape[shape.length - 1] !== k) {
      throw new RangeError(`Expected the last dimension of ${name} to be ${k} (inFeatures) but received shape [${shape.join(', ')}]`);
    }
    return { m: shape.reduce((a, b) => a * b, 1) / k, outShape: [...shape.slice(0, -1), this.outFeatures] };
  }

  private run(
    w: Weights, x: DeviceTensor, m: number, out: DeviceTensor, accumulators: boolean,
    actScale: DeviceTensor | null, actZero: DeviceTensor | null, simple: boolean, timing: Float64Array | null = null,
  ): Promise<void> {
    const a = this.activation;
    return addon().cudaGemmW8A8(
      x.handle('x'), m, this.inFeatures, this.outFeatures,
      w.wq.handle('weights'), w.scale.handle('weights'), w.zero.handle('weights'), w.sum.handle('weights'), w.bias?.handle('weights') ?? null,
      a.type === 'dynamic', a.dtype === 'uint8', a.scheme === 'symmetric', a.scale, a.zeroPoint,
      out.handle('out'), accumulators, actScale?.handle('actScale') ?? null, actZero?.handle('actZeroPoint') ?? null, simple, timing,
    );
  }
}
