// Validation of gptq() arguments and their translation into the native call: the processing order,
// the quantizer groups (one per segment and per group along K) and the qparam arrays.
import { DTYPE_CODE, qrange, type QuantDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Scheme } from '../primitives/qparams.js';
import { describe, expectBoolean, expectFiniteNumber, expectInteger } from '../util/validate.js';
import { expectDType, expectFinite, expectFloatTensor, expectScheme, options } from './checks.js';
import { Gram } from './gram.js';
import { native } from '../native/binding.js';

/** Largest K accepted (the limit of Gram). */
export const MAX_GPTQ_COLS = 65536;

/** Relative asymmetry tolerated in H: |H_ij - H_ji| <= 1e-6 max(|H_ij|, |H_ji|, sqrt(H_ii H_jj)). */
export const SYMMETRY_TOLERANCE = 1e-6;

/** Group modes of the kernel (csrc/kernels/gptq/gptq.h). */
export const GroupMode = { Given: 0, Dynamic: 1, Static: 2 } as const;

export interface SegmentPlan {
  /** Original columns of the segment, ascending. */
  cols: Int32Array;
  dtype: QuantDType;
  scheme: Scheme;
  /** 0: one scale per output channel. */
  groupSize: number;
  /** Scale groups of the segment per row. */
  groups: number;
  /** Index of the segment's first group in the [rows, totalGroups] qparam arrays. */
  base: number;
  given: boolean;
}

export interface GptqPlan {
  w: Tensor<'float32'>;
  h: Float64Array;
  rows: number;
  cols: number;
  dual: boolean;
  outlierIdx: Int32Array;
  perm: Int32Array;
  segments: SegmentPlan[];
  order: Int32Array;
  groupOf: Int32Array;
  groupDtype: Int32Array;
  groupSymmetric: Uint8Array;
  groupMode: Int32Array;
  scale: Float32Array;
  zeroPoint: Int32Array;
  damp: number;
  blockSize: number;
  actOrder: boolean;
  rtnLoss: boolean;
  deadColumns: Int32Array;
}

const QUANTIZER_KEYS = ['dtype', 'scheme', 'groupSize', 'scale', 'zeroPoint'];

/** H as a Float64Array of k * k finite values, non-negative diagonal, symmetric to SYMMETRY_TOLERANCE. */
export function expectHessian(value: unknown, k: number): Float64Array {
  let h: Float64Array;
  if (value instanceof Gram) {
    if (value.cols !== k) throw new RangeError(`Expected H to be a Gram of ${k} columns (w has ${k} input features) but it has ${value.cols}`);
    h = value.matrix;
  } else if (value instanceof Float64Array) {
    h = value;
  } else {
    throw new TypeError(`Expected a Float64Array or a Gram for H but received ${describe(value)}`);
  }
  if (h.length !== k * k) throw new RangeError(`Expected H to have ${k} x ${k} = ${k * k} elements (w has ${k} input features) but received ${h.length}`);
  const issue = new Float64Array(3);
  native<{ gptqCheckHessian(h: Float64Array, cols: number, tol: number, outIssue: Float64Array): void }>().gptqCheckHessian(h, k, SYMMETRY_TOLERANCE, issue);
  const [kind, i, j] = issue;
  const at = (a: number, b: number) => h[a * k + b];
  if (kind === 1) {
    throw new RangeError(i === j ? `Expected finite values in H but H[${i}, ${i}] is ${at(i, i)}` : `Expected finite values in H but H[${i}, ${j}] is ${at(i, j)} and H[${j}, ${i}] is ${at(j, i)}`);
  }
  if (kind === 2) throw new RangeError(`Expected H to have a non-negative diagonal (a Gram matrix) but H[${i}, ${i}] is ${at(i, i)}`);
  if (kind === 3) throw new RangeError(`Expected a symmetric H but H[${i}, ${j}] = ${at(i, j)} and H[${j}, ${i}] = ${at(j, i)}`);
  return h;
}

function expectOutlierIdx(value: unknown, k: number): Int32Array {
  if (!(Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView)))) {
    throw new TypeError(`Expected an array of column indices for outlierIdx but received ${describe(value)}`);
  }
  const arr = value as ArrayLike<unknown>;
  const out = new Int32Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`Expected integers in outlierIdx but element ${i} is ${describe(v)}`);
    if (v < 0 || v >= k) throw new RangeError(`Expected outlierIdx in [0, ${k}) but element ${i} is ${v}`);
    if (i > 0 && v <= out[i - 1]) throw new RangeError(`Expected outlierIdx strictly ascending (unique) but element ${i} (${v}) follows ${out[i - 1]}`);
    out[i] = v;
  }
  return out;
}

/** A permutation of [0, k) as an Int32Array. */
export function expectPermutation(value: unknown, name: string, k: number): Int32Array {
  if (!(Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView)))) {
    throw new TypeError(`Expected an array of column indices for ${name} but received ${describe(value)}`);
  }
  const arr = value as ArrayLike<unknown>;
  if (arr.length !== k) throw new RangeError(`Expected ${k} elements in ${name} but received ${arr.length}`);
  const seen = new Uint8Array(k);
  const out = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const v = arr[i];
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`Expected integers in ${name} but element ${i} is ${describe(v)}`);
    if (v < 0 || v >= k || seen[v]) throw new RangeError(`Expected ${name} to be a permutation of [0, ${k}) but element ${i} is ${v}`);
    seen[v] = 1;
    out[i] = v;
  }
  return out;
}

interface QuantizerSpec {
  dtype: QuantDType;
  scheme: Scheme;
  groupSize: number;
  scale?: unknown;
  zeroPoint?: unknown;
}

function quantizerSpec(o: Record<string, unknown>, path: string, defaults: { dtype: QuantDType; scheme: Scheme; groupSize: number }): QuantizerSpec {
  const dtype = expectDType(o.dtype, `${path}dtype`, defaults.dtype);
  const scheme = expectScheme(o.scheme, `${path}scheme`, defaults.scheme);
  const groupSize = o.groupSize === undefined ? defaults.groupSize : expectInteger(o.groupSize, `${path}groupSize`, { min: 1, max: MAX_GPTQ_COLS });
  if (o.zeroPoint !== undefined && o.scale === undefined) throw new TypeError(`Expected ${path}scale with ${path}zeroPoint (given qparams) but received only ${path}zeroPoint`);
  return { dtype, scheme, groupSize, scale: o.scale, zeroPoint: o.zeroPoint };
}

/** Zero point of the symmetric scheme (quant_math.h). */
function symmetricZeroPoint(dtype: QuantDType): number {
  return dtype === 'uint8' ? 128 : dtype === 'uint4' ? 8 : 0;
}

function numbers(value: unknown, name: string, length: number): ArrayLike<number> {
  if (!(Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView)))) {
    throw new TypeError(`Expected an array of numbers for ${name} but received ${describe(value)}`);
  }
  const arr = value as ArrayLike<unknown>;
  if (arr.length !== length) throw new RangeError(`Expected ${length} elements in ${name} but received ${arr.length}`);
  for (let i = 0; i < length; i++) if (typeof arr[i] !== 'number') throw new TypeError(`Expected numbers in ${name} but element ${i} is ${describe(arr[i])}`);
  return arr as ArrayLike<number>;
}

/** Copies given qparams of a segment into the [rows, totalGroups] arrays. */
function fillGiven(spec: QuantizerSpec, seg: SegmentPlan, path: string, rows: number, total: number, scale: Float32Array, zeroPoint: Int32Array): void {
  const n = rows * seg.groups;
  const shape = seg.groupSize ? `[${rows}, ${seg.groups}]` : `[${rows}]`;
  const s = numbers(spec.scale, `${path}scale (shape ${shape})`, n);
  const { qmin, qmax } = qrange(seg.dtype);
  const z = spec.zeroPoint === undefined ? null : numbers(spec.zeroPoint, `${path}zeroPoint (shape ${shape})`, n);
  if (z === null && seg.scheme === 'asymmetric') throw new TypeError(`Expected ${path}zeroPoint with ${path}scale for the asymmetric scheme but received undefined`);
  const zSym = symmetricZeroPoint(seg.dtype);
  for (let i = 0; i < n; i++) {
    const si = s[i];
    if (!Number.isFinite(si) || !(Math.fround(si) > 0)) throw new RangeError(`Expected finite positive values in ${path}scale but element ${i} is ${si}`);
    const zi = z === null ? zSym : z[i];
    if (!Number.isInteger(zi) || zi < qmin || zi > qmax) throw new RangeError(`Expected integers in [${qmin}, ${qmax}] in ${path}zeroPoint but element ${i} is ${zi}`);
    if (seg.scheme === 'symmetric' && zi !== zSym) throw new RangeError(`Expected ${path}zeroPoint to be ${zSym} (symmetric ${seg.dtype}) but element ${i} is ${zi}`);
    const r = Math.floor(i / seg.groups);
    const at = r * total + seg.base + (i % seg.groups);
    scale[at] = si;
    zeroPoint[at] = zi;
  }
}

/** Columns sorted by descending fixed diagonal (dead -> 1), ties by index (the reference's act order). */
function byDiagonal(cols: Int32Array, h: Float64Array, k: number): Int32Array {
  const diag = (c: number) => (h[c * k + c] === 0 ? 1 : h[c * k + c]);
  return Int32Array.from(Array.from(cols).sort((a, b) => diag(b) - diag(a) || a - b));
}

/** Validates gptq() arguments and builds the native call. */
export function planGptq(w: unknown, hessian: unknown, opts: unknown): GptqPlan {
  const t = expectFloatTensor(w, 'w', 2);
  if (t.rank !== 2) throw new RangeError(`Expected w to have shape [outFeatures, inFeatures] but received shape [${t.shape.join(', ')}]`);
  const [rows, k] = t.shape;
  if (k > MAX_GPTQ_COLS) throw new RangeError(`Expected at most ${MAX_GPTQ_COLS} input features in w but received shape [${rows}, ${k}]`);
  const o = options(opts);
  const h = expectHessian(hessian, k);
  expectFinite(t, 'w');
  const damp = o.damp === undefined ? 0.01 : expectFiniteNumber(o.damp, 'damp', { min: 0 });
  const blockSize = o.blockSize === undefined ? 128 : expectInteger(o.blockSize, 'blockSize', { min: 1, max: MAX_GPTQ_COLS });
  const actOrder = o.actOrder === undefined ? false : expectBoolean(o.actOrder, 'actOrder');
  const rtnLoss = o.rtnLoss === undefined ? true : expectBoolean(o.rtnLoss, 'rtnLoss');
  const dual = o.outlierIdx !== undefined;
  const top = quantizerSpec(o, '', { dtype: 'int8', scheme: 'asymmetric', groupSize: 0 });

  const parts: Array<{ cols: Int32Array; spec: QuantizerSpec; path: string }> = [];
  let outlierIdx: Int32Array = new Int32Array(0);
  if (dual) {
    outlierIdx = expectOutlierIdx(o.outlierIdx, k);
    if (o.scale !== undefined || o.zeroPoint !== undefined) {
      throw new TypeError('Expected given qparams per segment (outlier.scale, normal.scale) with outlierIdx but received a top-level scale or zeroPoint');
    }
    const isOutlier = new Uint8Array(k);
    for (const c of outlierIdx) isOutlier[c] = 1;
    const normal = new Int32Array(k - outlierIdx.length);
    let m = 0;
    for (let c = 0; c < k; c++) if (!isOutlier[c]) normal[m++] = c;
    const defaults = { dtype: top.dtype, scheme: top.scheme, groupSize: top.groupSize };
    for (const [key, cols] of [['outlier', outlierIdx], ['normal', normal]] as const) {
      const seg = o[key] === undefined ? {} : options(o[key], key);
      for (const name of Object.keys(seg)) {
        if (!QUANTIZER_KEYS.includes(name)) throw new TypeError(`Expected only ${QUANTIZER_KEYS.join(', ')} in ${key} but received ${name}`);
      }
      if (cols.length > 0) parts.push({ cols, spec: quantizerSpec(seg, `${key}.`, defaults), path: `${key}.` });
    }
  } else {
    for (const key of ['outlier', 'normal']) {
      if (o[key] !== undefined) throw new TypeError(`Expected ${key} only together with outlierIdx (the dual-scale mode) but outlierIdx is undefined`);
    }
    parts.push({ cols: Int32Array.from({ length: k }, (_, c) => c), spec: top, path: '' });
  }

  // Segments, groups and the processing order.
  const segments: SegmentPlan[] = [];
  let total = 0;
  for (const { cols, spec, path } of parts) {
    const len = cols.length;
    if (spec.groupSize && len % spec.groupSize !== 0) {
      const what = dual ? `the ${len} columns of the ${path.slice(0, -1)} segment` : `the ${len} input features of w`;
      throw new RangeError(`Expected ${path}groupSize to divide ${what} but received ${spec.groupSize}`);
    }
    const groups = spec.groupSize ? len / spec.groupSize : 1;
    segments.push({ cols, dtype: spec.dtype, scheme: spec.scheme, groupSize: spec.groupSize, groups, base: total, given: spec.scale !== undefined });
    total += groups;
  }
  const scale = new Float32Array(rows * total);
  const zeroPoint = new Int32Array(rows * total);
  const groupDtype = new Int32Array(total);
  const groupSymmetric = new Uint8Array(total);
  const groupMode = new Int32Array(total);
  const groupOfCol = new Int32Array(k);
  const order = new Int32Array(k);
  let pos = 0;
  segments.forEach((seg, s) => {
    if (seg.given) fillGiven(parts[s].spec, seg, parts[s].path, rows, total, scale, zeroPoint);
    // Per channel: from the initial weights, as the reference. Per group: from the weights updated
    // so far when the group starts, as the reference; with actOrder a group's columns are no longer
    // visited together, so from the initial weights.
    const mode: number = seg.given ? GroupMode.Given : seg.groupSize && !actOrder ? GroupMode.Dynamic : GroupMode.Static;
    for (let g = 0; g < seg.groups; g++) {
      groupDtype[seg.base + g] = DTYPE_CODE[seg.dtype];
      groupSymmetric[seg.base + g] = seg.scheme === 'symmetric' ? 1 : 0;
      groupMode[seg.base + g] = mode;
    }
    seg.cols.forEach((c, m) => {
      groupOfCol[c] = seg.base + (seg.groupSize ? Math.floor(m / seg.groupSize) : 0);
    });
    order.set(actOrder ? byDiagonal(seg.cols, h, k) : seg.cols, pos);
    pos += seg.cols.length;
  });
  const groupOf = order.map((c) => groupOfCol[c]);
  const dead: number[] = [];
  for (let c = 0; c < k; c++) if (h[c * k + c] === 0) dead.push(c);
  const perm = dual ? Int32Array.from(segments.flatMap((s) => Array.from(s.cols))) : Int32Array.from({ length: k }, (_, c) => c);
  return {
    w: t, h, rows, cols: k, dual, outlierIdx, perm, segments, order, groupOf, groupDtype, groupSymmetric, groupMode,
    scale, zeroPoint, damp, blockSize, actOrder, rtnLoss, deadColumns: Int32Array.from(dead),
  };
}
