// `--shard i/n`: split a command's prompts into n contiguous parts so that n processes (or hosts)
// each measure one, and `qarvd merge` puts the parts back together in order. `--shard auto` reads
// i and n from the job runner: a Slurm job array or a Kubernetes Indexed Job. Every part carries a
// provenance hash (the model's weights and the run's settings), so that merge can refuse parts of
// different runs and name the parts that are missing.
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from 'commander';

export interface Shard {
  index: number; // 1-based
  count: number;
}

/** `--shard` as given: i/n, or 'auto' (resolved from the environment by resolveShard). */
export type ShardOption = Shard | 'auto';

export function parseShard(value: string): ShardOption {
  if (value === 'auto') return 'auto';
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError(`--shard must be i/n with 1 <= i <= n (e.g. 1/2), or auto, but received '${value}'`);
  return { index, count };
}

/**
 * The shard of this process. For 'auto': in a Slurm job array, the task's place in the array
 * (SLURM_ARRAY_TASK_ID, _MIN, _STEP) of SLURM_ARRAY_TASK_COUNT tasks; in a Kubernetes Indexed Job,
 * JOB_COMPLETION_INDEX (0-based) of `shards` (the Job's completions, which Kubernetes does not put
 * in the pod's environment: pass it with --shards). `shards`, when given, must agree with Slurm's count.
 *
 * @example
 * resolveShard('auto', undefined, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '4' }); // { index: 4, count: 4 }
 */
export function resolveShard(shard: ShardOption | undefined, shards: number | undefined, env: NodeJS.ProcessEnv = process.env): Shard | undefined {
  if (shard !== 'auto') {
    if (shards !== undefined && shard && shard.count !== shards) throw new RangeError(`--shard ${shard.index}/${shard.count} and --shards ${shards} disagree`);
    if (shards !== undefined && !shard) throw new RangeError('--shards is the number of parts of --shard auto; give --shard auto (or --shard i/n)');
    return shard;
  }
  const int = (name: string, min: number): number => {
    const v = env[name];
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isInteger(n) || n < min) throw new RangeError(`--shard auto: ${name} is ${v === undefined ? 'not set' : `'${v}'`}; expected an integer >= ${min}`);
    return n;
  };
  const slurm = env.SLURM_ARRAY_TASK_ID !== undefined, kubernetes = env.JOB_COMPLETION_INDEX !== undefined;
  if (slurm && kubernetes) throw new RangeError('--shard auto: both a Slurm array (SLURM_ARRAY_TASK_ID) and a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) are in the environment; give --shard i/n');
  if (slurm) {
    const id = int('SLURM_ARRAY_TASK_ID', 0), count = int('SLURM_ARRAY_TASK_COUNT', 1);
    const min = env.SLURM_ARRAY_TASK_MIN === undefined ? 0 : int('SLURM_ARRAY_TASK_MIN', 0);
    const step = env.SLURM_ARRAY_TASK_STEP === undefined ? 1 : int('SLURM_ARRAY_TASK_STEP', 1);
    const offset = (id - min) / step;
    if (!Number.isInteger(offset) || offset < 0 || offset >= count) {
      throw new RangeError(`--shard auto: Slurm task ${id} is not one of ${count} evenly spaced tasks from ${min} (step ${step}); submit the array as --array=<first>-<last>[:step]`);
    }
    if (shards !== undefined && shards !== count) throw new RangeError(`--shards ${shards} disagrees with the Slurm array's ${count} tasks (SLURM_ARRAY_TASK_COUNT)`);
    return { index: offset + 1, count };
  }
  if (kubernetes) {
    const index = int('JOB_COMPLETION_INDEX', 0);
    if (shards === undefined) throw new RangeError('--shard auto in a Kubernetes Indexed Job needs --shards N (the Job\'s completions)');
    if (index >= shards) throw new RangeError(`--shard auto: JOB_COMPLETION_INDEX ${index} is not below --shards ${shards}`);
    return { index: index + 1, count: shards };
  }
  throw new RangeError('--shard auto: found neither a Slurm job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) nor a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) in the environment; give --shard i/n');
}

/** The prompts [start, end) of a shard: contiguous, every prompt in exactly one shard. */
export function shardRange(prompts: number, shard: Shard | undefined): { start: number; end: number } {
  if (!shard) return { start: 0, end: prompts };
  if (shard.count > prompts) throw new RangeError(`--shard ${shard.index}/${shard.count} splits ${prompts} prompts into more parts than there are prompts`);
  return { start: Math.floor(((shard.index - 1) * prompts) / shard.count), end: Math.floor((shard.index * prompts) / shard.count) };
}

/** Where a result came from: the model's digest, and a hash of it with every setting of the run. */
export interface Provenance {
  model: string;
  run: string;
}

/** The provenance of a run of `model` (its digest) with `settings` (plain JSON: all prompts, seeds, options). */
export function provenanceOf(model: string, settings: unknown): Provenance {
  return { model, run: createHash('sha256').update(JSON.stringify({ model, settings })).digest('hex') };
}

/** A part to merge: its file, its shard (null for a whole run) and provenance. */
export interface Part<T> {
  file: string;
  value: T;
  shard: { index: number; count: number } | null;
  provenance: Provenance | undefined;
}

/**
 * Checks that parts are the shards of one run, each once, none missing (naming the missing ones and
 * their prompts, of `total` prompts), and returns them in shard order.
 */
export function checkShards<T>(parts: Part<T>[], total: (part: Part<T>) => number): Part<T>[] {
  if (parts.length === 0) throw new RangeError('nothing to merge');
  for (const p of parts) if (!p.provenance) throw new RangeError(`${p.file} carries no provenance (written by an older qarvd?): run it again`);
  const first = parts[0];
  for (const p of parts) {
    if (p.provenance!.run !== first.provenance!.run) {
      const why = p.provenance!.model !== first.provenance!.model ? 'another model' : 'the same model with other settings (prompts, seeds, options)';
      throw new RangeError(`${p.file} comes from ${why} than ${first.file} (provenance ${p.provenance!.run.slice(0, 12)} vs ${first.provenance!.run.slice(0, 12)}): parts of different runs cannot be merged`);
    }
  }
  const whole = parts.find((p) => !p.shard);
  if (whole) throw new RangeError(`${whole.file} is a whole result, not a shard: nothing to merge it with`);
  const count = first.shard!.count;
  for (const p of parts) if (p.shard!.count !== count) throw new RangeError(`${p.file} is shard ${p.shard!.index}/${p.shard!.count}, but ${first.file} is one of ${count}`);
  const byIndex = new Map<number, Part<T>>();
  for (const p of parts) {
    const seen = byIndex.get(p.shard!.index);
    if (seen) throw new RangeError(`shard ${p.shard!.index}/${count} is given twice (${seen.file} and ${p.file})`);
    byIndex.set(p.shard!.index, p);
  }
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length) {
    const n = total(first);
    const list = missing.map((i) => {
      const { start, end } = shardRange(n, { index: i, count });
      return `${i}/${count} (prompts ${start}..${end - 1})`;
    });
    throw new RangeError(`missing shard${missing.length > 1 ? 's' : ''} ${list.join(', ')} of ${count}: run ${missing.length > 1 ? 'them' : 'it'} and merge again`);
  }
  return Array.from({ length: count }, (_, i) => byIndex.get(i + 1)!);
}
