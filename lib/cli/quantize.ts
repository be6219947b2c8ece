import { type Command, InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/safetensors.js';
import { checkOutputFile } from '../io/paths.js';
import { saveQuantizedModel } from '../checkpoint/checkpoint.js';
import { calibrate, CalibrationStats, type CalibrationStatsJSON } from '../method/calibrate.js';
import { detectModelOutliers, quantizeModel } from '../method/quantize.js';
import { ablationRows, METHODS, SETTINGS, type MethodName } from '../method/ablation.js';
import { fullPrecisionTensors } from '../method/spec.js';
import type { CausalDit } from '../model/dit.js';
import { DEFAULT_PROMPTS, promptLabel } from '../model/prompts.js';
import { modelDigest } from '../model/digest.js';
import { FEATURES_HELP, intOption, modelFromOptions, promptInputs } from './generate.js';
import { progress } from './progress.js';
import { parseShard, provenanceOf, resolveShard, shardRange, type Provenance, type ShardOption } from './shard.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function recipeOf(setting: keyof typeof SETTINGS, method: MethodName) {
  return ablationRows(SETTINGS[setting]).find((r) => r.name === method && !r.generation)!;
}

/** Chunk weights from a `qarvd sensitivity` result file. */
export async function chunkWeightsFromFile(file: string): Promise<{ chunkWeights: number[]; sensitivity: number[] }> {
  let j: { chunkWeights?: unknown; sensitivity?: unknown; shard?: unknown };
  try {
    j = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new RangeError(`cannot read the sensitivity file ${file}: ${(e as Error).message}`);
  }
  const ok = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0);
  if (!ok(j.chunkWeights) || !ok(j.sensitivity)) throw new RangeError(`${file} has no chunkWeights/sensitivity arrays (expected the output of qarvd sensitivity)`);
  if (j.shard) throw new RangeError(`${file} is one shard of a sensitivity measurement; combine the shards with qarvd merge first`);
  return { chunkWeights: j.chunkWeights, sensitivity: j.sensitivity };
}

interface QuantizeCliOptions {
  model?: string; config?: string; setting: keyof typeof SETTINGS; method: MethodName; sensitivity?: string;
  prompt?: string[]; prompts?: string; features?: string; calibrationPrompts: number; seed: number; outliers: 'mad' | 'iqr'; bins: number;
  shard?: ShardOption; shards?: number; statsOut?: string; stats?: string; out?: string; planOut?: string; quiet?: boolean;
}

/** `qarvd quantize`: calibrate (or read merged statistics), quantize by a method, save a checkpoint. */
export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('calibrate and quantize a model (Q-ARVD step 2) and save the quantized checkpoint')
    .option('--model <file>', 'model file (safetensors with Wan names); default: the embedded default')
    .option('--config <name>', 'configuration for a file without one, or for synthetic weights')
    .option('--setting <name>', 'W8A8 or W4A8', (v: string) => {
      if (!(v in SETTINGS)) throw new InvalidArgumentError(`--setting must be one of ${Object.keys(SETTINGS).join(', ')}`);
      return v;
    }, 'W8A8')
    .option('--method <name>', `one of ${METHODS.join(', ')} (the ablation's rows; full: chunk weighting, two-scale, GPTQ and bit allocation)`, (v: string) => {
      if (!(METHODS as readonly string[]).includes(v)) throw new InvalidArgumentError(`--method must be one of ${METHODS.join(', ')}`);
      return v;
    }, 'full')
    .option('--sensitivity <file>', 'chunk weights from qarvd sensitivity (default: uniform)')
    .option('--prompt <text>', 'a calibration prompt (repeatable)', collect)
    .option('--prompts <file>', 'a file with one calibration prompt per line')
    .option('--features <file>', `calibration prompts as features: ${FEATURES_HELP.replace(/^prompts as text-encoder features: /, '')}`)
    .option('--calibration-prompts <n>', 'how many of the default prompts to calibrate on when none are given', intOption('--calibration-prompts', 1), 2)
    .option('--seed <n>', 'seed of the first calibration video; video i uses seed + i', intOption('--seed', 0), 1000)
    .option('--outliers <method>', 'outlier detection: mad or iqr', (v: string) => {
      if (v !== 'mad' && v !== 'iqr') throw new InvalidArgumentError('--outliers must be mad or iqr');
      return v;
    }, 'mad')
    .option('--bins <n>', 'histogram bins of the activation observers', intOption('--bins', 16), 32768)
    .option('--shard <i/n|auto>', 'calibrate only the i-th of n parts of the prompts and write the statistics (--stats-out) for qarvd merge; auto: i and n from a Slurm job array or a Kubernetes Indexed Job', parseShard)
    .option('--shards <n>', 'the number of parts for --shard auto in a Kubernetes Indexed Job (its completions)', intOption('--shards', 1))
    .option('--stats-out <file>', 'write the calibration statistics (JSON) here')
    .option('--stats <file>', 'quantize from these (merged) statistics instead of calibrating')
    .option('--out <file>', 'the quantized checkpoint (safetensors)')
    .option('--plan-out <file>', 'also write the plan as JSON: per-layer form and bits, the bit allocation, per-chunk activations (the checkpoint carries it too, and its loader applies it)')
    .option('--quiet', 'no progress output')
    .action(async (o: QuantizeCliOptions) => {
      const shard = resolveShard(o.shard, o.shards);
      if (shard && !o.statsOut) throw new RangeError('--shard needs --stats-out (a shard only gathers statistics)');
      if (!shard && !o.out && !o.statsOut) throw new RangeError('give --out (the checkpoint) or --stats-out (the statistics)');
      // Output files first: a bad path fails before the calibration, not after it.
      if (o.out) await checkOutputFile(o.out, '--out');
      if (o.statsOut) await checkOutputFile(o.statsOut, '--stats-out');
      if (o.planOut) await checkOutputFile(o.planOut, '--plan-out');
      const model = await modelFromOptions(o);
      const digest = modelDigest(model);
      const weights = o.sensitivity ? await chunkWeightsFromFile(o.sensitivity) : null;
      const outliers = detectModelOutliers(model, { method: o.outliers });
      let stats: CalibrationStats;
      let record: Pick<StatsFile, 'shard' | 'features' | 'provenance'>;
      if (o.stats) {
        ({ stats, record } = await readStats(o.stats, digest));
      } else {
        const { prompts: all, features } = await promptInputs(o, model.config, () => {
          if (o.calibrationPrompts > DEFAULT_PROMPTS.length) {
            throw new RangeError(`--calibration-prompts ${o.calibrationPrompts} asks for more than the ${DEFAULT_PROMPTS.length} default prompts; give your own with --prompt, --prompts or --features`);
          }
          return DEFAULT_PROMPTS.slice(0, o.calibrationPrompts);
        });
        const { start, end } = shardRange(all.length, shard);
        const chunkWeights = weights?.chunkWeights ?? null;
        const provenance = provenanceOf(digest, { command: 'calibrate', prompts: all.map(promptLabel), features: features?.digest ?? null, seed: o.seed, chunks: model.config.chunks, chunkWeights, outliers: o.outliers, bins: o.bins });
        record = { shard: shard ? { ...shard, start, end, of: all.length } : null, features, provenance };
        const bar = progress('calibrate', { quiet: o.quiet });
        stats = await calibrate(model, {
          prompts: all.slice(start, end), seed: o.seed + start, chunkWeights: weights?.chunkWeights, outliers, bins: o.bins,
          onProgress: (d, t) => bar.update(d, t, 'passes'),
        });
        bar.stop();
      }
      if (o.statsOut) await writeFileAtomic(o.statsOut, JSON.stringify({ ...stats.toJSON(), ...record } satisfies StatsFile) + '\n');
      if (shard || !o.out) {
        console.log(JSON.stringify({ stats: o.statsOut, prompts: stats.prompts.length, seed: stats.seed }, null, 2));
        return;
      }
      const { summary, info } = await quantizeToFile(model, stats, o.setting, o.method, o.out, { sensitivity: weights?.sensitivity ?? null, outlierMethod: o.outliers, quiet: o.quiet });
      if (o.planOut) await writeFileAtomic(o.planOut, JSON.stringify({ setting: info.setting, method: info.method, recipe: info.recipe, chunkWeights: info.chunkWeights, plans: info.plans, layers: info.layers }, null, 2) + '\n');
      console.log(JSON.stringify(summary, null, 2));
    });
}

/** What `quantize --stats-out` writes: the statistics, the part of the prompts, their features, the provenance. */
export type StatsFile = CalibrationStatsJSON & {
  shard: { index: number; count: number; start: number; end: number; of: number } | null;
  features: { file: string; digest: string } | null;
  provenance: Provenance;
};

/** Merged (or whole) statistics of this model: a shard, or statistics of another model, are refused. */
async function readStats(file: string, modelDigest: string): Promise<{ stats: CalibrationStats; record: Pick<StatsFile, 'shard' | 'features' | 'provenance'> }> {
  let j: Partial<StatsFile>;
  let stats: CalibrationStats;
  try {
    j = JSON.parse(await readFile(file, 'utf8'));
    stats = CalibrationStats.fromJSON(j);
  } catch (e) {
    throw new RangeError(`cannot read calibration statistics from ${file}: ${(e as Error).message}`);
  }
  if (j.shard) throw new RangeError(`${file} is shard ${j.shard.index}/${j.shard.count} of a calibration; combine the shards with qarvd merge first`);
  if (j.provenance && j.provenance.model !== modelDigest) throw new RangeError(`${file} holds calibration statistics of another model (its weights differ from --model's)`);
  return { stats, record: { shard: null, features: j.features ?? null, provenance: j.provenance! } };
}

/** Quantizes by a row of the ablation and writes the checkpoint; returns a summary. */
export async function quantizeToFile(
  model: CausalDit, stats: CalibrationStats, setting: keyof typeof SETTINGS, method: MethodName, file: string,
  extra: { sensitivity: number[] | null; outlierMethod: string; quiet?: boolean },
) {
  const row = recipeOf(setting, method);
  const bar = progress('quantize', { quiet: extra.quiet });
  const q = await quantizeModel(model, stats, row.recipe, { onProgress: (d, t) => bar.update(d, t, 'layers') });
  bar.stop();
  const info = {
    setting, method: row.method, recipe: row.recipe, sensitivity: extra.sensitivity, chunkWeights: stats.chunkWeights,
    calibration: { prompts: stats.prompts, seed: stats.seed, outlierMethod: extra.outlierMethod },
    plans: q.plans, layers: q.report,
  };
  await saveQuantizedModel(file, { config: model.config, tensors: fullPrecisionTensors(model), layers: q.layers, info });
  const summary = {
    checkpoint: file, setting, method: row.method,
    dualLayers: q.report.filter((l) => l.type === 'dual').length, layers: q.report.length,
    chunkActivations: q.plans.chunks ? Object.values(q.plans.chunks.choices).map((c) => c.label) : null,
  };
  return { summary, info };
}
