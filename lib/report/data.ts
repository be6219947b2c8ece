// What the demo report shows, as plain data, and its validation. Numbers may be NaN or infinite (a
// metric that could not be measured): the page shows them as "n/a". Anything of the wrong kind is a
// TypeError naming the field, e.g. "Expected a number for data.settings[0].speed.fp32Seconds".
import { describe, expectInteger } from '../util/validate.js';

/** A series of numbers: a plain array or a typed array (e.g. OutlierResult.norms). */
export type NumberList = ArrayLike<number>;

/** The demo timeline: one step of the pipeline and its wall time. */
export interface ReportStep { name: string; seconds: number }

export interface ReportSensitivity {
  /** Chunk-wise sensitivity s_k (normalised to sum 1), one per chunk. */
  values: NumberList;
  /** Calibration weights w_k = s_k / mean(s), one per chunk. */
  chunkWeights: NumberList;
  /** Number of prompts the sensitivity was measured over. */
  prompts: number;
  /** A published vector to compare with (the paper's [0.546, 0.167, ...]); drawn as a second series. */
  reference?: NumberList;
  /** Whether values decrease over chunks, as in the reference. */
  decreasing: boolean;
}

/** Per-chunk error of one method against the FP video (index = chunk). */
export interface ReportChunkCurves { method: string; psnr: NumberList; ssim: NumberList; mse: NumberList }

export interface ReportSetting {
  /** e.g. 'W8A8'; unique within a report. */
  name: string;
  /** The quantized checkpoint, relative to the report directory. */
  checkpoint: string;
  perChunk: ReportChunkCurves[];
  /** Seconds to generate one video with the FP32 and the quantized model. */
  speed: { fp32Seconds: number; quantSeconds: number };
  /** Weight bytes of the whole model and of the transformer blocks alone, FP32 and quantized. */
  bytes: { fp32: number; quantized: number; blockFp32: number; blockQuantized: number };
}

/** One row of the ablation table. */
export interface ReportAblationRow { setting: string; method: string; psnr: number; ssim: number; mse: number; note?: string }

export interface ReportOutlierLayer {
  layer: string;
  /** Column L2 norms c_j of the layer's weight W[N_out, K]. */
  norms: NumberList;
  /** Columns the layer treats as outliers (indices into norms). */
  outlierIdx: NumberList;
  /** 'mad' or 'iqr' (or another name, shown as is). */
  detector: string;
  /** The norm a column must exceed to be detected (OutlierResult.stats.threshold); for 'mad' and
   * 'iqr' it is recomputed from norms with the default settings when omitted. */
  threshold?: number;
}

export interface ReportVideo {
  prompt: string;
  /** PNG frame strip, relative to the report directory: FP row above the quantized rows. */
  strip: string;
  /** Labels of the strip's rows, top to bottom (e.g. ['FP32', 'W8A8', 'W4A8']). */
  rows?: string[];
  /** GIF animations, relative to the report directory. */
  animations: { label: string; file: string }[];
}

/** Where one video's time goes, in seconds per category (see ForwardProfile), for one model variant. */
export interface ReportProfile {
  /** e.g. 'FP32', 'W8A8', 'W8A8 + int8 attention'. */
  variant: string;
  linears: number;
  attention: number;
  norms: number;
  activations: number;
  copies: number;
  /** Wall time of the passes not spent in those kernels (JavaScript, N-API, waiting). */
  rest: number;
}

/** The categories of a ReportProfile, in stacking order. */
export const PROFILE_PARTS = ['linears', 'attention', 'norms', 'activations', 'copies', 'rest'] as const;

/** Everything `writeReport` puts on the page. */
export interface ReportData {
  title: string;
  /** ISO 8601 date and time. */
  createdAt: string;
  model: { name: string; config: Record<string, number | string> };
  machine: { cpu: string; isa: string; threads: number; node: string };
  /** Wall time of the whole demo and of its steps. */
  totalSeconds: number;
  steps: ReportStep[];
  sensitivity: ReportSensitivity;
  settings: ReportSetting[];
  ablation: ReportAblationRow[];
  outliers: ReportOutlierLayer[];
  videos: ReportVideo[];
  /** Where a video's time goes per variant (optional: reports written before it have none). */
  profiles?: ReportProfile[];
  /** Honest remarks: what did not help, which targets were missed. */
  notes: string[];
  /** The object tracker's verdicts on held-out captions, per model (FP32 and the quantized settings). */
  tracking?: ReportTracking;
  /** How the model was trained (the trained embedded default's record). */
  training?: ReportTraining;
}

/** Videos whose tracked object agrees with the caption, out of `prompts`, per model. */
export interface ReportTracking {
  prompts: number;
  /** The first held-out seed the captions came from. */
  firstSeed: number;
  /** agree: colour and motion both as captioned; colour, motion, shape: each part alone. */
  rows: { label: string; agree: number; colour: number; motion: number; shape: number }[];
}

/** The training run of the model. */
export interface ReportTraining {
  steps: number;
  batch: number;
  seconds: number;
  threads: number;
  /** Flow-matching loss on held-out videos, before and after training. */
  heldOut: { videos: number; untrained: number; trained: number };
  /** Smoothed training loss (and held-out loss where measured) by step. */
  curve: { step: number; loss: number; heldOut?: number }[];
}

/**
 * Checks that `data` has the shape of ReportData, throwing a TypeError that names the first field of
 * the wrong kind, or a RangeError for a bad value (mismatched lengths, an outlier index outside the
 * norms, an absolute or URL file path, a duplicate setting name, an unparseable date).
 *
 * @example
 * checkReportData(JSON.parse(text)); // throws "Expected a string for data.title but received 3"
 */
export function checkReportData(data: unknown): ReportData {
  const d = object(data, 'data');
  string(d.title, 'data.title');
  if (Number.isNaN(Date.parse(string(d.createdAt, 'data.createdAt')))) {
    throw new RangeError(`Expected an ISO date for data.createdAt but received ${describe(d.createdAt)}`);
  }
  const model = object(d.model, 'data.model');
  string(model.name, 'data.model.name');
  const config = object(model.config, 'data.model.config');
  for (const [k, v] of Object.entries(config)) {
    if (typeof v !== 'number' && typeof v !== 'string') throw new TypeError(`Expected a number or string for data.model.config.${k} but received ${describe(v)}`);
  }
  const machine = object(d.machine, 'data.machine');
  string(machine.cpu, 'data.machine.cpu');
  string(machine.isa, 'data.machine.isa');
  expectInteger(machine.threads, 'data.machine.threads', { min: 0 });
  string(machine.node, 'data.machine.node');
  number(d.totalSeconds, 'data.totalSeconds');
  array(d.steps, 'data.steps').forEach((s, i) => {
    const step = object(s, `data.steps[${i}]`);
    string(step.name, `data.steps[${i}].name`);
    number(step.seconds, `data.steps[${i}].seconds`);
  });
  checkSensitivity(d.sensitivity);
  const names = new Set<string>();
  array(d.settings, 'data.settings').forEach((s, i) => {
    const name = checkSetting(s, `data.settings[${i}]`);
    if (names.has(name)) throw new RangeError(`Expected unique setting names but data.settings[${i}].name repeats ${describe(name)}`);
    names.add(name);
  });
  array(d.ablation, 'data.ablation').forEach((a, i) => {
    const row = object(a, `data.ablation[${i}]`);
    string(row.setting, `data.ablation[${i}].setting`);
    string(row.method, `data.ablation[${i}].method`);
    for (const k of ['psnr', 'ssim', 'mse']) number(row[k], `data.ablation[${i}].${k}`);
    if (row.note !== undefined) string(row.note, `data.ablation[${i}].note`);
  });
  array(d.outliers, 'data.outliers').forEach((o, i) => checkOutlierLayer(o, `data.outliers[${i}]`));
  array(d.videos, 'data.videos').forEach((v, i) => {
    const video = object(v, `data.videos[${i}]`);
    string(video.prompt, `data.videos[${i}].prompt`);
    relativePath(video.strip, `data.videos[${i}].strip`);
    if (video.rows !== undefined) array(video.rows, `data.videos[${i}].rows`).forEach((r, j) => string(r, `data.videos[${i}].rows[${j}]`));
    array(video.animations, `data.videos[${i}].animations`).forEach((a, j) => {
      const anim = object(a, `data.videos[${i}].animations[${j}]`);
      string(anim.label, `data.videos[${i}].animations[${j}].label`);
      relativePath(anim.file, `data.videos[${i}].animations[${j}].file`);
    });
  });
  if (d.profiles !== undefined) {
    array(d.profiles, 'data.profiles').forEach((p, i) => {
      const profile = object(p, `data.profiles[${i}]`);
      string(profile.variant, `data.profiles[${i}].variant`);
      for (const k of PROFILE_PARTS) {
        if (number(profile[k], `data.profiles[${i}].${k}`) < 0) throw new RangeError(`Expected a non-negative number of seconds for data.profiles[${i}].${k} but received ${describe(profile[k])}`);
      }
    });
  }
  array(d.notes, 'data.notes').forEach((n, i) => string(n, `data.notes[${i}]`));
  if (d.tracking !== undefined) {
    const tr = object(d.tracking, 'data.tracking');
    expectInteger(tr.prompts, 'data.tracking.prompts', { min: 0 });
    array(tr.rows, 'data.tracking.rows').forEach((r, i) => {
      const row = object(r, `data.tracking.rows[${i}]`);
      string(row.label, `data.tracking.rows[${i}].label`);
      for (const k of ['agree', 'colour', 'motion', 'shape']) expectInteger(row[k], `data.tracking.rows[${i}].${k}`, { min: 0, max: tr.prompts as number });
    });
  }
  if (d.training !== undefined) {
    const tr = object(d.training, 'data.training');
    for (const k of ['steps', 'batch', 'seconds', 'threads']) number(tr[k], `data.training.${k}`);
    const h = object(tr.heldOut, 'data.training.heldOut');
    for (const k of ['untrained', 'trained']) number(h[k], `data.training.heldOut.${k}`);
    array(tr.curve, 'data.training.curve').forEach((c, i) => {
      const p = object(c, `data.training.curve[${i}]`);
      number(p.step, `data.training.curve[${i}].step`);
      number(p.loss, `data.training.curve[${i}].loss`);
    });
  }
  return data as ReportData;
}

function checkSensitivity(value: unknown): void {
  const s = object(value, 'data.sensitivity');
  const values = numbers(s.values, 'data.sensitivity.values');
  const weights = numbers(s.chunkWeights, 'data.sensitivity.chunkWeights');
  if (weights.length !== values.length) {
    throw new RangeError(`Expected one chunk weight per chunk (${values.length}) in data.sensitivity.chunkWeights but received ${weights.length}`);
  }
  expectInteger(s.prompts, 'data.sensitivity.prompts', { min: 0 });
  if (s.reference !== undefined) numbers(s.reference, 'data.sensitivity.reference');
  if (typeof s.decreasing !== 'boolean') throw new TypeError(`Expected a boolean for data.sensitivity.decreasing but received ${describe(s.decreasing)}`);
}

function checkSetting(value: unknown, name: string): string {
  const s = object(value, name);
  const settingName = string(s.name, `${name}.name`);
  relativePath(s.checkpoint, `${name}.checkpoint`);
  array(s.perChunk, `${name}.perChunk`).forEach((c, i) => {
    const curves = object(c, `${name}.perChunk[${i}]`);
    string(curves.method, `${name}.perChunk[${i}].method`);
    const psnr = numbers(curves.psnr, `${name}.perChunk[${i}].psnr`);
    for (const k of ['ssim', 'mse']) {
      const n = numbers(curves[k], `${name}.perChunk[${i}].${k}`).length;
      if (n !== psnr.length) throw new RangeError(`Expected ${psnr.length} chunks in ${name}.perChunk[${i}].${k} (as in psnr) but received ${n}`);
    }
  });
  const speed = object(s.speed, `${name}.speed`);
  for (const k of ['fp32Seconds', 'quantSeconds']) number(speed[k], `${name}.speed.${k}`);
  const bytes = object(s.bytes, `${name}.bytes`);
  for (const k of ['fp32', 'quantized', 'blockFp32', 'blockQuantized']) number(bytes[k], `${name}.bytes.${k}`);
  return settingName;
}

function checkOutlierLayer(value: unknown, name: string): void {
  const o = object(value, name);
  string(o.layer, `${name}.layer`);
  const norms = numbers(o.norms, `${name}.norms`);
  const idx = numbers(o.outlierIdx, `${name}.outlierIdx`);
  if (idx.length > norms.length) throw new RangeError(`Expected at most ${norms.length} columns in ${name}.outlierIdx but received ${idx.length}`);
  for (let i = 0; i < idx.length; i++) expectInteger(idx[i], `${name}.outlierIdx[${i}]`, { min: 0, max: Math.max(0, norms.length - 1) });
  string(o.detector, `${name}.detector`);
  if (o.threshold !== undefined) number(o.threshold, `${name}.threshold`);
}

function object(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError(`Expected an object for ${name} but received ${describe(value)}`);
  return value as Record<string, unknown>;
}

function array(value: unknown, name: string): unknown[] {
  if (!Array.isArray(value)) throw new TypeError(`Expected an array for ${name} but received ${describe(value)}`);
  return value;
}

function string(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new TypeError(`Expected a string for ${name} but received ${describe(value)}`);
  return value;
}

// NaN and infinities are allowed: they are shown as "n/a".
function number(value: unknown, name: string): number {
  if (typeof value !== 'number') throw new TypeError(`Expected a number for ${name} but received ${describe(value)}`);
  return value;
}

function numbers(value: unknown, name: string): ArrayLike<number> {
  const typed = ArrayBuffer.isView(value) && !(value instanceof DataView) && !(value instanceof BigInt64Array) && !(value instanceof BigUint64Array);
  if (!Array.isArray(value) && !typed) throw new TypeError(`Expected an array of numbers for ${name} but received ${describe(value)}`);
  const list = value as ArrayLike<unknown>;
  for (let i = 0; i < list.length; i++) number(list[i], `${name}[${i}]`);
  return list as ArrayLike<number>;
}

// Files are linked relative to index.html, so the report directory can be moved or served as is.
function relativePath(value: unknown, name: string): string {
  const p = string(value, name);
  if (p === '' || p.startsWith('/') || p.startsWith('\\') || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(p)) {
    throw new RangeError(`Expected a non-empty path relative to the report directory for ${name} but received ${describe(p)}`);
  }
  return p;
}
