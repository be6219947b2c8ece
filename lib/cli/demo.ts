import type { Command } from 'commander';
import { prepareOutputFolder } from '../io/paths.js';
import os from 'node:os';
import path from 'node:path';
import { backends } from '../backends.js';
import { writeFileAtomic } from '../io/safetensors.js';
import { channelRanges, frameStrip, latentsToFrames, writeGif, writePng } from '../io/images.js';
import { saveQuantizedModel } from '../checkpoint/checkpoint.js';
import { writeReport } from '../report/html.js';
import type { ReportData, ReportProfile } from '../report/data.js';
import { chunkWeightsFromSensitivity } from '../calibration/chunk_weights.js';
import { detectOutliersSync } from '../calibration/outliers.js';
import { calibrate } from '../method/calibrate.js';
import { detectModelOutliers, quantizeModel, roundToNearest } from '../method/quantize.js';
import { ablationRows, evaluateLayerSets, SETTINGS, type VideoRequest } from '../method/ablation.js';
import { buildLayerSets, fullPrecisionTensors, storedBytes, type LayerSpec } from '../method/spec.js';
import type { CausalDit } from '../model/dit.js';
import { DEFAULT_PROMPTS } from '../model/prompts.js';
import { ForwardProfile } from '../model/native_pass.js';
import { generate } from '../model/sampling.js';
import { ChunkScheduler, type LayerSet } from '../schedule/scheduler.js';
import { measureSensitivity } from '../schedule/sensitivity.js';
import type { Tensor } from '../tensor/tensor.js';
import { intOption, modelFromOptions, oneOfOption } from './generate.js';
import type { QuantizedModel } from '../method/quantize.js';
import { progress } from './progress.js';
import { EMBEDDED_DEFAULT, type DitConfig } from '../model/config.js';
import { embeddedTraining } from '../model/embedded.js';
import { HELD_OUT_SEED, SHAPES_SIZE, SPACE_TO_DEPTH, heldOutScenes, latentsToRgb } from '../data/shapes.js';
import { checkCaption, trackFrames } from '../data/tracker.js';

/** The paper's chunk-wise sensitivity of Self-Forcing (SPEC section 1), shown beside ours. */
const PAPER_SENSITIVITY = [0.546, 0.167, 0.119, 0.079, 0.053, 0.026, 0.01];

interface DemoOptions {
  model?: string; config?: string; out: string; sensitivityPrompts?: number; calibrationPrompts?: number; evalPrompts?: number; trackPrompts: number; repeats: number; bins: number;
  attention: 'bf16' | 'int8'; kvCache: 'bf16' | 'int8'; quiet?: boolean;
}

/** Prompt counts when none are given: the trained embedded default is fast enough for more. */
const PROMPT_COUNTS = { shapes: { sensitivity: 8, calibration: 4, eval: 4 }, other: { sensitivity: 2, calibration: 2, eval: 2 } };

/** `qarvd demo`: the whole pipeline on the embedded default (trained weights), written up as report/index.html. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the whole Q-ARVD pipeline (sensitivity, calibration, W8A8 and W4A8 quantization with the ablation, generation, evaluation, timing) and write an HTML report with the checkpoints')
    .option('--model <file>', 'model file (safetensors with Wan names); default: the embedded default')
    .option('--config <name>', 'configuration for a file without one, or for synthetic weights')
    .option('--out <dir>', 'report folder', 'report')
    .option('--sensitivity-prompts <n>', 'prompts of the sensitivity measurement (default 8 on the trained embedded default, else 2)', intOption('--sensitivity-prompts', 1))
    .option('--calibration-prompts <n>', 'prompts of the calibration (default 4 on the trained embedded default, else 2)', intOption('--calibration-prompts', 1))
    .option('--eval-prompts <n>', 'prompts of the evaluation, different from the calibration ones (default 4 on the trained embedded default, else 2)', intOption('--eval-prompts', 1))
    .option('--track-prompts <n>', 'held-out captions whose FP32, W8A8 and W4A8 videos the object tracker checks (models of the moving-shapes data only)', intOption('--track-prompts', 0), 24)
    .option('--repeats <n>', 'timed generations per model (the fastest counts)', intOption('--repeats', 1), 3)
    .option('--bins <n>', 'histogram bins of the activation observers', intOption('--bins', 16), 32768)
    .option('--attention <precision>', 'quantized attention of the last ablation rows and timings: int8 (smoothed keys, P.V in bf16) or bf16', oneOfOption('--attention', ['bf16', 'int8'] as const), 'int8')
    .option('--kv-cache <storage>', 'KV cache storage of the last ablation row: int8 or bf16', oneOfOption('--kv-cache', ['bf16', 'int8'] as const), 'int8')
    .option('--quiet', 'no progress output')
    .action(async (o: DemoOptions) => {
      const result = await runDemo(await modelFromOptions(o), o);
      console.log(JSON.stringify(result, null, 2));
    });
}

async function runDemo(model: CausalDit, o: DemoOptions) {
  const started = performance.now();
  const steps: { name: string; seconds: number }[] = [];
  let stepStart = performance.now();
  const step = (name: string) => {
    const now = performance.now();
    steps.push({ name, seconds: (now - stepStart) / 1000 });
    stepStart = now;
  };
  await prepareOutputFolder(o.out, '--out');
  // A model of the moving-shapes data (the trained embedded default) gets captions of that data
  // (from seeds no training video had) and pictures of its decoded RGB frames; others get the
  // default prompts and pictures of three latent channels.
  const shapes = isShapesModel(model.config);
  const counts = PROMPT_COUNTS[shapes ? 'shapes' : 'other'];
  const nSens = o.sensitivityPrompts ?? counts.sensitivity, nCal = o.calibrationPrompts ?? counts.calibration, nEval = o.evalPrompts ?? counts.eval;
  const need = nSens + nCal + nEval;
  let pool: string[];
  if (shapes) {
    pool = heldOutScenes(need, DEMO_SCENE_OFFSET).map((sc) => sc.caption);
  } else {
    if (need > DEFAULT_PROMPTS.length) throw new RangeError(`the demo uses ${need} of the ${DEFAULT_PROMPTS.length} default prompts; ask for fewer`);
    pool = [...DEFAULT_PROMPTS];
  }
  const sensitivityPrompts = pool.slice(0, nSens);
  const calibrationPrompts = pool.slice(nSens, nSens + nCal);
  const requests: VideoRequest[] = pool.slice(need - nEval, need).map((prompt, i) => ({ prompt, seed: 2000 + i }));

  // 1. Chunk-wise sensitivity, with round-to-nearest W8A8 in one chunk at a time.
  let bar = progress('sensitivity', { quiet: o.quiet });
  const sens = await measureSensitivity(model, { quantized: roundToNearest(model, { dtype: 'int8' }), prompts: sensitivityPrompts, seed: 0, onProgress: (d, t) => bar.update(d, t, 'videos') });
  bar.stop();
  const chunkWeights = Array.from(chunkWeightsFromSensitivity(sens.sensitivity));
  step('sensitivity');

  // 2. Calibration on other prompts, chunk-weighted, with the outlier columns of every layer.
  const outliers = detectModelOutliers(model);
  bar = progress('calibrate', { quiet: o.quiet });
  const stats = await calibrate(model, { prompts: calibrationPrompts, seed: 1000, chunkWeights, outliers, bins: o.bins, onProgress: (d, t) => bar.update(d, t, 'passes') });
  bar.stop();
  step('calibration');

  // 3. Full-precision references, then every row of the ablation in both settings.
  const references: Tensor<'float32'>[] = [];
  for (const r of requests) references.push(await generate(model, r));
  const ablation: ReportData['ablation'] = [];
  const settings: ReportData['settings'] = [];
  const fullSets: Record<string, { sets: LayerSet[]; layers: LayerSpec[]; videos: Tensor<'float32'>[] }> = {};
  const rows = Object.entries(SETTINGS).flatMap(([setting, dtype]) => ablationRows(dtype, { attention: o.attention, kvCache: o.kvCache })
    .map((row) => ({ setting, row, full: row.name === 'full' && !row.generation, naive: row.name === 'naive' })));
  bar = progress('ablation', { quiet: o.quiet });
  const perChunk: Record<string, ReportData['settings'][number]['perChunk']> = {};
  // Rows that only change how videos are generated reuse the layers of the row with their recipe.
  let last: { recipe: unknown; q: QuantizedModel; sets: LayerSet[] } | undefined;
  for (let i = 0; i < rows.length; i++) {
    const { setting, row, full, naive } = rows[i];
    bar.update(i, rows.length, `${setting} ${row.method}`);
    if (last?.recipe !== row.recipe) {
      const quantized = await quantizeModel(model, stats, row.recipe);
      last = { recipe: row.recipe, q: quantized, sets: buildLayerSets(quantized.layers) };
    }
    const { q, sets } = last;
    const e = await evaluateLayerSets(model, sets, requests, references, undefined, row.generation);
    const dual = q.report.filter((l) => l.type === 'dual').length;
    const chunkPlan = q.plans.chunks ? ` dynamic activations in chunks ${Object.entries(q.plans.chunks.choices).filter(([, c]) => c.label === 'dynamic').map(([n]) => n.replace('chunk ', '')).join(', ')}` : '';
    const bits = q.plans.weights ? `; ${Object.values(q.plans.weights.choices).filter((c) => c.index > 0).length} layers given more weight bits` : '';
    ablation.push({ setting, method: row.method, psnr: e.psnr, ssim: e.ssim, mse: e.mse, note: `${dual} two-scale layers${chunkPlan}${bits}` });
    (perChunk[setting] ??= []);
    const attentionOnly = row.generation?.attention && !row.generation.kvCache;
    if (full || naive || attentionOnly) perChunk[setting].push({ method: row.method, psnr: e.perChunk.psnr, ssim: e.perChunk.ssim, mse: e.perChunk.mse });
    if (full) fullSets[setting] = { sets, layers: q.layers, videos: e.videos };
  }
  bar.update(rows.length, rows.length, 'done');
  bar.stop();
  step('quantization and ablation (W8A8, W4A8)');

  // 4. Checkpoints of the full method, speed and bytes against FP32.
  const fpBytes = { fp32: model.weightBytes, blockFp32: model.blockLinearBytes };
  const time = async (sets: LayerSet[] | null, attention?: 'bf16' | 'int8') => {
    const t0 = performance.now();
    await new ChunkScheduler(model, sets ? ChunkScheduler.perChunk(sets) : () => null).generate({ ...requests[0], attention });
    return (performance.now() - t0) / 1000;
  };
  const best: Record<string, number> = { FP32: Infinity };
  const withAttention = (s: string) => `${s} + ${o.attention} attention`;
  for (let r = 0; r < o.repeats; r++) {
    best.FP32 = Math.min(best.FP32, await time(null));
    for (const s of Object.keys(fullSets)) {
      best[s] = Math.min(best[s] ?? Infinity, await time(fullSets[s].sets));
      best[withAttention(s)] = Math.min(best[withAttention(s)] ?? Infinity, await time(fullSets[s].sets, o.attention));
    }
  }
  // One more video per variant with a profile: where its time goes (the timings above run without one).
  const profiles: ReportProfile[] = [];
  const profiled = async (variant: string, sets: LayerSet[] | null, attention?: 'bf16' | 'int8') => {
    const p = new ForwardProfile();
    await new ChunkScheduler(model, sets ? ChunkScheduler.perChunk(sets) : () => null).generate({ ...requests[0], attention, profile: p });
    profiles.push({ variant, linears: p.linears, attention: p.attention, norms: p.norms, activations: p.activations, copies: p.copies, rest: p.rest });
  };
  await profiled('FP32', null);
  for (const s of Object.keys(fullSets)) {
    await profiled(s, fullSets[s].sets);
    await profiled(withAttention(s), fullSets[s].sets, o.attention);
  }
  for (const [setting, f] of Object.entries(fullSets)) {
    const checkpoint = `${setting.toLowerCase()}.safetensors`;
    await saveQuantizedModel(path.join(o.out, checkpoint), {
      config: model.config, tensors: fullPrecisionTensors(model), layers: f.layers,
      info: { setting, method: 'full', sensitivity: sens.sensitivity, chunkWeights, calibration: { prompts: calibrationPrompts, seed: 1000, bins: o.bins } },
    });
    const blockQuantized = f.layers.reduce((s, l) => s + storedBytes(l), 0);
    settings.push({
      name: setting, checkpoint, perChunk: perChunk[setting],
      speed: { fp32Seconds: best.FP32, quantSeconds: best[setting] },
      bytes: { fp32: fpBytes.fp32, quantized: fpBytes.fp32 - fpBytes.blockFp32 + blockQuantized, blockFp32: fpBytes.blockFp32, blockQuantized },
    });
  }
  step('timing and checkpoints');

  // 5. The object tracker on held-out captions: does each video show the captioned object and motion?
  let tracking: ReportData['tracking'];
  if (shapes && o.trackPrompts > 0) {
    const scenes = heldOutScenes(o.trackPrompts);
    const models: { label: string; sets: LayerSet[] | null }[] = [{ label: 'FP32', sets: null }, ...Object.entries(fullSets).map(([s, f]) => ({ label: s, sets: f.sets }))];
    bar = progress('tracking', { quiet: o.quiet });
    const rowsOut: NonNullable<ReportData['tracking']>['rows'] = [];
    let done = 0;
    for (const m of models) {
      const scheduler = new ChunkScheduler(model, m.sets ? ChunkScheduler.perChunk(m.sets) : () => null);
      const tally = { agree: 0, colour: 0, motion: 0, shape: 0 };
      for (let i = 0; i < scenes.length; i++) {
        const video = await scheduler.generate({ prompt: scenes[i].caption, seed: TRACK_SEED + i });
        const check = checkCaption(trackFrames(latentsToRgb(video)), scenes[i].caption);
        tally.agree += Number(check.agrees);
        tally.colour += Number(check.found && check.colour);
        tally.motion += Number(check.found && check.motion);
        tally.shape += Number(check.found && check.shape);
        bar.update(++done, models.length * scenes.length, m.label);
      }
      rowsOut.push({ label: m.label, ...tally });
    }
    bar.stop();
    tracking = { prompts: scenes.length, firstSeed: HELD_OUT_SEED, rows: rowsOut };
    step('object tracking (FP32, W8A8, W4A8)');
  }

  // 6. Pictures: per prompt, FP above W8A8 above W4A8 (decoded RGB frames, or latent channels on the
  // FP video's colour scale), and animations.
  const videos: ReportData['videos'] = [];
  for (let i = 0; i < requests.length; i++) {
    const ranges = channelRanges(references[i]);
    const rowsOf = [{ label: 'FP32', latents: references[i] }, ...Object.entries(fullSets).map(([s, f]) => ({ label: s, latents: f.videos[i] }))];
    const frames = rowsOf.map((r) => shapes ? latentsToFrames(latentsToRgb(r.latents), { ranges: [[0, 1], [0, 1], [0, 1]], scale: 4 }) : latentsToFrames(r.latents, { ranges, scale: 8 }));
    const strip = frameStrip(frames);
    const stripFile = `video-${i}.png`;
    await writePng(path.join(o.out, stripFile), strip.frames[0], strip.width, strip.height);
    const animations = [];
    for (let j = 0; j < rowsOf.length; j++) {
      const file = `video-${i}-${rowsOf[j].label.toLowerCase()}.gif`;
      await writeGif(path.join(o.out, file), frames[j], 125);
      animations.push({ label: rowsOf[j].label, file });
    }
    videos.push({ prompt: requests[i].prompt, strip: stripFile, rows: rowsOf.map((r) => r.label), animations });
  }
  const outlierPlots = Object.keys(outliers).slice(0, 3).map((layer) => {
    const d = detectOutliersSync(model.floatWeights(layer).weight, { method: 'mad' });
    return { layer, norms: Array.from(d.norms), outlierIdx: Array.from(d.outlierIdx), detector: 'mad', threshold: d.stats.threshold };
  });
  step('pictures and report');

  const s = sens.sensitivity;
  const decreasing = s.every((v, k) => k === 0 || v <= s[k - 1]);
  const notes = demoNotes(ablation, settings, s, decreasing);
  if (tracking) {
    notes.push(`Object tracker on ${tracking.prompts} held-out captions (colour and motion as captioned): ${tracking.rows.map((r) => `${r.label} ${r.agree}/${tracking.prompts}`).join(', ')}.`);
  }
  const training = shapes && model.config.name === EMBEDDED_DEFAULT.name ? await embeddedTraining().catch(() => undefined) : undefined;
  for (const x of settings) notes.push(`${withAttention(x.name)}: ${(best.FP32 / best[withAttention(x.name)]).toFixed(2)}x the speed of FP32 per video (float32 attention: ${(best.FP32 / best[x.name]).toFixed(2)}x).`);
  const b = backends();
  const data: ReportData = {
    title: `Q-ARVD on ${model.config.name}`,
    createdAt: new Date().toISOString(),
    model: { name: model.config.name, config: Object.fromEntries(Object.entries(model.config).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v])) as Record<string, number | string> },
    machine: { cpu: os.cpus()[0]?.model ?? 'unknown', isa: b.cpu.isa, threads: b.cpu.threads, node: process.version },
    totalSeconds: (performance.now() - started) / 1000,
    steps,
    sensitivity: { values: s, chunkWeights, prompts: sensitivityPrompts.length, reference: PAPER_SENSITIVITY, decreasing },
    settings, ablation, outliers: outlierPlots, videos, profiles, notes,
    ...(tracking ? { tracking } : {}),
    ...(training ? { training: { steps: training.steps, batch: training.batch, seconds: training.seconds, threads: training.threads, heldOut: training.heldOut, curve: training.curve.map((c) => ({ step: c.step, loss: c.smoothed, ...(c.heldOut !== undefined ? { heldOut: c.heldOut } : {}) })) } } : {}),
  };
  const report = await writeReport(o.out, data);
  await writeFileAtomic(path.join(o.out, 'result.json'), JSON.stringify(data, null, 2) + '\n');
  return {
    report, seconds: Number(data.totalSeconds.toFixed(1)), sensitivity: s.map((v) => Number(v.toFixed(4))), decreasing,
    settings: settings.map((x) => ({ name: x.name, checkpoint: path.join(o.out, x.checkpoint), speedup: Number((x.speed.fp32Seconds / x.speed.quantSeconds).toFixed(2)), blockBytesRatio: Number((x.bytes.blockQuantized / x.bytes.blockFp32).toFixed(3)) })),
    ablation: ablation.map((a) => ({ setting: a.setting, method: a.method, psnr: Number(a.psnr.toFixed(2)), ssim: Number(a.ssim.toFixed(4)) })),
    ...(tracking ? { tracking: Object.fromEntries(tracking.rows.map((r) => [r.label, `${r.agree}/${tracking!.prompts}`])) } : {}),
  };
}

/** Offset of the demo's sensitivity, calibration and evaluation captions among the held-out scenes (the tracker's are the first ones). */
const DEMO_SCENE_OFFSET = 1000;
/** Noise seeds of the tracked videos. */
const TRACK_SEED = 3000;

/** Whether a configuration has the latents of the moving-shapes data (48 x 8 x 8, 21 frames). */
function isShapesModel(c: DitConfig): boolean {
  return c.inChannels === 3 * SPACE_TO_DEPTH ** 2 && c.outChannels === c.inChannels && c.latentHeight * SPACE_TO_DEPTH === SHAPES_SIZE && c.latentWidth * SPACE_TO_DEPTH === SHAPES_SIZE;
}

/** Honest remarks for the report: components that did not help, targets missed. */
function demoNotes(ablation: ReportData['ablation'], settings: ReportData['settings'], s: number[], decreasing: boolean): string[] {
  const notes: string[] = [];
  for (const setting of Object.keys(SETTINGS)) {
    // In ablationRows order: 0 naive, 1 per-channel MSE, 2..5 one component added each, 5 the full method.
    const rows = ablation.filter((a) => a.setting === setting);
    for (let i = 2; i < 6; i++) {
      const d = rows[i].psnr - rows[i - 1].psnr;
      if (d <= 0.05) notes.push(`${setting}: "${rows[i].method}" did not help here (${d >= 0 ? '+' : ''}${d.toFixed(2)} dB).`);
    }
    const full = rows[5], naive = rows[0], mse = rows[1];
    notes.push(`${setting}: the full method ${full.psnr > naive.psnr && full.psnr > mse.psnr ? 'beats' : 'does NOT beat'} naive per-tensor min-max PTQ (${naive.psnr.toFixed(2)} dB) and per-channel MSE PTQ (${mse.psnr.toFixed(2)} dB) with ${full.psnr.toFixed(2)} dB.`);
  }
  for (const x of settings) {
    const speedup = x.speed.fp32Seconds / x.speed.quantSeconds;
    notes.push(`${x.name}: ${speedup.toFixed(2)}x the speed of FP32 per video${x.name === 'W8A8' && speedup < 2 ? ' (target 2x: not reached on this CPU)' : ''}; block linear weights as stored ${(x.bytes.blockQuantized / x.bytes.blockFp32).toFixed(3)}x of FP32${x.name === 'W8A8' && x.bytes.blockQuantized / x.bytes.blockFp32 > 0.26 ? ' (target 0.26x: not reached)' : ''}.`);
  }
  notes.push(decreasing
    ? `The sensitivity decreases over chunks (${s[0].toFixed(3)} to ${s[s.length - 1].toFixed(3)}), as in the paper.`
    : `The sensitivity does not decrease monotonically over chunks here (${s.map((v) => v.toFixed(3)).join(', ')}); the paper's does.`);
  return notes;
}
