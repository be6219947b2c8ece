import { type Command, InvalidArgumentError } from 'commander';
import { writeFileAtomic } from '../io/safetensors.js';
import { roundToNearest } from '../method/quantize.js';
import { measureSensitivity } from '../schedule/sensitivity.js';
import { chunkWeightsFromSensitivity } from '../calibration/chunk_weights.js';
import { intOption, modelFromOptions, promptsFromOptions } from './generate.js';
import { progress } from './progress.js';
import { parseShard, shardRange, type Shard } from './shard.js';

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
    .option('--seed <n>', 'seed of the first prompt; prompt i uses seed + i', intOption('--seed', 0), 0)
    .option('--chunks <n>', 'chunks per video (default: the configuration\'s)', intOption('--chunks', 1))
    .option('--shard <i/n>', 'measure only the i-th of n contiguous parts of the prompts (combine the parts with qarvd merge)', parseShard)
    .option('--out <file>', 'also write the result JSON here')
    .option('--quiet', 'no progress output')
    .action(async (o: { model?: string; config?: string; bits: number; prompt?: string[]; prompts?: string; seed: number; chunks?: number; shard?: Shard; out?: string; quiet?: boolean }) => {
      const model = await modelFromOptions(o);
      const all = await promptsFromOptions(o);
      const { start, end } = shardRange(all.length, o.shard);
      const prompts = all.slice(start, end);
      const quantized = roundToNearest(model, { dtype: o.bits === 4 ? 'int4' : 'int8' });
      const bar = progress('sensitivity', { quiet: o.quiet });
      const r = await measureSensitivity(model, { quantized, prompts, seed: o.seed + start, chunks: o.chunks, onProgress: (d, t) => bar.update(d, t, 'videos') });
      bar.stop();
      const result: SensitivityFile = {
        type: 'Sensitivity', model: model.config.name, weightBits: o.bits, prompts, seed: o.seed + start,
        shard: o.shard ? { ...o.shard, start, end, of: all.length } : null,
        ...r, chunkWeights: Array.from(chunkWeightsFromSensitivity(r.sensitivity)),
      };
      const text = JSON.stringify(result, null, 2);
      if (o.out) await writeFileAtomic(o.out, text + '\n');
      console.log(text);
    });
}
