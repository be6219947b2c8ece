import t from 'tap';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveShard, parseShard, checkShards } from '../../lib/cli/shard.js';
import { run } from '../helpers/cli.js';
import { saveSyntheticModel } from '../../lib/model/io.js';
import { small } from '../method/fixtures.js';

t.test('--shard auto: Slurm job arrays and Kubernetes Indexed Jobs', async (t) => {
  t.equal(parseShard('auto'), 'auto');
  t.same(parseShard('2/3'), { index: 2, count: 3 });
  const slurm = (id: number, extra: Record<string, string> = {}) => ({ SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '4', ...extra });
  t.same(resolveShard('auto', undefined, slurm(0)), { index: 1, count: 4 });
  t.same(resolveShard('auto', undefined, slurm(3)), { index: 4, count: 4 });
  t.same(resolveShard('auto', undefined, slurm(5, { SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_STEP: '2' })), { index: 3, count: 4 }, '--array=1-7:2: task 5 is the third');
  t.same(resolveShard('auto', 4, slurm(2)), { index: 3, count: 4 }, '--shards may repeat the count');
  t.throws(() => resolveShard('auto', 3, slurm(2)), { message: /--shards 3 disagrees with the Slurm array's 4 tasks/ });
  t.throws(() => resolveShard('auto', undefined, slurm(4)), { message: /task 4 is not one of 4 evenly spaced tasks from 0/ });
  t.throws(() => resolveShard('auto', undefined, { SLURM_ARRAY_TASK_ID: '1' }), { message: /SLURM_ARRAY_TASK_COUNT is not set/ });
  t.throws(() => resolveShard('auto', undefined, slurm(1, { SLURM_ARRAY_TASK_COUNT: 'x' })), { message: /SLURM_ARRAY_TASK_COUNT is 'x'/ });
  t.same(resolveShard('auto', 5, { JOB_COMPLETION_INDEX: '0' }), { index: 1, count: 5 });
  t.same(resolveShard('auto', 5, { JOB_COMPLETION_INDEX: '4' }), { index: 5, count: 5 });
  t.throws(() => resolveShard('auto', undefined, { JOB_COMPLETION_INDEX: '0' }), { message: /needs --shards N \(the Job's completions\)/ });
  t.throws(() => resolveShard('auto', 5, { JOB_COMPLETION_INDEX: '5' }), { message: /JOB_COMPLETION_INDEX 5 is not below --shards 5/ });
  t.throws(() => resolveShard('auto', undefined, {}), { message: /neither a Slurm job array .* nor a Kubernetes Indexed Job/ });
  t.throws(() => resolveShard('auto', 2, { ...slurm(0), JOB_COMPLETION_INDEX: '0' }), { message: /both a Slurm array/ });
  t.same(resolveShard({ index: 1, count: 2 }, undefined, slurm(3)), { index: 1, count: 2 }, 'an explicit i/n wins');
  t.throws(() => resolveShard(undefined, 3, {}), { message: /--shards is the number of parts of --shard auto/ });
});

t.test('merge checks provenance and completeness, naming what is missing', async (t) => {
  const part = (file: string, index: number, count: number, run = 'r', model = 'm') => ({ file, value: null, shard: { index, count }, provenance: { model, run } });
  const total = () => 10;
  t.same(checkShards([part('b', 2, 3), part('c', 3, 3), part('a', 1, 3)], total).map((p) => p.file), ['a', 'b', 'c']);
  t.throws(() => checkShards([part('a', 1, 4), part('c', 3, 4)], total), { message: /missing shards 2\/4 \(prompts 2\.\.4\), 4\/4 \(prompts 7\.\.9\) of 4/ });
  t.throws(() => checkShards([part('a', 1, 2), part('b', 2, 2, 'other')], total), { message: /b comes from the same model with other settings .* than a/ });
  t.throws(() => checkShards([part('a', 1, 2), part('b', 2, 2, 'other', 'm2')], total), { message: /b comes from another model than a/ });
  t.throws(() => checkShards([part('a', 1, 2), part('b', 2, 3)], total), { message: /b is shard 2\/3, but a is one of 2/ });
  t.throws(() => checkShards([part('a', 1, 2), { ...part('b', 1, 2), provenance: undefined }], total), { message: /b carries no provenance/ });
});

t.test('the CLI reads the shard from the job runner and merge refuses parts of other runs', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-shard-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = (n: string) => path.join(dir, n);
  await saveSyntheticModel(f('a.safetensors'), small, 1);
  await saveSyntheticModel(f('b.safetensors'), small, 2);
  const prompts = ['--prompt', 'a red fox', '--prompt', 'waves', '--chunks', '2', '--quiet'];
  const withEnv = async (env: Record<string, string>, args: string[]) => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      return await run(args);
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  };
  const k8s = await withEnv({ JOB_COMPLETION_INDEX: '1' }, ['sensitivity', '--model', f('a.safetensors'), ...prompts, '--shard', 'auto', '--shards', '2', '--out', f('s2.json')]);
  t.equal(k8s.code, 0, k8s.err);
  t.match(JSON.parse(readFileSync(f('s2.json'), 'utf8')), { shard: { index: 2, count: 2, start: 1, end: 2, of: 2 }, prompts: ['waves'], provenance: { model: /^[0-9a-f]{64}$/, run: /^[0-9a-f]{64}$/ } });
  const slurm = await withEnv({ SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '2' }, ['sensitivity', '--model', f('a.safetensors'), ...prompts, '--shard', 'auto', '--out', f('s1.json')]);
  t.equal(slurm.code, 0, slurm.err);
  t.equal((await run(['merge', f('s1.json'), f('s2.json'), '--out', f('s.json')])).code, 0);
  // The same shard of another model, or of other seeds, does not merge.
  t.equal((await run(['sensitivity', '--model', f('b.safetensors'), ...prompts, '--shard', '1/2', '--out', f('b1.json')])).code, 0);
  t.match((await run(['merge', f('b1.json'), f('s2.json'), '--out', f('x.json')])).err, /s2.json comes from another model than .*b1.json/);
  t.equal((await run(['sensitivity', '--model', f('a.safetensors'), ...prompts, '--seed', '7', '--shard', '1/2', '--out', f('seed1.json')])).code, 0);
  t.match((await run(['merge', f('seed1.json'), f('s2.json'), '--out', f('x.json')])).err, /other settings/);
  t.match((await run(['merge', f('s2.json'), '--out', f('x.json')])).err, /missing shard 1\/2 \(prompts 0\.\.0\)/);
  t.match((await run(['sensitivity', '--model', f('a.safetensors'), ...prompts, '--shard', 'auto'])).err, /neither a Slurm job array/);
  t.match((await run(['sensitivity', '--shard', '1-2'])).err, /--shard must be i\/n .* or auto/);
  // Calibration statistics know their model.
  const calib = ['quantize', '--model', f('a.safetensors'), '--prompt', 'a red fox', '--bins', '256', '--quiet'];
  t.equal((await run([...calib, '--stats-out', f('c.json')])).code, 0);
  const other = await run(['quantize', '--model', f('b.safetensors'), '--stats', f('c.json'), '--out', f('q.safetensors'), '--quiet']);
  t.match(other.err, /calibration statistics of another model/);
  t.equal((await run([...calib, '--prompt', 'waves', '--shard', '1/2', '--stats-out', f('c1.json')])).code, 0);
  t.match((await run(['quantize', '--model', f('a.safetensors'), '--stats', f('c1.json'), '--out', f('q.safetensors'), '--quiet'])).err, /shard 1\/2 of a calibration; combine the shards with qarvd merge/);
});
