// A ReportData shared by the report tests: two settings, three methods over seven chunks, strings
// that need escaping and a few non-finite numbers. Counts the tests rely on are named below.
import type { ReportData } from '../../lib/index.js';

export const CHUNKS = 7;
export const METHODS = ['per-tensor min-max', 'per-channel MSE', 'full method'];
export const NORM_COLUMNS = 64;
export const OUTLIER_COLUMNS = 32;

export function fixture(): ReportData {
  const curve = (base: number, slope: number) => Array.from({ length: CHUNKS }, (_, k) => base - slope * k);
  const setting = (name: string, offset: number, nanPsnr: boolean) => ({
    name,
    checkpoint: `${name.toLowerCase()}.safetensors`,
    perChunk: METHODS.map((method, m) => ({
      method,
      psnr: curve(30 + 4 * m - offset, 0.8).map((v, k) => (nanPsnr && m === 0 && k === 3 ? NaN : v)),
      ssim: curve(0.9 + 0.02 * m, 0.01),
      mse: curve(0.02 - 0.005 * m, -0.001),
    })),
    speed: { fp32Seconds: 2.4, quantSeconds: name === 'W8A8' ? 1.1 : NaN },
    bytes: { fp32: 4_000_000, quantized: name === 'W8A8' ? 1_040_000 : 540_000, blockFp32: 3_600_000, blockQuantized: name === 'W8A8' ? 900_000 : 450_000 },
  });
  return {
    title: 'Q-ARVD <demo> & "report"',
    createdAt: '2026-05-20T10:00:00.000Z',
    model: { name: 'embedded-default', config: { dim: 64, blocks: 2, heads: 4, chunk: 3, patch: '1x2x2' } },
    machine: { cpu: 'AMD EPYC (Zen 3)', isa: 'avx2', threads: 2, node: 'v20.20.2' },
    totalSeconds: 71.5,
    steps: [
      { name: 'sensitivity', seconds: 20.5 },
      { name: 'calibrate & quantize', seconds: 31 },
      { name: 'generate + eval', seconds: 20 },
    ],
    sensitivity: {
      values: [0.5, 0.2, 0.12, 0.08, 0.05, 0.03, 0.02],
      chunkWeights: [3.5, 1.4, 0.84, 0.56, 0.35, 0.21, 0.14],
      prompts: 4,
      reference: [0.546, 0.167, 0.119, 0.079, 0.053, 0.026, 0.01],
      decreasing: true,
    },
    settings: [setting('W8A8', 0, true), setting('W4A8', 6, false)],
    ablation: [
      { setting: 'W8A8', method: 'per-tensor min-max', psnr: 28.1, ssim: 0.88, mse: 0.02 },
      { setting: 'W8A8', method: 'full method', psnr: 36.2, ssim: 0.95, mse: 0.003, note: 'chunk weighting + two-scale + GPTQ' },
      { setting: 'W8A8', method: '+ bit allocation', psnr: 35.9, ssim: NaN, mse: 0.0031, note: 'did not help <here>' },
      { setting: 'W4A8', method: 'per-tensor min-max', psnr: NaN, ssim: 0.7, mse: 0.2 },
      { setting: 'W4A8', method: 'full method', psnr: 29.5, ssim: 0.9, mse: 0.01 },
    ],
    outliers: [
      {
        layer: 'blocks.0.ffn.0',
        norms: Float64Array.from({ length: NORM_COLUMNS }, (_, j) => (j % 9 === 0 ? 8 + (j % 5) : 1 + 0.01 * (j % 7))),
        // Any 32 columns (the even ones): the plot highlights what it is given.
        outlierIdx: Int32Array.from({ length: OUTLIER_COLUMNS }, (_, i) => i * 2),
        detector: 'mad',
      },
      { layer: 'blocks.1.self_attn.q', norms: Array.from({ length: NORM_COLUMNS }, () => 1), outlierIdx: [], detector: 'iqr', threshold: 1.2 },
    ],
    videos: [
      { prompt: 'a red fox <runs> in "snow"', strip: 'strips/fox 0.png', rows: ['FP32', 'W8A8 <q>'], animations: [{ label: 'FP32', file: 'gifs/fox-fp32.gif' }, { label: 'W8A8', file: 'gifs/fox-w8a8.gif' }] },
      { prompt: 'waves & rocks', strip: 'strips/waves.png', animations: [{ label: 'FP32', file: 'gifs/waves#fp32.gif' }] },
    ],
    notes: ['Bit allocation did not help at W8A8.', '<script>alert(1)</script>'],
  };
}
