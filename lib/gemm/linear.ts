// The FP32 linear layer (the baseline) and what every linear layer shares: the Linear interface,
// packed weight handles, and the checks of inputs, weights and biases.
import { Tensor, expectTensor } from '../tensor/tensor.js';
import { describe, expectAllFinite, expectObject, expectOneOf } from '../util/validate.js';
import { gemmNative, type NativeHandle } from './native.js';

/**
 * A linear layer `y = x W^T + b` over the last dimension of `x`: what model code uses for FP32 and
 * quantized layers alike. `x` has shape `[..., inFeatures]` (any leading dimensions, possibly
 * empty); the result has shape `[..., outFeatures]`.
 */
export interface Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Bytes of native memory the packed weights hold (integer weights plus scales, zero points and sums). */
  readonly weightBytes: number;
  /** The bias, if any (a copy owned by the layer). */
  readonly bias: Float32Array | null;
  /** Runs on the libuv thread pool; the event loop stays free. */
  forward(x: Tensor): Promise<Tensor<'float32'>>;
  /** Runs on the calling thread (for small inputs). */
  forwardSync(x: Tensor): Tensor<'float32'>;
  /**
   * Frees the layer's native weights now instead of when the garbage collector gets to them
   * (idempotent; the layer is unusable afterwards: forward() throws). A call in flight keeps the
   * weights until it is done.
   */
  dispose?(): void;
}

/** The error of a layer used after dispose(). */
export function disposedError(what: string): Error {
  return new Error(`Use after dispose(): ${what} no longer holds its native weights; build a new layer`);
}

const TOKEN = Symbol('PackedWeights');

/**
 * Weights packed for one kind of layer, in native memory owned by this object (a napi External,
 * freed by the garbage collector when the object is). `kind` says which layer type can use them:
 * 'float32' ones come from {@link packWeights}; 'quantized' ones belong to a quantized layer.
 *
 * @example
 * const packed = packWeights(w);
 * packed.kind;   // 'float32'
 * packed.bytes;  // 4 * 16 * ceil(N / 16) * K
 */
export class PackedWeights {
  readonly kind: 'float32' | 'quantized';
  readonly outFeatures: number;
  readonly inFeatures: number;
  #handle: NativeHandle | null;

  /** @internal Use packWeights(), or a layer's `packed` property. */
  constructor(token: symbol, kind: 'float32' | 'quantized', outFeatures: number, inFeatures: number, handle: NativeHandle) {
    if (token !== TOKEN) throw new TypeError('PackedWeights cannot be constructed directly; use packWeights()');
    this.kind = kind;
    this.outFeatures = outFeatures;
    this.inFeatures = inFeatures;
    this.#handle = handle;
  }

  /** @internal The native handle; an Error once disposed. */
  get handle(): NativeHandle {
    if (!this.#handle) throw disposedError(`the ${this.kind} layer [${this.outFeatures}, ${this.inFeatures}]`);
    return this.#handle;
  }

  /** Bytes of native memory held (0 once disposed). */
  get bytes(): number {
    if (!this.#handle) return 0;
    if (this.kind === 'float32') return 16 * Math.ceil(this.outFeatures / 16) * this.inFeatures * 4;
    return gemmNative().gemmIntInfo(this.#handle).bytes;
  }

  /** True once {@link dispose} was called. */
  get disposed(): boolean {
    return this.#handle === null;
  }

  /**
   * Frees the native memory now (idempotent), instead of when the garbage collector collects this
   * object: a loop that builds and drops layers without yielding to the event loop (where N-API
   * finalizers run) should dispose what it drops. Using the weights afterwards is an Error.
   */
  dispose(): void {
    if (!this.#handle) return;
    gemmNative().gemmDispose(this.#handle);
    this.#handle = null;
  }
}

/** @internal Wraps a native handle (used by the quantized layers). */
export function wrapHandle(kind: 'float32' | 'quantized', outFeatures: number, inFeatures: number, handle: NativeHandle): PackedWeights {
  return new PackedWeights(TOKEN, kind, outFeatures, inFeatures, handle);
}

/** @internal Checks a float32 weight `[outFeatures, inFeatures]` with finite values. */
export function expectWeight(w: unknown, name: string): Tensor<'float32'> {
  const t = expectTensor(w, name, ['float32']);
  if (t.rank !== 2) throw new RangeError(`Expected ${name} to have shape [outFeatures, inFeatures] but received [${t.shape.join(', ')}]`);
  if (t.shape[0] === 0 || t.shape[1] === 0) throw new RangeError(`Expected ${name} to have no empty dimension but received [${t.shape.join(', ')}]`);
  expectAllFinite(t.data, name);
  return t;
}

/** @internal The bias option: a float32 Tensor `[n]` or a Float32Array of n finite values; copied. */
export function toBias(bias: unknown, n: number, name = 'bias'): Float32Array | null {
  if (bias === undefined || bias === null) return null;
  let data: Float32Array;
  if (bias instanceof Tensor) {
    const t = expectTensor(bias, name, ['float32']);
    if (t.rank !== 1) throw new RangeError(`Expected ${name} to have shape [${n}] but received [${t.shape.join(', ')}]`);
    data = t.data;
  } else if (bias instanceof Float32Array) {
    data = bias;
  } else {
    throw new TypeError(`Expected a float32 Tensor or a Float32Array for ${name} but received ${describe(bias)}`);
  }
  if (data.length !== n) throw new RangeError(`Expected ${n} elements (outFeatures) in ${name} but received ${data.length}`);
  expectAllFinite(data, name);
  return Float32Array.from(data);
}

/** @internal Checks x `[..., inFeatures]` and returns its rows, their count and the output shape. */
export function flattenInput(x: unknown, inFeatures: number, outFeatures: number): { data: Float32Array; m: number; outShape: number[] } {
  const t = expectTensor(x, 'x', ['float32']);
  if (t.rank === 0) throw new RangeError(`Expected x to have at least one dimension (inFeatures = ${inFeatures}) but received a scalar`);
  const last = t.shape[t.rank - 1];
  if (last !== inFeatures) {
    throw new RangeError(`Expected the last dimension of x to be ${inFeatures} (inFeatures) but received ${last} (shape [${t.shape.join(', ')}])`);
  }
  return { data: t.data, m: t.size / inFeatures, outShape: [...t.shape.slice(0, -1), outFeatures] };
}

/**
 * Packs a float32 weight `W [N, K]` once for {@link matmul} and {@link LinearF32} (as ONNX Runtime
 * pre-packs constant weights): panels of 16 output channels, cut into K blocks.
 *
 * @example
 * const packed = packWeights(w);          // w: Tensor<'float32'> [N, K]
 * const y = await matmul(x, packed);      // reuses the packing on every call
 */
export function packWeights(w: Tensor<'float32'>): PackedWeights {
  return packF32(w, 'w');
}

function packF32(w: unknown, name: string): PackedWeights {
  const t = expectWeight(w, name);
  const [n, k] = t.shape;
  return wrapHandle('float32', n, k, gemmNative().gemmF32Pack(t.data, n, k));
}

function expectF32Packed(w: unknown, name: string): PackedWeights {
  if (w instanceof PackedWeights) {
    if (w.kind !== 'float32') {
      throw new TypeError(
        `Expected ${name} to be a float32 Tensor [N, K] or weights from packWeights() but received weights packed for a ${w.kind} layer`,
      );
    }
    return w;
  }
  if (w instanceof Tensor) return packF32(w, name);
  throw new TypeError(`Expected a float32 Tensor [N, K] or weights from packWeights() for ${name} but received ${describe(w)}`);
}

/**
 * FP32 linear layer `y = x W^T + b` on the packed FP32 GEMM (AVX2/FMA 6x16 micro-kernel, cache
 * blocking, all cores): the baseline the quantized layers are measured against.
 *
 * @example
 * const layer = LinearF32.fromFloat(w, { bias });   // w: [out, in]
 * const y = await layer.forward(x);                 // x: [..., in] -> y: [..., out]
 */
export class LinearF32 implements Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: Float32Array | null;
  /** The packed weights (kind 'float32'), shareable with {@link matmul}. */
  readonly packed: PackedWeights;
  /** Whether the layer packed its weights itself (then dispose() frees them). */
  readonly #owns: boolean;
  #disposed = false;

  private constructor(packed: PackedWeights, bias: Float32Array | null, owns: boolean) {
    if (!(packed instanceof PackedWeights) || packed.kind !== 'float32') throw new TypeError('LinearF32 cannot be constructed directly; use LinearF32.fromFloat()');
    this.packed = packed;
    this.#owns = owns;
    this.inFeatures = packed.inFeatures;
    this.outFeatures = packed.outFeatures;
    this.bias = bias;
  }

  /** A layer from a float32 weight `[out, in]` (packed now) or weights from {@link packWeights}. */
  static fromFloat(weight: Tensor<'float32'> | PackedWeights, options: { bias?: Tensor<'float32'> | Float32Array } = {}): LinearF32 {
    const opts = expectObject(options, 'options');
    const owns = !(weight instanceof PackedWeights);
    const packed = expectF32Packed(weight, 'weight');
    try {
      return new LinearF32(packed, toBias(opts.bias, packed.outFeatures), owns);
    } catch (e) {
      if (owns) packed.dispose();
      throw e;
    }
  }

  get weightBytes(): number {
    return this.#disposed ? 0 : this.packed.bytes;
  }

  /**
   * Frees the packed weights now if this layer packed them (weights given as {@link PackedWeights}
   * stay their owner's); idempotent. forward() throws afterwards.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#owns) this.packed.dispose();
  }

  /** @internal The packed handle, checking that the layer is usable. */
  get handle(): NativeHandle {
    if (this.#disposed) throw disposedError(`the LinearF32 [${this.outFeatures}, ${this.inFeatures}]`);
    return this.packed.handle;
  }

  #options(options: unknown): void {
    if (options === undefined) return;
    const o = expectObject(options, 'options');
    // FP32 has one path; the option is checked so that a typo is not silently ignored.
    if (o.mode !== undefined) expectOneOf(o.mode, 'options.mode', ['fast', 'emulated']);
  }

  forwardSync(x: Tensor, options?: { mode?: 'fast' | 'emulated' }): Tensor<'float32'> {
    this.#options(options);
    const handle = this.handle;
    const { data, m, outShape } = flattenInput(x, this.inFeatures, this.outFeatures);
    const y = new Float32Array(m * this.outFeatures);
    if (m > 0) gemmNative().gemmF32Forward(handle, data, m, this.bias, y, false);
    return new Tensor('float32', outShape, y);
  }

  async forward(x: Tensor, options?: { mode?: 'fast' | 'emulated' }): Promise<Tensor<'float32'>> {
    this.#options(options);
    const handle = this.handle;
    const { data, m, outShape } = flattenInput(x, this.inFeatures, this.outFeatures);
    const y = new Float32Array(m * this.outFeatures);
    if (m > 0) await gemmNative().gemmF32Forward(handle, data, m, this.bias, y, true);
    return new Tensor('float32', outShape, y);
  }
}

/**
 * `y = x W^T (+ bias)` in FP32, with `W [N, K]` given as a Tensor (packed for this call) or as
 * weights from {@link packWeights} (packed once, reused). `x` is `[..., K]`; the result `[..., N]`.
 *
 * @example
 * const y = await matmul(x, w, { bias });
 */
export async function matmul(
  x: Tensor<'float32'>,
  w: Tensor<'float32'> | PackedWeights,
  options: { bias?: Tensor<'float32'> | Float32Array } = {},
): Promise<Tensor<'float32'>> {
  expectTensor(x, 'x', ['float32']);
  // Weights given as a Tensor are packed for this call only: freed as soon as it is done.
  const layer = LinearF32.fromFloat(expectF32Packed(w, 'w'), options);
  try {
    return await layer.forward(x);
  } finally {
    if (!(w instanceof PackedWeights)) layer.packed.dispose();
  }
}

/**
 * Synchronous {@link matmul}, for small inputs (it runs on the calling thread).
 *
 * @example
 * const y = matmulSync(x, w); // x: [M, K], w: [N, K] -> y: [M, N]
 */
export function matmulSync(
  x: Tensor<'float32'>,
  w: Tensor<'float32'> | PackedWeights,
  options: { bias?: Tensor<'float32'> | Float32Array } = {},
): Tensor<'float32'> {
  expectTensor(x, 'x', ['float32']);
  const layer = LinearF32.fromFloat(expectF32Packed(w, 'w'), options);
  try {
    return layer.forwardSync(x);
  } finally {
    if (!(w instanceof PackedWeights)) layer.packed.dispose();
  }
}
