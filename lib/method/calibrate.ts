// Whole-model calibration (Q-ARVD, step 2): generate videos with the full-precision model while
// every block linear's input is streamed into bounded, mergeable statistics tagged by chunk:
// per-chunk histograms (activation ranges), X^T X (GPTQ's Hessian, chunk-weighted and uniform) and
// the error dynamic per-token quantization would make (for per-chunk bit allocation). No
// activation is kept.
import type { Linear } from '../gemm/linear.js';
import type { CausalDit } from '../model/dit.js';
import { expectPrompts, promptLabel, type Prompt } from '../model/prompts.js';
import { ChunkScheduler } from '../schedule/scheduler.js';
import { DEFAULT_TIMESTEPS } from '../model/sampling.js';
import { Tensor } from '../tensor/tensor.js';
import { MseObserver, type MseObserverJSON } from '../calibration/mse_observer.js';
import { Gram, type GramJSON } from '../calibration/gram.js';
import { expectWeights } from '../calibration/checks.js';
import { dequantize, quantize } from '../primitives/quantize.js';
import { describe, expectInteger, expectObject } from '../util/validate.js';

/** Statistics of one block linear's input. */
export interface LayerStats {
  /** The whole input (single-scale layers). */
  input: MseObserver;
  /** Inputs of the outlier and normal columns, for layers calibrated as dual-scale candidates. */
  segments: { outlierIdx: Int32Array; outlier: MseObserver; normal: MseObserver } | null;
  /** sum over rows of w_chunk x x^T, w = the chunk weights given to calibrate(). */
  gram: Gram;
  /** The same with every row weighing 1, for dual-scale candidates (the reference calibrates dual-scale layers with uniform weights); null for the others. */
  gramUniform: Gram | null;
  /** Per chunk: squared error of int8 dynamic per-token quantization of the input (per segment for dual candidates). */
  tokenSse: Float64Array;
}

export interface CalibrateOptions {
  /** Prompts: text, or text-encoder features ({ prompt, context }). */
  prompts: Prompt[];
  /** Video i uses seed + i. */
  seed?: number;
  chunks?: number;
  /** Chunk weights w_k of the weighted Gram (default uniform). */
  chunkWeights?: ArrayLike<number>;
  /** Outlier columns of the layers to calibrate as dual-scale candidates (e.g. from detectModelOutliers). */
  outliers?: Readonly<Record<string, Int32Array>>;
  /** Histogram bins of the observers (default 32768, as the reference). */
  bins?: number;
  /** Only the block linears named here (default all). */
  layers?: string[];
  onProgress?: (done: number, total: number) => void;
}

/** Calibration statistics of a model: mergeable across processes (same prompts split, same result). */
export class CalibrationStats {
  readonly layers: Map<string, LayerStats>;
  /** Prompts the statistics were gathered from (in order), and chunk weights of the weighted Gram. */
  readonly prompts: string[];
  /** Seed of prompts[0]; prompt i was generated with seed + i. */
  readonly seed: number;
  readonly chunkWeights: number[];

  constructor(layers: Map<string, LayerStats>, prompts: string[], seed: number, chunkWeights: number[]) {
    this.layers = layers;
    this.prompts = prompts;
    this.seed = seed;
    this.chunkWeights = chunkWeights;
  }

  /** Statistics of a layer. */
  layer(name: string): LayerStats {
    const s = this.layers.get(name);
    if (!s) throw new RangeError(`No calibration statistics for layer ${describe(name)}`);
    return s;
  }

  /**
   * Adds the statistics of the prompts that follow this one's (another process's shard: the same
   * layers, outlier columns and chunk weights, seeds continuing this one's).
   */
  merge(other: CalibrationStats): this {
    if (!(other instanceof CalibrationStats)) throw new TypeError(`Expected CalibrationStats for other but received ${describe(other)}`);
    if (other.seed !== this.seed + this.prompts.length) {
      throw new RangeError(`Cannot merge: these statistics cover seeds ${this.seed}..${this.seed + this.prompts.length - 1}, the other part starts at seed ${other.seed} (merge the parts in prompt order, each once)`);
    }
    if (other.chunkWeights.join() !== this.chunkWeights.join()) throw new RangeError('Cannot merge calibration statistics gathered with different chunk weights');
    if ([...other.layers.keys()].join() !== [...this.layers.keys()].join()) throw new RangeError('Cannot merge calibration statistics of different layers');
    for (const [name, s] of this.layers) {
      const o = other.layers.get(name)!;
      if ((s.segments?.outlierIdx.join() ?? '') !== (o.segments?.outlierIdx.join() ?? '')) throw new RangeError(`Cannot merge: ${name} was calibrated with different outlier columns`);
      s.input.merge(o.input);
      if (s.segments && o.segments) {
        s.segments.outlier.merge(o.segments.outlier);
        s.segments.normal.merge(o.segments.normal);
      }
      s.gram.merge(o.gram);
      if (s.gramUniform && o.gramUniform) s.gramUniform.merge(o.gramUniform);
      const sse = new Float64Array(Math.max(s.tokenSse.length, o.tokenSse.length));
      sse.set(s.tokenSse);
      o.tokenSse.forEach((v, k) => (sse[k] += v));
      s.tokenSse = sse;
    }
    this.prompts.push(...other.prompts);
    return this;
  }

  toJSON(): CalibrationStatsJSON {
    const layers: CalibrationStatsJSON['layers'] = {};
    for (const [name, s] of this.layers) {
      layers[name] = {
        input: s.input.toJSON(),
        segments: s.segments && { outlierIdx: [...s.segments.outlierIdx], outlier: s.segments.outlier.toJSON(), normal: s.segments.normal.toJSON() },
        gram: s.gram.toJSON(),
        gramUniform: s.gramUniform && s.gramUniform.toJSON(),
        tokenSse: [...s.tokenSse],
      };
    }
    return { type: 'CalibrationStats', version: 1, prompts: [...this.prompts], seed: this.seed, chunkWeights: [...this.chunkWeights], layers };
  }

  static fromJSON(json: unknown): CalibrationStats {
    const j = expectObject(json, 'json');
    if (j.type !== 'CalibrationStats') throw new TypeError(`Expected calibration statistics (type CalibrationStats) but received type ${describe(j.type)}`);
    if (j.version !== 1) throw new RangeError(`Calibration statistics version ${describe(j.version)} cannot be read; this qarvd reads version 1`);
    if (!Array.isArray(j.prompts) || !j.prompts.every((p) => typeof p === 'string')) throw new TypeError('Expected json.prompts to be an array of strings');
    const chunkWeights = [...expectWeights(j.chunkWeights, 'json.chunkWeights')];
    const layers = new Map<string, LayerStats>();
    for (const [name, raw] of Object.entries(expectObject(j.layers, 'json.layers'))) {
      const l = expectObject(raw, `json.layers['${name}']`);
      const seg = l.segments === null ? null : expectObject(l.segments, `json.layers['${name}'].segments`);
      layers.set(name, {
        input: MseObserver.fromJSON(l.input),
        segments: seg && { outlierIdx: Int32Array.from(seg.outlierIdx as number[]), outlier: MseObserver.fromJSON(seg.outlier), normal: MseObserver.fromJSON(seg.normal) },
        gram: Gram.fromJSON(l.gram),
        gramUniform: l.gramUniform === null ? null : Gram.fromJSON(l.gramUniform),
        tokenSse: Float64Array.from(expectWeights(l.tokenSse, `json.layers['${name}'].tokenSse`)),
      });
    }
    return new CalibrationStats(layers, [...(j.prompts as string[])], expectInteger(j.seed, 'json.seed', { min: 0 }), chunkWeights);
  }
}

export interface CalibrationStatsJSON {
  type: 'CalibrationStats';
  version: 1;
  prompts: string[];
  seed: number;
  chunkWeights: number[];
  layers: Record<string, { input: MseObserverJSON; segments: { outlierIdx: number[]; outlier: MseObserverJSON; normal: MseObserverJSON } | null; gram: GramJSON; gramUniform: GramJSON | null; tokenSse: number[] }>;
}

/** Passes a layer's input to `record` before running it. */
class ObservingLinear implements Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weightBytes: number;
  readonly bias: Float32Array | null;
  constructor(
    readonly inner: Linear,
    readonly record: (x: Tensor<'float32'>) => Promise<void>,
  ) {
    this.inFeatures = inner.inFeatures;
    this.outFeatures = inner.outFeatures;
    this.weightBytes = inner.weightBytes;
    this.bias = inner.bias;
  }
  async forward(x: Tensor): Promise<Tensor<'float32'>> {
    await this.record(x as Tensor<'float32'>);
    return this.inner.forward(x);
  }
  forwardSync(): Tensor<'float32'> {
    throw new Error('Calibration runs layers asynchronously');
  }
}

/**
 * Generates one video per prompt with the model in full precision and streams every block
 * linear's input into {@link CalibrationStats}. The statistics hold no activations: histograms of
 * fixed size per chunk, K x K Gram matrices and per-chunk sums.
 *
 * @example
 * const outliers = detectModelOutliers(model);
 * const stats = await calibrate(model, { prompts: DEFAULT_PROMPTS.slice(0, 2), chunkWeights, outliers });
 */
export async function calibrate(model: CausalDit, options: CalibrateOptions): Promise<CalibrationStats> {
  const o = expectObject(options, 'options') as unknown as CalibrateOptions;
  expectPrompts(o.prompts, 'options.prompts', { allowEmpty: true });
  const seed = expectInteger(o.seed ?? 0, 'options.seed', { min: 0 });
  const chunks = expectInteger(o.chunks ?? model.config.chunks, 'options.chunks', { min: 1 });
  const chunkWeights = o.chunkWeights === undefined ? new Array(chunks).fill(1) : [...expectWeights(o.chunkWeights, 'options.chunkWeights')];
  if (chunkWeights.length < chunks) throw new RangeError(`Expected ${chunks} chunk weights in options.chunkWeights but received ${chunkWeights.length}`);
  const bins = expectInteger(o.bins ?? 32768, 'options.bins', { min: 16, max: 1 << 20 });
  const names = o.layers ?? model.blockLinearNames;
  for (const n of names) if (!model.blockLinearNames.includes(n)) throw new RangeError(`Expected block linear names in options.layers but received ${describe(n)}`);
  const outliers = o.outliers === undefined ? {} : expectObject(o.outliers, 'options.outliers');

  const observer = () => new MseObserver({ dtype: 'int8', scheme: 'asymmetric', bins });
  const layers = new Map<string, LayerStats>();
  for (const name of names) {
    const k = model.linear(name).inFeatures;
    const idx = outliers[name] as Int32Array | undefined;
    if (idx !== undefined && !(idx instanceof Int32Array)) throw new TypeError(`Expected an Int32Array for options.outliers['${name}'] but received ${describe(idx)}`);
    layers.set(name, {
      input: observer(),
      segments: idx && idx.length > 0 ? { outlierIdx: idx, outlier: observer(), normal: observer() } : null,
      gram: new Gram(k),
      gramUniform: idx && idx.length > 0 ? new Gram(k) : null,
      tokenSse: new Float64Array(chunks),
    });
  }
  const stats = new CalibrationStats(layers, o.prompts.map(promptLabel), seed, chunkWeights);

  const set: Record<string, Linear> = {};
  let scheduler: ChunkScheduler;
  for (const name of names) {
    const s = layers.get(name)!;
    const normalIdx = s.segments && complement(s.segments.outlierIdx, model.linear(name).inFeatures);
    set[name] = new ObservingLinear(model.linear(name), async (x) => {
      const chunk = scheduler.current!.chunk;
      const tags = { chunk, timestep: scheduler.current!.timestep };
      s.input.observe(x, tags);
      if (s.segments) {
        const xo = gatherColumns(x, s.segments.outlierIdx);
        const xn = gatherColumns(x, normalIdx!);
        s.segments.outlier.observe(xo, tags);
        s.segments.normal.observe(xn, tags);
        s.tokenSse[chunk] += (await perTokenSse(xo)) + (await perTokenSse(xn));
      } else {
        s.tokenSse[chunk] += await perTokenSse(x);
      }
      await s.gram.accumulate(x, { weight: chunkWeights[chunk] });
      await s.gramUniform?.accumulate(x);
    });
  }
  scheduler = new ChunkScheduler(model, ChunkScheduler.everyChunk(set));
  const passes = chunks * ((model.config.timesteps ?? DEFAULT_TIMESTEPS).length + 1);
  for (let i = 0; i < o.prompts.length; i++) {
    await scheduler.generate({
      prompt: o.prompts[i],
      seed: seed + i,
      chunks,
      onProgress: (done) => o.onProgress?.(i * passes + done, o.prompts.length * passes),
    });
  }
  return stats;
}

/** Ascending indices of [0, k) not in `idx` (ascending). */
export function complement(idx: Int32Array, k: number): Int32Array {
  const out = new Int32Array(k - idx.length);
  let j = 0, n = 0;
  for (let c = 0; c < k; c++) {
    if (j < idx.length && idx[j] === c) j++;
    else out[n++] = c;
  }
  return out;
}

/** The columns `idx` of x [..., K] as [rows, idx.length]. */
export function gatherColumns(x: Tensor<'float32'>, idx: Int32Array): Tensor<'float32'> {
  const k = x.shape[x.rank - 1];
  const rows = x.size / k;
  const out = new Float32Array(rows * idx.length);
  const src = x.data;
  for (let r = 0; r < rows; r++) {
    const base = r * k;
    const o = r * idx.length;
    for (let j = 0; j < idx.length; j++) out[o + j] = src[base + idx[j]];
  }
  return new Tensor('float32', [rows, idx.length], out);
}

/** Sum of squared errors of int8 asymmetric dynamic per-token (per row) fake quantization of x (the native kernels). */
export async function perTokenSse(x: Tensor<'float32'>): Promise<number> {
  if (x.size === 0) return 0;
  const q = await quantize(x, { dtype: 'int8', scheme: 'asymmetric', granularity: { type: 'perToken' } });
  const back = (await dequantize(q)).data;
  const d = x.data;
  let sse = 0;
  for (let j = 0; j < d.length; j++) {
    const e = back[j] - d[j];
    if (e === e) sse += e * e; // NaN inputs (none in a healthy model) are left out
  }
  return sse;
}
