import { describe, expectInteger, expectOneOf } from '../util/validate.js';

/**
 * Which elements share a scale and zero point.
 *
 * - `perTensor`: one scale for the whole tensor.
 * - `perChannel`: one scale per index along `axis` (e.g. per output channel of a weight, axis 0).
 * - `perGroup`: consecutive blocks of `groupSize` elements along `axis`, separately for every index of
 *   the other dims; the scales have the tensor's shape with `shape[axis]` replaced by
 *   `shape[axis] / groupSize` (groupSize must divide it).
 * - `perToken`: one scale per row (all dims but the last). When quantize computes the scales, they
 *   are computed in the kernel from each row's range (dynamic quantization).
 *
 * Axes may be negative (counted from the end); validated granularities carry the non-negative axis.
 *
 * @example
 * const g: Granularity = { type: 'perGroup', axis: -1, groupSize: 128 };
 */
export type Granularity =
  | { type: 'perTensor' }
  | { type: 'perChannel'; axis: number }
  | { type: 'perGroup'; axis: number; groupSize: number }
  | { type: 'perToken' };

export const GRANULARITY_TYPES: readonly Granularity['type'][] = ['perTensor', 'perChannel', 'perGroup', 'perToken'];

/**
 * Checks a granularity against a tensor shape and returns it with a non-negative axis. Throws a
 * TypeError or RangeError naming `name` (or `name.axis`, `name.groupSize`).
 *
 * @example
 * checkGranularity({ type: 'perChannel', axis: -1 }, [4, 8]); // { type: 'perChannel', axis: 1 }
 */
export function checkGranularity(value: unknown, shape: readonly number[], name = 'granularity'): Granularity {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Expected a granularity object such as { type: 'perTensor' } for ${name} but received ${describe(value)}`);
  }
  const g = value as Record<string, unknown>;
  const type = expectOneOf(g.type, `${name}.type`, GRANULARITY_TYPES);
  const rank = shape.length;
  switch (type) {
    case 'perTensor':
      return { type };
    case 'perToken':
      if (rank < 1) throw new RangeError(`Expected a tensor of rank >= 1 for ${name} 'perToken' but received shape []`);
      return { type };
    case 'perChannel':
    case 'perGroup': {
      if (rank < 1) throw new RangeError(`Expected a tensor of rank >= 1 for ${name} '${type}' but received shape []`);
      let axis = expectInteger(g.axis, `${name}.axis`, { min: -rank, max: rank - 1 });
      if (axis < 0) axis += rank;
      if (type === 'perChannel') return { type, axis };
      const groupSize = expectInteger(g.groupSize, `${name}.groupSize`, { min: 1 });
      if (shape[axis] % groupSize !== 0) {
        throw new RangeError(
          `Expected ${name}.groupSize to divide shape[${axis}] = ${shape[axis]} but received ${describe(groupSize)}`,
        );
      }
      return { type, axis, groupSize };
    }
  }
}

/**
 * Shape of the scale (and zero point) tensor for `shape` at granularity `g` (already checked):
 * `[]` per tensor, `[shape[axis]]` per channel, the shape with `shape[axis] / groupSize` per group,
 * and `shape` without its last dim per token.
 *
 * @example
 * scaleShape([4, 256], { type: 'perGroup', axis: 1, groupSize: 64 }); // [4, 4]
 */
export function scaleShape(shape: readonly number[], g: Granularity): number[] {
  switch (g.type) {
    case 'perTensor':
      return [];
    case 'perChannel':
      return [shape[g.axis]];
    case 'perGroup':
      return shape.map((d, i) => (i === g.axis ? d / g.groupSize : d));
    case 'perToken':
      return shape.slice(0, -1);
  }
}

/**
 * Number of scales for `shape` at granularity `g` (already checked): the product of scaleShape.
 *
 * @example
 * numScales([8, 4096], { type: 'perGroup', axis: 1, groupSize: 128 }); // 256
 */
export function numScales(shape: readonly number[], g: Granularity): number {
  return scaleShape(shape, g).reduce((a, b) => a * b, 1);
}

/** How the native kernels see a tensor: [outer, axisLen, inner] around the axis, and a mode. */
export interface BlockLayout {
  outer: number;
  axisLen: number;
  inner: number;
  /** 0 per tensor, 1 per channel, 2 per group (csrc/kernels/quantize.h). */
  mode: 0 | 1 | 2;
  groupSize: number;
}

const prod = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/**
 * The native layout of a checked granularity; per token is per group along the last axis with one
 * group per row. Internal (not exported from the package).
 */
export function blockLayout(shape: readonly number[], g: Granularity): BlockLayout {
  switch (g.type) {
    case 'perTensor':
      return { outer: 1, axisLen: prod(shape), inner: 1, mode: 0, groupSize: 1 };
    case 'perToken': {
      const cols = shape[shape.length - 1];
      return { outer: prod(shape.slice(0, -1)), axisLen: cols, inner: 1, mode: 2, groupSize: Math.max(cols, 1) };
    }
    case 'perChannel':
    case 'perGroup':
      return {
        outer: prod(shape.slice(0, g.axis)),
        axisLen: shape[g.axis],
        inner: prod(shape.slice(g.axis + 1)),
        mode: g.type === 'perChannel' ? 1 : 2,
        groupSize: g.type === 'perGroup' ? g.groupSize : 1,
      };
  }
}
