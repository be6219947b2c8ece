import type { Command } from 'commander';
import { checkOutputFile } from '../io/paths.js';
import { writeFileAtomic } from '../io/safetensors.js';
import { loadQuantizedModel } from '../checkpoint/checkpoint.js';
import type { CausalDit } from '../model/dit.js';
import { ChunkScheduler, type LayerPolicy } from '../schedule/scheduler.js';
import { storedBytes } from '../method/spec.js';
import { intOption, modelFromOptions } from './generate.js';
import { progress } from './progress.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `qarvd bench`: generation time and weight bytes of quantized checkpoints against the FP32 model. */
export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time video generation with the FP32 model and with quantized checkpoints (same prompt and seed), and compare weight bytes')
    .option('--model <file>', 'the FP32 model file; default: the embedded default')
    .option('--config <name>', 'configuration for a file without one, or for synthetic weights')
    .option('--quantized <file>', 'a quantized checkpoint from qarvd quantize or qarvd demo (repeatable)', collect)
    .option('--prompt <text>', 'prompt of the timed video', 'a red fox running through fresh snow')
    .option('--seed <n>', 'seed of the timed video', intOption('--seed', 0), 0)
    .option('--repeats <n>', 'generations per model, alternating; the fastest counts', intOption('--repeats', 1), 3)
    .option('--out <file>', 'also write the result JSON here')
    .option('--quiet', 'no progress output')
    .action(async (o: { model?: string; config?: string; quantized?: string[]; prompt: string; seed: number; repeats: number; out?: string; quiet?: boolean }) => {
      if (o.out) await checkOutputFile(o.out, '--out');
      const fp = await modelFromOptions(o);
      const runs: { name: string; model: CausalDit; policy: LayerPolicy; stored: number }[] = [{ name: 'FP32', model: fp, policy: () => null, stored: fp.blockLinearBytes }];
      for (const file of o.quantized ?? []) {
        const q = await loadQuantizedModel(file);
        if (q.model.config.name !== fp.config.name) throw new RangeError(`${file} quantizes ${q.model.config.name}, not ${fp.config.name}`);
        runs.push({ name: file, model: q.model, policy: q.policy, stored: q.spec.layers.reduce((s, l) => s + storedBytes(l), 0) });
      }
      const best = runs.map(() => Infinity);
      const bar = progress('bench', { quiet: o.quiet });
      for (let r = 0; r < o.repeats; r++) {
        for (let i = 0; i < runs.length; i++) {
          bar.update(r * runs.length + i, o.repeats * runs.length, runs[i].name);
          const t0 = performance.now();
          await new ChunkScheduler(runs[i].model, runs[i].policy).generate({ prompt: o.prompt, seed: o.seed });
          best[i] = Math.min(best[i], (performance.now() - t0) / 1000);
        }
      }
      bar.update(o.repeats * runs.length, o.repeats * runs.length, 'done');
      bar.stop();
      const result = {
        model: fp.config.name,
        runs: runs.map((r, i) => ({
          name: r.name, seconds: Number(best[i].toFixed(4)), speedup: Number((best[0] / best[i]).toFixed(3)),
          weightBytes: r.model.weightBytes, bytesRatio: Number((r.model.weightBytes / fp.weightBytes).toFixed(4)),
          blockLinearBytes: r.model.blockLinearBytes, blockBytesRatio: Number((r.model.blockLinearBytes / fp.blockLinearBytes).toFixed(4)),
          storedBlockBytes: r.stored, storedBlockBytesRatio: Number((r.stored / fp.blockLinearBytes).toFixed(4)),
        })),
      };
      const text = JSON.stringify(result, null, 2);
      if (o.out) await writeFileAtomic(o.out, text + '\n');
      console.log(text);
    });
}
