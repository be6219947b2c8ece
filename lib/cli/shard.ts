// `--shard i/n`: split a command's prompts into n contiguous parts so that n processes (or hosts)
// each measure one, and `qarvd merge` puts the parts back together in order.
import { InvalidArgumentError } from 'commander';

export interface Shard {
  index: number; // 1-based
  count: number;
}

export function parseShard(value: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError(`--shard must be i/n with 1 <= i <= n (e.g. 1/2) but received '${value}'`);
  return { index, count };
}

/** The prompts [start, end) of a shard: contiguous, every prompt in exactly one shard. */
export function shardRange(prompts: number, shard: Shard | undefined): { start: number; end: number } {
  if (!shard) return { start: 0, end: prompts };
  if (shard.count > prompts) throw new RangeError(`--shard ${shard.index}/${shard.count} splits ${prompts} prompts into more parts than there are prompts`);
  return { start: Math.floor(((shard.index - 1) * prompts) / shard.count), end: Math.floor((shard.index * prompts) / shard.count) };
}
