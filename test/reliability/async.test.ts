// Async native calls against the ways a caller can pull memory from under them: a worker thread
// ended (terminate(), or process.exit() inside it) with calls in flight, and an input's or output's
// ArrayBuffer transferred (detached) and collected while the call runs. Both run in child processes:
// before the fixes the first aborted the whole process (std::terminate from AsyncWorker's
// completion) and the second read freed memory.
import t from 'tap';
import { lastJson, runChild } from './child.js';

t.test('ending a worker with async calls in flight leaves the process running', async (t) => {
  const r = await runChild('worker-exit.mjs', ['8'], { timeoutMs: 180_000 });
  t.equal(r.signal, null, `no signal (stderr: ${r.stderr.slice(-500)})`);
  t.equal(r.code, 0, 'exit code 0');
  t.notOk(r.timedOut, 'no hang');
  const out = lastJson<{ rounds: number; ended: number; survived: boolean; check: number[] }>(r);
  t.same(out, { rounds: 8, ended: 8, survived: true, check: [6, 15] }, 'every worker ended (4 terminated, 4 exited) and the parent still computes');
});

t.test('detaching buffers during async calls gives the right result or a clean error', async (t) => {
  const r = await runChild('detach.mjs', ['5'], { nodeArgs: ['--expose-gc'], timeoutMs: 180_000 });
  t.equal(r.signal, null, `no signal (stderr: ${r.stderr.slice(-500)})`);
  t.equal(r.code, 0, 'exit code 0');
  const out = lastJson<{ runs: number; correct: number; rejected: number; wrong: number; messages: string[] }>(r);
  t.ok(out, 'the child reported');
  if (!out) return;
  t.equal(out.wrong, 0, `no wrong result (${out.messages.join('; ')})`);
  t.equal(out.correct + out.rejected, 5 * 5, 'every call accounted for');
  // The forward passes copy their inputs when they start: the transfer cannot change their result.
  t.ok(out.correct >= 5 * 3, `the forwards and the rmsNorm give the undisturbed result (${out.correct} correct)`);
  // An output detached while the call runs is reported, not written into freed memory.
  t.ok(out.messages.some((m) => /layerNorm, out detached: .*detached/.test(m)), 'a detached output rejects with a message saying so');
  for (const m of out.messages) t.match(m, /detached|transferred/, `a clean message: ${m}`);
});
