// The generated bad-input suite: every export of lib/index.ts (functions, constructors, static and
// instance methods) called with about fifty kinds of bad argument (wrong types, NaN and huge numbers,
// detached buffers, tensors made from Tensor.prototype with inconsistent fields, proxies, lying
// typed-array subclasses, bogus options), one argument position at a time, in child processes. A
// crash or a hang of a child fails the test and names the call in flight; every call must either
// succeed or fail with an Error that has a message.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lastJson, runChild } from './child.js';

interface Stats {
  targets: number;
  calls: number;
  clean: number;
  accepted: number;
  unclean: number;
  named: number;
  unhandled: number;
  uncaught: number;
  uncaughtSamples: string[];
  samples: string[];
  uncleanSamples: string[];
}

const SHARDS = 4;

t.test('bad input never crashes the process', async (t) => {
  // Calls that write files (writePng('x', ...), say) write them here.
  const cwd = mkdtempSync(path.join(os.tmpdir(), 'qarvd-bad-input-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const results = [];
  for (let s = 0; s < SHARDS; s += 2) {
    results.push(...(await Promise.all([s, s + 1].map((i) => runChild('bad-input.mjs', [String(i), String(SHARDS)], { cwd, timeoutMs: 240_000, env: { BAD_INPUT_LOG: path.join(cwd, `calls-${i}.log`) } })))));
  }
  const total = { targets: 0, calls: 0, clean: 0, accepted: 0, unclean: 0, named: 0, unhandled: 0, uncaught: 0, crashes: 0 };
  results.forEach((r, i) => {
    const stats = lastJson<Stats>(r);
    let lastCall = '(no call yet)';
    try {
      lastCall = readFileSync(path.join(cwd, `calls-${i}.log`), 'utf8').trim().split('\n').pop() ?? lastCall;
    } catch {
      // the child died before its first call
    }
    const died = r.signal !== null || r.code !== 0 || r.timedOut || !stats;
    if (died) {
      total.crashes++;
      t.fail(`shard ${i} ${r.timedOut ? 'hung' : `died (exit ${r.code}, signal ${r.signal})`} during: ${lastCall}\n${r.stderr.split('\n').slice(-15).join('\n')}`);
      return;
    }
    for (const k of ['targets', 'calls', 'clean', 'accepted', 'unclean', 'named', 'unhandled', 'uncaught'] as const) total[k] += stats[k];
    t.same(stats.uncleanSamples, [], `shard ${i}: every failure is an Error with a message`);
    t.same(stats.uncaughtSamples, [], `shard ${i}: no exception escapes later from inside the library`);
    for (const s of stats.samples.slice(0, 2)) t.comment(s);
  });
  t.comment(`bad-input suite: ${total.calls} calls over ${total.targets} entry points: ${total.clean} clean errors (${total.named} naming the argument), ${total.accepted} accepted, ${total.unclean} unclean, ${total.crashes} crashes`);
  t.equal(total.crashes, 0, 'no child crashed or hung');
  t.equal(total.unclean, 0, 'no call threw something other than an Error with a message');
  t.equal(total.unhandled, 0, 'no unhandled rejection');
  t.equal(total.uncaught, 0, 'no uncaught exception');
  t.ok(total.calls >= 2000, `at least 2000 calls (${total.calls})`);
  t.ok(total.targets >= 200, `the whole exported API (${total.targets} entry points)`);
  t.ok(total.clean > total.accepted, 'most bad calls are refused');
});
