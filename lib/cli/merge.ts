import type { Command } from 'commander';
import { checkOutputFile } from '../io/paths.js';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/safetensors.js';
import { chunkWeightsFromSensitivity } from '../calibration/chunk_weights.js';
import { sensitivityFromPerPrompt } from '../schedule/sensitivity.js';
import { CalibrationStats } from '../method/calibrate.js';
import type { SensitivityFile } from './sensitivity.js';
import type { StatsFile } from './quantize.js';
import { checkShards } from './shard.js';

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

/** Sensitivity shards in prompt order: checks they are the shards of one run (same provenance), each once, none missing. */
export function mergeSensitivity(parts: SensitivityFile[], files: string[]): SensitivityFile {
  const ordered = checkShards(parts.map((p, i) => ({ file: files[i], value: p, shard: p.shard, provenance: p.provenance })), (p) => p.value.shard!.of);
  const first = ordered[0].value;
  let next = 0;
  for (const { value: p, file } of ordered) {
    // Shards of one run cover the prompts in order; anything else is a file edited by hand.
    if (p.shard!.start !== next || p.shard!.end - p.shard!.start !== p.prompts.length || p.seed - p.shard!.start !== first.seed) throw new RangeError(`${file} does not hold the prompts and seeds its shard says`);
    next = p.shard!.end;
  }
  const perPrompt = ordered.flatMap(({ value: p }) => p.perPrompt);
  const r = sensitivityFromPerPrompt(perPrompt);
  return {
    ...first, prompts: ordered.flatMap(({ value: p }) => p.prompts), seed: first.seed, shard: null,
    ...r, chunkWeights: Array.from(chunkWeightsFromSensitivity(r.sensitivity)),
  };
}

/** Calibration shards (quantize --shard --stats-out) in prompt order, merged into the statistics of the whole run. */
export function mergeStats(parts: StatsFile[], files: string[]): StatsFile {
  const ordered = checkShards(parts.map((p, i) => ({ file: files[i], value: p, shard: p.shard, provenance: p.provenance })), (p) => p.value.shard!.of);
  const stats = ordered.map(({ value, file }) => {
    try {
      return CalibrationStats.fromJSON(value);
    } catch (e) {
      throw new RangeError(`${file}: ${(e as Error).message}`);
    }
  });
  const first = ordered[0].value;
  return { ...stats.reduce((a, b) => a.merge(b)).toJSON(), shard: null, features: first.features, provenance: first.provenance };
}

/** `qarvd merge`: combine the shards of a sensitivity measurement or of a calibration. */
export function registerMerge(program: Command): void {
  program
    .command('merge')
    .description('combine the shards of a run (sensitivity --shard, quantize --shard --stats-out), from several processes or hosts, into the single-process result; checks that every shard is there, once, from the same model and settings')
    .argument('<files...>', 'the parts (JSON)')
    .requiredOption('--out <file>', 'where to write the merged JSON')
    .action(async (files: string[], o: { out: string }) => {
      await checkOutputFile(o.out, '--out');
      const parts = await Promise.all(files.map(readJson));
      const types = new Set(parts.map((p) => p.type));
      if (types.size !== 1) throw new RangeError(`cannot merge different kinds of results: ${[...types].map(String).join(', ')}`);
      let merged: unknown;
      if (parts[0].type === 'Sensitivity') {
        merged = mergeSensitivity(parts as unknown as SensitivityFile[], files);
      } else if (parts[0].type === 'CalibrationStats') {
        merged = mergeStats(parts as unknown as StatsFile[], files);
      } else {
        throw new RangeError(`${files[0]} is neither a sensitivity result nor calibration statistics (type ${String(parts[0].type)})`);
      }
      await writeFileAtomic(o.out, JSON.stringify(merged) + '\n');
      console.log(JSON.stringify({ merged: files.length, out: o.out }));
    });
}
