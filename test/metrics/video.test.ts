import t from 'tap';
import { Tensor, videoMetrics } from '../../lib/index.js';

function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
}
function video(frames: number, channels: number, h: number, w: number, fill: (f: number, c: number, i: number, j: number) => number) {
  const data = new Float32Array(frames * channels * h * w);
  let n = 0;
  for (let f = 0; f < frames; f++) for (let c = 0; c < channels; c++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) data[n++] = fill(f, c, i, j);
  return new Tensor('float32', [frames, channels, h, w], data);
}

// SSIM of one plane straight from the definition: a full 2-D Gaussian window at every valid position.
function ssimDirect(a: Float32Array, b: Float32Array, h: number, w: number, L: number, size = 11): number {
  const r = (size - 1) / 2;
  const g: number[][] = [];
  let sum = 0;
  for (let i = 0; i < size; i++) {
    g.push([]);
    for (let j = 0; j < size; j++) {
      const v = Math.exp(-((i - r) ** 2 + (j - r) ** 2) / (2 * 1.5 * 1.5));
      g[i].push(v);
      sum += v;
    }
  }
  const c1 = (0.01 * L) ** 2, c2 = (0.03 * L) ** 2;
  let total = 0, count = 0;
  for (let y = 0; y + size <= h; y++) {
    for (let x = 0; x + size <= w; x++) {
      let ma = 0, mb = 0;
      for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) {
        ma += (g[i][j] / sum) * a[(y + i) * w + x + j];
        mb += (g[i][j] / sum) * b[(y + i) * w + x + j];
      }
      let va = 0, vb = 0, cov = 0;
      for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) {
        const wt = g[i][j] / sum, da = a[(y + i) * w + x + j] - ma, db = b[(y + i) * w + x + j] - mb;
        va += wt * da * da;
        vb += wt * db * db;
        cov += wt * da * db;
      }
      total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
}

t.test('identical videos: zero error, infinite PSNR, SSIM 1', (t) => {
  const r = rng(1);
  const a = video(7, 2, 12, 13, () => r());
  const m = videoMetrics(a, a);
  t.equal(m.mse, 0);
  t.equal(m.psnr, Infinity);
  t.ok(Math.abs(m.ssim - 1) < 1e-12);
  t.equal(m.temporal, 0);
  t.equal(m.perChunk.mse.length, 3, '7 frames in chunks of 3 make 3 chunks');
  t.ok(Number.isNaN(m.perFrame.temporal[0]), 'no transition into frame 0');
  t.end();
});

t.test('known noise levels: MSE, PSNR and per-chunk values in closed form', (t) => {
  const ref = video(6, 1, 4, 4, () => 0.25);
  // Frame f carries noise of amplitude e_f with alternating sign: MSE of the frame is e_f^2.
  const e = [0.1, 0.1, 0.1, 0.2, 0.2, 0.4];
  const noisy = video(6, 1, 4, 4, (f, c, i, j) => 0.25 + e[f] * ((i + j) % 2 ? 1 : -1));
  const m = videoMetrics(noisy, ref, { dataRange: 2, chunkSize: 3 });
  e.forEach((ef, f) => t.ok(Math.abs(m.perFrame.mse[f] - ef * ef) < 1e-7, `frame ${f} MSE`));
  const mean = e.reduce((s, v) => s + v * v, 0) / 6;
  t.ok(Math.abs(m.mse - mean) < 1e-7);
  t.ok(Math.abs(m.psnr - 10 * Math.log10(4 / mean)) < 1e-5);
  t.ok(Math.abs(m.perChunk.mse[0] - 0.01) < 1e-7);
  t.ok(Math.abs(m.perChunk.mse[1] - (0.04 + 0.04 + 0.16) / 3) < 1e-7);
  t.ok(Math.abs(m.perChunk.psnr[0] - 10 * Math.log10(4 / 0.01)) < 1e-4);
  t.end();
});

t.test('temporal consistency: a constant offset is consistent, a drift is not', (t) => {
  const r = rng(2);
  const ref = video(5, 2, 6, 6, () => r());
  const shifted = new Tensor('float32', ref.shape, ref.data.map((v) => v + 0.3));
  t.ok(videoMetrics(shifted, ref).temporal < 1e-12);
  const d = 0.05;
  const drift = video(5, 2, 6, 6, (f, c, i, j) => ref.data[((f * 2 + c) * 6 + i) * 6 + j] + f * d);
  const m = videoMetrics(drift, ref);
  for (let f = 1; f < 5; f++) t.ok(Math.abs(m.perFrame.temporal[f] - d * d) < 1e-7, `transition ${f}`);
  t.end();
});

t.test('SSIM equals the direct 2-D definition', (t) => {
  const r = rng(3);
  const h = 17, w = 20;
  const ref = video(1, 1, h, w, () => r());
  const noisy = video(1, 1, h, w, (f, c, i, j) => ref.data[i * w + j] + 0.3 * r());
  const m = videoMetrics(noisy, ref, { dataRange: 2 });
  const direct = ssimDirect(noisy.data, ref.data, h, w, 2);
  t.ok(Math.abs(m.ssim - direct) < 1e-9, `${m.ssim} vs ${direct}`);
  t.ok(m.ssim < 1 && m.ssim > 0);
  // Small frames use the largest odd window that fits.
  const small = video(1, 1, 8, 9, () => r());
  const smallNoisy = video(1, 1, 8, 9, (f, c, i, j) => small.data[i * 9 + j] + 0.2 * r());
  t.ok(Math.abs(videoMetrics(smallNoisy, small, { dataRange: 2 }).ssim - ssimDirect(smallNoisy.data, small.data, 8, 9, 2, 7)) < 1e-9);
  t.end();
});

t.test('bad input', (t) => {
  const a = video(2, 1, 4, 4, () => 0);
  t.throws(() => videoMetrics(a, video(3, 1, 4, 4, () => 0)), { name: 'RangeError', message: /video/ });
  t.throws(() => videoMetrics(a.reshape([2, 16]), a.reshape([2, 16])), { name: 'RangeError', message: /reference/ });
  t.throws(() => videoMetrics(Tensor.zeros('int8', [2, 1, 4, 4]), a), { name: 'TypeError', message: /video/ });
  t.throws(() => videoMetrics(a, a, { chunkSize: 0 }), { name: 'RangeError', message: /chunkSize/ });
  t.throws(() => videoMetrics(a, a, { dataRange: -1 }), { name: 'RangeError', message: /dataRange/ });
  t.throws(() => videoMetrics(video(2, 1, 4, 4, () => NaN), a), { name: 'RangeError', message: /video/ });
  t.throws(() => videoMetrics(Tensor.zeros('float32', [0, 1, 4, 4]), Tensor.zeros('float32', [0, 1, 4, 4])), { name: 'RangeError', message: /non-empty/ });
  t.end();
});
