// Min/max and abs-max of a tensor, whole or per axis (one axis kept, the others reduced).
import type { Tensor } from '../tensor/tensor.js';
import { expectInteger } from '../util/validate.js';
import { expectFloatTensor, options } from './checks.js';
import { calib } from './native.js';

/** Options of minMax/absMax: keep `axis` (negative counts from the end); omit it to reduce everything. */
export interface ReduceOptions {
  axis?: number;
}

/** Min and max of a whole tensor. NaN elements are skipped and counted. */
export interface MinMax {
  min: number;
  max: number;
  nanCount: number;
}

/** Min and max per index of the kept axis (NaN where a slice holds only NaN). */
export interface MinMaxPerAxis {
  axis: number;
  min: Float32Array;
  max: Float32Array;
  nanCount: number;
}

interface Plan {
  x: Tensor<'float32'>;
  axis: number | undefined;
  outer: number;
  n: number;
  inner: number;
}

function plan(x: unknown, opts: unknown): Plan {
  const t = expectFloatTensor(x, 'x');
  const o = options(opts);
  if (o.axis === undefined) return { x: t, axis: undefined, outer: 1, n: 1, inner: t.size };
  let axis = expectInteger(o.axis, 'axis', { min: -t.rank, max: t.rank - 1 });
  if (axis < 0) axis += t.rank;
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return { x: t, axis, outer, n: t.shape[axis], inner };
}

function finish(p: Plan, mn: Float32Array, mx: Float32Array, nan: Float64Array): MinMax | MinMaxPerAxis {
  // The kernel leaves the identity (min > max) where a slice has no value that is not NaN.
  for (let i = 0; i < mn.length; i++) {
    if (mn[i] > mx[i]) {
      mn[i] = NaN;
      mx[i] = NaN;
    }
  }
  if (p.axis === undefined) return { min: mn[0], max: mx[0], nanCount: nan[0] };
  return { axis: p.axis, min: mn, max: mx, nanCount: nan[0] };
}

function run(p: Plan, async: boolean): { done: Promise<void> | undefined; result: () => MinMax | MinMaxPerAxis } {
  const mn = new Float32Array(p.n);
  const mx = new Float32Array(p.n);
  const nan = new Float64Array(1);
  const done = calib().calibMinMax(p.x.data, p.outer, p.n, p.inner, mn, mx, nan, async);
  return { done, result: () => finish(p, mn, mx, nan) };
}

/**
 * Minimum and maximum of `x` (float32), of the whole tensor or for every index of `axis`
 * (`min[a] = min over all elements whose index on axis is a`). NaN elements are ignored and counted
 * in `nanCount`; a slice with no other value reports NaN. Runs off the event loop.
 *
 * @example
 * const x = Tensor.fromArray([1, -2, 3, 4, NaN, -6], [2, 3]);
 * await minMax(x);              // { min: -6, max: 4, nanCount: 1 }
 * await minMax(x, { axis: 1 }); // { axis: 1, min: [1, -2, -6], max: [4, -2, 3], nanCount: 1 }
 */
export function minMax(x: Tensor<'float32'>, options?: { axis?: undefined }): Promise<MinMax>;
export function minMax(x: Tensor<'float32'>, options: { axis: number }): Promise<MinMaxPerAxis>;
export function minMax(x: Tensor<'float32'>, options?: ReduceOptions): Promise<MinMax | MinMaxPerAxis>;
export async function minMax(x: Tensor<'float32'>, options?: ReduceOptions): Promise<MinMax | MinMaxPerAxis> {
  const r = run(plan(x, options), true);
  await r.done;
  return r.result();
}

/** Synchronous minMax (blocks the event loop; for small tensors or inside a worker). */
export function minMaxSync(x: Tensor<'float32'>, options?: { axis?: undefined }): MinMax;
export function minMaxSync(x: Tensor<'float32'>, options: { axis: number }): MinMaxPerAxis;
export function minMaxSync(x: Tensor<'float32'>, options?: ReduceOptions): MinMax | MinMaxPerAxis;
export function minMaxSync(x: Tensor<'float32'>, options?: ReduceOptions): MinMax | MinMaxPerAxis {
  return run(plan(x, options), false).result();
}

/** Max of |x| of the whole tensor. */
export interface AbsMax {
  absMax: number;
  nanCount: number;
}

/** Max of |x| per index of the kept axis. */
export interface AbsMaxPerAxis {
  axis: number;
  absMax: Float32Array;
  nanCount: number;
}

function toAbs(r: MinMax | MinMaxPerAxis): AbsMax | AbsMaxPerAxis {
  // max |x| = max(-min, max), exactly.
  if (typeof r.min === 'number') return { absMax: Math.max(-r.min, r.max as number), nanCount: r.nanCount };
  const mn = r.min as Float32Array;
  const mx = r.max as Float32Array;
  const out = new Float32Array(mn.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(-mn[i], mx[i]);
  return { axis: (r as MinMaxPerAxis).axis, absMax: out, nanCount: r.nanCount };
}

/**
 * Maximum of |x|, whole or per index of `axis`, from the same kernel as minMax
 * (`absMax = max(-min, max)`, NaN ignored). Runs off the event loop.
 *
 * @example
 * await absMax(Tensor.fromArray([1, -5, 3])); // { absMax: 5, nanCount: 0 }
 */
export function absMax(x: Tensor<'float32'>, options?: { axis?: undefined }): Promise<AbsMax>;
export function absMax(x: Tensor<'float32'>, options: { axis: number }): Promise<AbsMaxPerAxis>;
export function absMax(x: Tensor<'float32'>, options?: ReduceOptions): Promise<AbsMax | AbsMaxPerAxis>;
export async function absMax(x: Tensor<'float32'>, options?: ReduceOptions): Promise<AbsMax | AbsMaxPerAxis> {
  return toAbs(await minMax(x, options));
}

/** Synchronous absMax. */
export function absMaxSync(x: Tensor<'float32'>, options?: { axis?: undefined }): AbsMax;
export function absMaxSync(x: Tensor<'float32'>, options: { axis: number }): AbsMaxPerAxis;
export function absMaxSync(x: Tensor<'float32'>, options?: ReduceOptions): AbsMax | AbsMaxPerAxis;
export function absMaxSync(x: Tensor<'float32'>, options?: ReduceOptions): AbsMax | AbsMaxPerAxis {
  return toAbs(minMaxSync(x, options));
}
