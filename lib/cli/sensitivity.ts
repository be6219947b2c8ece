import { type Command, InvalidArgumentError } from 'commander';
import { writeFileAtomic } from '../io/safetensors.js';
import { QuantizedLinear } from '../gemm/quantized.js';
import type { Linear } from '../gemm/linear.js';
import { measureSensitivity } from '../schedule/sensitivity.js';
import { chunkWeightsFromSensitivity } from '../calibration/chunk_weights.js';
import { intOption, modelFromOptions, promptsFromOptions } from './generate.js';
import { progress } from './progress.js';

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
    .option('--out <file>', 'also write the result JSON here')
    .option('--quiet', 'no progress output')
    .action(async (o: { model?: string; config?: string; bits: number; prompt?: string[]; prompts?: string; seed: number; chunks?: number; out?: string; quiet?: boolean }) => {
      const model = await modelFromOptions(o);
      const prompts = await promptsFromOptions(o);
      const quantized: Record<string, Linear> = {};
      for (const name of model.blockLinearNames) {
        const { weight, bias } = model.floatWeights(name);
        quantized[name] = QuantizedLinear.fromFloat(weight, { bias, weight: { dtype: o.bits === 4 ? 'int4' : 'int8' }, activation: { type: 'dynamic' } });
      }
      const bar = progress('sensitivity', { quiet: o.quiet });
      const r = await measureSensitivity(model, { quantized, prompts, seed: o.seed, chunks: o.chunks, onProgress: (d, t) => bar.update(d, t, 'videos') });
      bar.stop();
      const result = { model: model.config.name, weightBits: o.bits, prompts, seed: o.seed, ...r, chunkWeights: Array.from(chunkWeightsFromSensitivity(r.sensitivity)) };
      const text = JSON.stringify(result, null, 2);
      if (o.out) await writeFileAtomic(o.out, text + '\n');
      console.log(text);
    });
}
