// The calibration kernels of the addon (csrc/napi/calibration.cc). Every function takes validated
// positional arguments, writes into the output arrays it is given and returns undefined, or a Promise
// when `async` is true. An empty rowWeights array means "no row weights".
import { native } from '../native/binding.js';

export interface CalibrationNative {
  calibMinMax(x: Float32Array, outer: number, n: number, inner: number, outMin: Float32Array, outMax: Float32Array, outNan: Float64Array, async: boolean): Promise<void> | undefined;
  calibColumnNorms(w: Float32Array, rows: number, cols: number, out: Float64Array, async: boolean): Promise<void> | undefined;
  calibHistogramAdd(
    x: Float32Array, rows: number, cols: number, rowWeights: Float64Array, weight: number,
    lo: number, hi: number, bins: number, counts: Float64Array, outNan: Float64Array, async: boolean,
  ): Promise<void> | undefined;
  calibFakeQuantSse(
    x: Float32Array, rows: number, cols: number, rowWeights: Float64Array, candLo: Float32Array, candHi: Float32Array,
    dtype: number, symmetric: boolean, outSse: Float64Array, outTotals: Float64Array, async: boolean,
  ): Promise<void> | undefined;
  calibChannelClipSearch(
    w: Float32Array, rows: number, cols: number, percentiles: Float64Array, dtype: number, symmetric: boolean,
    outScale: Float32Array, outZeroPoint: Int32Array, outLo: Float32Array, outHi: Float32Array, outChoice: Int32Array,
    outMse: Float64Array, async: boolean,
  ): Promise<void> | undefined;
  calibGramAccumulate(x: Float32Array, rows: number, cols: number, rowWeights: Float64Array, weight: number, h: Float64Array, async: boolean): Promise<void> | undefined;
}

export function calib(): CalibrationNative {
  return native<CalibrationNative>();
}

export const NO_WEIGHTS = new Float64Array(0);
