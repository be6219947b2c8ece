// QARVD_NUM_THREADS and QARVD_ISA are checked when the addon loads, as setThreads and setIsa check
// their arguments: a bad value is ignored with a warning naming it, never an abort
// (QARVD_NUM_THREADS=100000 threw std::system_error) nor 10,000 real threads.
import t from 'tap';
import os from 'node:os';
import { lastJson, runChild } from './child.js';

interface Out {
  threads: number;
  isa: string;
  detected: string;
  y: number[];
}
const cores = os.availableParallelism?.() ?? os.cpus().length;

t.test('bad QARVD_NUM_THREADS values are ignored with a warning', async (t) => {
  for (const value of ['100000', '10000', '1025', '0', '-1', 'abc', '2.5', '4x']) {
    const r = await runChild('env.mjs', [], { env: { QARVD_NUM_THREADS: value }, timeoutMs: 60_000 });
    t.equal(r.code, 0, `QARVD_NUM_THREADS=${value}: exit 0 (${r.stderr.slice(-200)})`);
    const out = lastJson<Out>(r);
    t.ok(out && out.threads >= 1 && out.threads <= Math.max(cores, 1), `QARVD_NUM_THREADS=${value}: the default thread count (${out?.threads})`);
    t.same(out?.y, [11], 'and calls work');
    t.match(r.stderr, new RegExp(`QARVD_NUM_THREADS="${value.replace('.', '\\.')}" is not a whole number from 1 to 1024`), 'a warning names the value');
  }
});

t.test('a good QARVD_NUM_THREADS is used, without a warning', async (t) => {
  const r = await runChild('env.mjs', [], { env: { QARVD_NUM_THREADS: '3' }, timeoutMs: 60_000 });
  t.equal(lastJson<Out>(r)?.threads, 3);
  t.notMatch(r.stderr, /QARVD_ENV|Warning/);
});

t.test('a bogus QARVD_ISA is ignored with a warning; a good one applies', async (t) => {
  const bogus = await runChild('env.mjs', [], { env: { QARVD_ISA: 'avx9000' }, timeoutMs: 60_000 });
  t.equal(bogus.code, 0);
  const out = lastJson<Out>(bogus);
  t.equal(out?.isa, out?.detected, 'the best path of this CPU is used');
  t.match(bogus.stderr, /QARVD_ISA="avx9000" is not one of scalar, avx2/);
  const scalar = await runChild('env.mjs', [], { env: { QARVD_ISA: 'scalar' }, timeoutMs: 60_000 });
  t.equal(lastJson<Out>(scalar)?.isa, 'scalar');
  t.notMatch(scalar.stderr, /QARVD_ENV/);
});
