// Shared by the model ops: the native signatures they call and the argument checks they have in common.
import { native } from '../../native/binding.js';
import { expectTensor, Tensor } from '../../tensor/tensor.js';
import { describe, expectFiniteNumber, expectInteger } from '../../util/validate.js';

type MaybeArray = Float32Array | null;
type Done = Promise<void> | undefined;

/** The native functions of csrc/napi/{norm,activation,rope,attention}.cc (positional, pre-validated). */
export interface OpsNative {
  layerNorm(x: Float32Array, out: Float32Array, rows: number, dim: number, eps: number, weight: MaybeArray,
    bias: MaybeArray, shift: MaybeArray, scale: MaybeArray, groups: number, async: boolean): Done;
  rmsNorm(x: Float32Array, out: Float32Array, rows: number, dim: number, eps: number, weight: MaybeArray, async: boolean): Done;
  gatedResidual(x: Float32Array, y: Float32Array, gate: Float32Array, out: Float32Array, rows: number, dim: number,
    groups: number, async: boolean): Done;
  activation(kind: 'gelu_tanh' | 'silu', x: Float32Array, out: Float32Array, async: boolean): Done;
  expVector(x: Float32Array, out: Float32Array): void;
  rope3d(x: Float32Array, out: Float32Array, tokens: number, heads: number, headDim: number, frames: number,
    height: number, width: number, startFrame: number, theta: number, async: boolean): Done;
  /** k, v: Float32Array (dtype 0), Uint16Array of bfloat16 bits (1) or Int8Array with scales [tokens, heads] (2); precision 0 fp32, 1 bf16, 2 int8. */
  attention(q: Float32Array, k: KvData, kDtype: number, kScale: MaybeArray, v: KvData, vDtype: number, vScale: MaybeArray,
    out: Float32Array, qLen: number, kvLen: number, heads: number, headDim: number, chunk: number, queryOffset: number,
    scale: number, precision: number, async: boolean): Done;
  kvStore(x: Float32Array, tokens: number, heads: number, headDim: number, dtype: number, data: KvData, scale: MaybeArray,
    at: number, smooth: MaybeArray, async: boolean): Done;
  kvChannelMean(x: Float32Array, tokens: number, width: number, mean: Float32Array): void;
}

/** Keys or values as the kernels read them: float32, bfloat16 bits, or int8. */
export type KvData = Float32Array | Uint16Array | Int8Array;

export function ops(): OpsNative {
  return native<OpsNative>();
}

/** Runs a native call in its sync or async form and hands back `result` either way. */
export function finish<T>(done: Done, result: T, async: true): Promise<T>;
export function finish<T>(done: Done, result: T, async: false): T;
export function finish<T>(done: Done, result: T, async: boolean): T | Promise<T> {
  return async ? (done as Promise<void>).then(() => result) : result;
}

export function expectFloat32(value: unknown, name: string): Tensor<'float32'> {
  return expectTensor(value, name, ['float32']);
}

/** Default 1e-6 (Wan); a positive finite number otherwise. */
export function expectEps(value: unknown, name: string): number {
  if (value === undefined) return 1e-6;
  return expectFiniteNumber(value, name, { positive: true });
}

export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Splits x into rows of its last dimension; the last dimension must be non-zero. */
export function rowsOf(x: Tensor, name: string): { rows: number; dim: number } {
  if (x.rank < 1) throw new RangeError(`Expected ${name} to have at least one dimension but received shape []`);
  const dim = x.shape[x.rank - 1];
  if (dim === 0) throw new RangeError(`Expected a non-zero last dimension for ${name} but received shape ${shapeText(x.shape)}`);
  return { rows: x.size / dim, dim };
}

/** The layout [tokens, heads, headDim] of a rank-3 tensor, or of a rank-2 [tokens, heads * headDim] one with `heads`. */
export function headsOf(x: Tensor, name: string, heads: unknown, headsName: string): { tokens: number; heads: number; headDim: number } {
  if (x.rank === 3) {
    const [tokens, h, headDim] = x.shape;
    if (heads !== undefined && expectInteger(heads, headsName, { min: 1 }) !== h) {
      throw new RangeError(`Expected ${headsName} to match ${name}.shape[1] = ${h} but received ${heads}`);
    }
    if (h === 0 || headDim === 0) throw new RangeError(`Expected non-zero heads and head dimension for ${name} but received shape ${shapeText(x.shape)}`);
    return { tokens, heads: h, headDim };
  }
  if (x.rank === 2) {
    if (heads === undefined) {
      throw new TypeError(`Expected an integer for ${headsName} (${name} has shape ${shapeText(x.shape)}, not [tokens, heads, headDim]) but received undefined`);
    }
    const h = expectInteger(heads, headsName, { min: 1 });
    const [tokens, dim] = x.shape;
    if (dim === 0 || dim % h !== 0) {
      throw new RangeError(`Expected ${headsName} to divide the last dimension of ${name} (${dim}) but received ${h}`);
    }
    return { tokens, heads: h, headDim: dim / h };
  }
  throw new RangeError(`Expected ${name} to have shape [tokens, heads, headDim] or [tokens, dim] but received ${shapeText(x.shape)}`);
}

/**
 * A per-group vector set [groups, dim] (or [dim]: one group) applying to consecutive equal groups of
 * `rows` rows; returns the group count.
 */
export function groupsOf(t: Tensor, name: string, rows: number, dim: number): number {
  const groups = t.rank === 1 ? 1 : t.rank === 2 ? t.shape[0] : -1;
  if (groups < 0 || t.shape[t.rank - 1] !== dim) {
    throw new RangeError(`Expected ${name} to have shape [groups, ${dim}] or [${dim}] but received ${shapeText(t.shape)}`);
  }
  if (groups === 0 || rows % groups !== 0) {
    throw new RangeError(`Expected the group count of ${name} (${groups}) to divide the ${rows} rows it modulates`);
  }
  return groups;
}

function overlap(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

function sameView(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.byteLength === b.byteLength;
}

/**
 * The output tensor: `out` when given (float32, the shape of `like`), else a new tensor of zeros.
 * `out` may be exactly one of `mayBe` (in place) but must not partly overlap them, and must share no
 * memory with any of `mustAvoid` (inputs the kernel still reads while it writes).
 */
export function outputFor(out: unknown, name: string, like: Tensor, mayBe: readonly Tensor[], mustAvoid: readonly (Tensor | undefined)[] = []): Tensor<'float32'> {
  if (out === undefined) return Tensor.zeros('float32', like.shape);
  const o = expectFloat32(out, name);
  if (shapeText(o.shape) !== shapeText(like.shape)) {
    throw new RangeError(`Expected ${name} to have shape ${shapeText(like.shape)} but received ${shapeText(o.shape)}`);
  }
  for (const t of mayBe) {
    if (overlap(o.data, t.data) && !sameView(o.data, t.data)) {
      throw new RangeError(`Expected ${name} to be the input itself or memory disjoint from it but it partly overlaps (${describe(o.data)})`);
    }
  }
  for (const t of mustAvoid) {
    if (t && overlap(o.data, t.data)) {
      throw new RangeError(`Expected ${name} to share no memory with the inputs the kernel reads but it overlaps one (${describe(o.data)})`);
    }
  }
  return o;
}
