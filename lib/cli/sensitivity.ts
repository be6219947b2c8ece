import { type Command, InvalidArgumentError } from 'commander';
import { checkOutputFile } from '../io/paths.js';
import { writeFileAtomic } from '../io/safetensors.js';
import { roundToNearest } from '../method/quantize.js';
import { measureSensitivity } from '../schedule/sensitivity.js';
import { chunkWeightsFromSensitivity } from '../calibration/chunk_weights.js';
import { modelDigest } from '../model/digest.js';
import { promptLabel } from '../model/prompts.js';
import { FEATURES_HELP, intOption, modelFromOptions, promptInputs } from './generate.js';
import { progress } from './progress.js';
import { parseShard, provenanceOf, resolveShard, shardRange, type Provenance, type ShardOption } from './shard.js';

/** The JSON `qarvd sensitivity` writes (a whole measurement, or one shard of it). */
export interface SensitivityFile {
  type: 'Sensitivity';
  model: string;
  weightBits: number;
  prompts: string[];
  /** Seed of prompts[0]; prompt i used seed + i. */
  seed: number;
  /** The part of the prompts measured (1-based index of count; prompts [start, end) of `of`), or null for all. */
  shard: { index: number; count: number; start: number; end: number; of: number } | null;
  /** The features file the prompts came from (name and digest), or null for text prompts. */
  features: { file: string; digest: string } | null;
  /** The model's digest and a hash of the whole run's settings: equal in every shard of one run. */
  provenance: Provenance;
  sensitivity: number[];
  mse: number[];
  perPrompt: number[][];
  chunkWeights: number[];
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `qarvd sensitivity`: chunk-wise sensitivity of a model to quantization (Q-ARVD step 1). */
export function registerSensitivity(program: Command): void {
  program
    .command('sensitivity')
    .description('measure how much quantizing each chunk costs the final video (round-to-nearest W8A8 or W4A8, dynamic per-token activations)')
    .option('--model <file>', 'model file (safetensors with Wan names); default: the embedded default')
    .option('--config <name>', 'configuration for a file without one, or for synthetic weights')
    .option('--bits <n>', 'weight bits: 8 or 4', (v: string) => {
      if (v !== '8' && v !== '4') throw new InvalidArgumentError('--bits must be 8 or 4');
      return Number(v);
    }, 8)
    .option('--prompt <text>', 'a prompt (repeatable)', collect)
    .option('--prompts <file>', 'a file with one prompt per line')
    .option('--features <file>', FEATURES_HELP)
    .option('--seed <n>', 'seed of the first prompt; prompt i uses seed + i', intOption('--seed', 0), 0)
    .option('--chunks <n>', 'chunks per video (default: the configuration\'s)', intOption('--chunks', 1))
    .option('--shard <i/n|auto>', 'measure only the i-th of n contiguous parts of the prompts (combine the parts with qarvd merge); auto: i and n from a Slurm job array or a Kubernetes Indexed Job', parseShard)
    .option('--shards <n>', 'the number of parts for --shard auto in a Kubernetes Indexed Job (its completions)', intOption('--shards', 1))
    .option('--out <file>', 'also write the result JSON here')
    .option('--quiet', 'no progress output')
    .action(async (o: { model?: string; config?: string; bits: number; prompt?: string[]; prompts?: string; features?: string; seed: number; chunks?: number; shard?: ShardOption; shards?: number; out?: string; quiet?: boolean }) => {
      if (o.out) await checkOutputFile(o.out, '--out');
      const shard = resolveShard(o.shard, o.shards);
      const model = await modelFromOptions(o);
      const { prompts: all, features } = await promptInputs(o, model.config);
      const { start, end } = shardRange(all.length, shard);
      const prompts = all.slice(start, end);
      const chunks = o.chunks ?? model.config.chunks;
      const provenance = provenanceOf(modelDigest(model), { command: 'sensitivity', weightBits: o.bits, chunks, seed: o.seed, prompts: all.map(promptLabel), features: features?.digest ?? null });
      const quantized = roundToNearest(model, { dtype: o.bits === 4 ? 'int4' : 'int8' });
      const bar = progress('sensitivity', { quiet: o.quiet });
      const r = await measureSensitivity(model, { quantized, prompts, seed: o.seed + start, chunks, onProgress: (d, t) => bar.update(d, t, 'videos') });
      bar.stop();
      const result: SensitivityFile = {
        type: 'Sensitivity', model: model.config.name, weightBits: o.bits, prompts: prompts.map(promptLabel), seed: o.seed + start,
        shard: shard ? { ...shard, start, end, of: all.length } : null, features, provenance,
        ...r, chunkWeights: Array.from(chunkWeightsFromSensitivity(r.sensitivity)),
      };
      const text = JSON.stringify(result, null, 2);
      if (o.out) await writeFileAtomic(o.out, text + '\n');
      console.log(text);
    });
}
