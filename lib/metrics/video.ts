// Quality of a generated video against a reference video (the FP model's, in Q-ARVD), on latents
// shaped [frames, channels, height, width]: MSE, PSNR, SSIM and a temporal consistency error, each
// per frame, per chunk and overall.
import { expectTensor, type Tensor } from '../tensor/tensor.js';
import { expectFiniteNumber, expectInteger, expectObject } from '../util/validate.js';

export interface VideoMetricsOptions {
  /** Frames per chunk for the per-chunk figures (Self-Forcing: 3). */
  chunkSize?: number;
  /** The range L used by PSNR and SSIM; default: max - min of the reference video. */
  dataRange?: number;
}

export interface VideoMetrics {
  /** Mean squared error over the whole video. */
  mse: number;
  /** 10 log10(L^2 / mse) in dB; Infinity for identical videos. */
  psnr: number;
  /** Mean SSIM over frames (1 for identical videos). */
  ssim: number;
  /** Mean temporal consistency error over frame transitions (0 for a single frame). */
  temporal: number;
  perFrame: { mse: number[]; psnr: number[]; ssim: number[]; /** transition into frame t (NaN for frame 0) */ temporal: number[] };
  perChunk: { mse: number[]; psnr: number[]; ssim: number[]; temporal: number[] };
  dataRange: number;
  chunkSize: number;
}

const SSIM_K1 = 0.01;
const SSIM_K2 = 0.03;
const SSIM_SIGMA = 1.5;
const SSIM_WINDOW = 11;

/**
 * Compares `video` to `reference` (both float32 [frames, channels, h, w]).
 *
 * - MSE per frame: mean over channels and pixels of (x - y)^2; PSNR = 10 log10(L^2 / MSE).
 * - SSIM (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 = 0.01, K2 = 0.03, C1 = (K1 L)^2,
 *   C2 = (K2 L)^2, computed per channel over the 'valid' positions and averaged; frames smaller than
 *   11 pixels use the largest odd window that fits, with the same sigma.
 * - Temporal consistency error of the transition t-1 -> t: mean of ((x_t - x_{t-1}) - (y_t - y_{t-1}))^2,
 *   i.e. how differently the two videos change from frame to frame.
 * Per-chunk figures average the frames (or the transitions into the frames) of each chunk; a chunk's
 * PSNR is computed from its MSE.
 *
 * @example
 * const m = videoMetrics(quantizedLatents, fpLatents, { chunkSize: 3 });
 * console.log(m.psnr, m.perChunk.mse);
 */
export function videoMetrics(video: Tensor, reference: Tensor, options: VideoMetricsOptions = {}): VideoMetrics {
  const x = expectTensor(video, 'video', ['float32']);
  const y = expectTensor(reference, 'reference', ['float32']);
  expectObject(options, 'options');
  if (y.rank !== 4) throw new RangeError(`Expected reference to have shape [frames, channels, height, width] but received [${y.shape.join(', ')}]`);
  if (x.shape.join() !== y.shape.join()) throw new RangeError(`Expected video to have the shape of reference [${y.shape.join(', ')}] but received [${x.shape.join(', ')}]`);
  const [frames, channels, h, w] = y.shape;
  if (frames === 0 || channels * h * w === 0) throw new RangeError(`Expected a non-empty reference but received shape [${y.shape.join(', ')}]`);
  const chunkSize = expectInteger(options.chunkSize ?? 3, 'options.chunkSize', { min: 1 });
  for (let i = 0; i < y.size; i++) {
    if (!Number.isFinite(y.data[i])) throw new RangeError(`Expected finite values in reference but element ${i} is ${y.data[i]}`);
    if (!Number.isFinite(x.data[i])) throw new RangeError(`Expected finite values in video but element ${i} is ${x.data[i]}`);
  }
  let dataRange = options.dataRange;
  if (dataRange === undefined) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < y.size; i++) {
      lo = Math.min(lo, y.data[i]);
      hi = Math.max(hi, y.data[i]);
    }
    dataRange = hi - lo > 0 ? hi - lo : 1;
  }
  expectFiniteNumber(dataRange, 'options.dataRange', { positive: true });

  const frameSize = channels * h * w;
  const mse: number[] = [];
  const ssim: number[] = [];
  const temporal: number[] = [NaN];
  for (let f = 0; f < frames; f++) {
    const o = f * frameSize;
    let s = 0;
    for (let i = 0; i < frameSize; i++) s += (x.data[o + i] - y.data[o + i]) ** 2;
    mse.push(s / frameSize);
    let ss = 0;
    for (let c = 0; c < channels; c++) ss += ssimPlane(x.data, y.data, o + c * h * w, h, w, dataRange);
    ssim.push(ss / channels);
    if (f > 0) {
      const p = o - frameSize;
      let d = 0;
      for (let i = 0; i < frameSize; i++) d += (x.data[o + i] - x.data[p + i] - (y.data[o + i] - y.data[p + i])) ** 2;
      temporal.push(d / frameSize);
    }
  }
  const psnrOf = (m: number) => (m === 0 ? Infinity : 10 * Math.log10((dataRange * dataRange) / m));
  const mean = (a: number[]) => {
    const v = a.filter((n) => !Number.isNaN(n));
    return v.length ? v.reduce((s, n) => s + n, 0) / v.length : NaN;
  };
  const chunks = Math.ceil(frames / chunkSize);
  const byChunk = (a: number[]) => Array.from({ length: chunks }, (_, k) => mean(a.slice(k * chunkSize, (k + 1) * chunkSize)));
  const chunkMse = byChunk(mse);
  const totalMse = mean(mse);
  return {
    mse: totalMse,
    psnr: psnrOf(totalMse),
    ssim: mean(ssim),
    temporal: frames > 1 ? mean(temporal) : 0,
    perFrame: { mse, psnr: mse.map(psnrOf), ssim, temporal },
    perChunk: { mse: chunkMse, psnr: chunkMse.map(psnrOf), ssim: byChunk(ssim), temporal: byChunk(temporal) },
    dataRange,
    chunkSize,
  };
}

function gaussianWindow(size: number): Float64Array {
  const g = new Float64Array(size);
  const r = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) sum += g[i] = Math.exp(-((i - r) ** 2) / (2 * SSIM_SIGMA * SSIM_SIGMA));
  for (let i = 0; i < size; i++) g[i] /= sum;
  return g;
}

/** Mean SSIM of one h x w plane, with separable Gaussian filtering over the valid positions. */
function ssimPlane(a: ArrayLike<number>, b: ArrayLike<number>, offset: number, h: number, w: number, range: number): number {
  let size = Math.min(SSIM_WINDOW, h, w);
  if (size % 2 === 0) size--;
  const g = gaussianWindow(size);
  const oh = h - size + 1;
  const ow = w - size + 1;
  const c1 = (SSIM_K1 * range) ** 2;
  const c2 = (SSIM_K2 * range) ** 2;
  // Horizontal pass of the five moments, then vertical pass per output position.
  const rows = 5;
  const tmp = new Float64Array(rows * h * ow);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < ow; j++) {
      let mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
      for (let k = 0; k < size; k++) {
        const u = a[offset + i * w + j + k], v = b[offset + i * w + j + k], wt = g[k];
        mx += wt * u;
        my += wt * v;
        xx += wt * u * u;
        yy += wt * v * v;
        xy += wt * u * v;
      }
      const base = (i * ow + j) * rows;
      tmp[base] = mx;
      tmp[base + 1] = my;
      tmp[base + 2] = xx;
      tmp[base + 3] = yy;
      tmp[base + 4] = xy;
    }
  }
  let total = 0;
  for (let i = 0; i < oh; i++) {
    for (let j = 0; j < ow; j++) {
      let mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
      for (let k = 0; k < size; k++) {
        const base = ((i + k) * ow + j) * rows, wt = g[k];
        mx += wt * tmp[base];
        my += wt * tmp[base + 1];
        xx += wt * tmp[base + 2];
        yy += wt * tmp[base + 3];
        xy += wt * tmp[base + 4];
      }
      const vx = xx - mx * mx, vy = yy - my * my, cov = xy - mx * my;
      total += ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
    }
  }
  return total / (oh * ow);
}
