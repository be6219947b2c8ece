import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/safetensors.js';
import { chunkWeightsFromSensitivity } from '../calibration/chunk_weights.js';
import { sensitivityFromPerPrompt } from '../schedule/sensitivity.js';
import { CalibrationStats } from '../method/calibrate.js';
import type { SensitivityFile } from './sensitivity.js';

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new RangeError(`${file} is not JSON (expected the output of qarvd sensitivity or qarvd quantize --stats-out)`);
  }
}

/** Sensitivity shards in prompt order: checks they are parts of one measurement, each part once. */
export function mergeSensitivity(parts: SensitivityFile[], files: string[]): SensitivityFile {
  const sorted = parts.map((p, i) => ({ p, file: files[i] })).sort((a, b) => (a.p.shard?.start ?? 0) - (b.p.shard?.start ?? 0));
  const first = sorted[0].p;
  let next = 0;
  for (const { p, file } of sorted) {
    if (p.model !== first.model || p.weightBits !== first.weightBits) throw new RangeError(`${file} measured ${p.model} at ${p.weightBits} bits, not ${first.model} at ${first.weightBits} bits like the others`);
    const start = p.shard?.start ?? 0;
    if (start !== next) throw new RangeError(`${file} starts at prompt ${start} but prompt ${next} is ${start > next ? 'missing' : 'measured twice'}`);
    if (p.seed - start !== first.seed - (first.shard?.start ?? 0)) throw new RangeError(`${file} used other seeds than the other parts`);
    next = start + p.prompts.length;
  }
  const total = first.shard?.of ?? next;
  if (next !== total) throw new RangeError(`the parts cover prompts 0..${next - 1} of ${total}: a part is missing`);
  const perPrompt = sorted.flatMap(({ p }) => p.perPrompt);
  const r = sensitivityFromPerPrompt(perPrompt);
  return {
    ...first, prompts: sorted.flatMap(({ p }) => p.prompts), seed: first.seed - (first.shard?.start ?? 0), shard: null,
    ...r, chunkWeights: Array.from(chunkWeightsFromSensitivity(r.sensitivity)),
  };
}

/** `qarvd merge`: combine the shards of a sensitivity measurement or of a calibration. */
export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('combine partial results of several processes or hosts (sensitivity --shard, quantize --shard --stats-out) into the single-process result')
    .argument('<files...>', 'the parts (JSON)')
    .requiredOption('--out <file>', 'where to write the merged JSON')
    .action(async (files: string[], o: { out: string }) => {
      const parts = await Promise.all(files.map(readJson));
      const types = new Set(parts.map((p) => p.type));
      if (types.size !== 1) throw new RangeError(`cannot merge different kinds of results: ${[...types].map(String).join(', ')}`);
      let merged: unknown;
      if (parts[0].type === 'Sensitivity') {
        merged = mergeSensitivity(parts as unknown as SensitivityFile[], files);
      } else if (parts[0].type === 'CalibrationStats') {
        const stats = parts.map((p, i) => {
          try {
            return CalibrationStats.fromJSON(p);
          } catch (e) {
            throw new RangeError(`${files[i]}: ${(e as Error).message}`);
          }
        });
        stats.sort((a, b) => a.seed - b.seed);
        merged = stats.reduce((a, b) => a.merge(b)).toJSON();
      } else {
        throw new RangeError(`${files[0]} is neither a sensitivity result nor calibration statistics (type ${String(parts[0].type)})`);
      }
      await writeFileAtomic(o.out, JSON.stringify(merged) + '\n');
      console.log(JSON.stringify({ merged: files.length, out: o.out }));
    });
}
