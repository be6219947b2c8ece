#!/usr/bin/env node
// A stand-in for Slurm's sbatch in tests: runs the batch script at once, on this machine, once per
// array task with the variables Slurm sets (SLURM_ARRAY_TASK_ID, _MIN, _MAX, _COUNT, _STEP,
// SLURM_ARRAY_JOB_ID), honours --dependency=afterok:<id> and --chdir, records every job in
// $SBATCH_STUB_LOG (JSON lines) and prints the job id as --parsable does.
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, existsSync } from 'node:fs';

const log = process.env.SBATCH_STUB_LOG;
const args = process.argv.slice(2);
const opt = (name) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const script = args.find((a) => !a.startsWith('-'));
const jobs = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
const id = 1000 + jobs.length;
const after = opt('dependency')?.replace(/^afterok:/, '').split(':').map(Number) ?? [];
const blocked = after.some((d) => jobs.find((j) => j.id === d)?.state !== 'COMPLETED');
let state = blocked ? 'DEPENDENCY_NEVER_SATISFIED' : 'COMPLETED';
const array = opt('array');
const tasks = [];
if (!blocked) {
  const m = array && /^(\d+)-(\d+)(?::(\d+))?$/.exec(array);
  if (array && !m) throw new Error(`stub sbatch: unsupported --array=${array}`);
  const [min, max, step] = m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 1)] : [];
  const ids = m ? Array.from({ length: Math.floor((max - min) / step) + 1 }, (_, i) => min + i * step) : [null];
  for (const task of ids) {
    const env = { ...process.env, SLURM_JOB_ID: String(id) };
    if (task !== null) Object.assign(env, { SLURM_ARRAY_JOB_ID: String(id), SLURM_ARRAY_TASK_ID: String(task), SLURM_ARRAY_TASK_MIN: String(min), SLURM_ARRAY_TASK_MAX: String(ids.at(-1)), SLURM_ARRAY_TASK_COUNT: String(ids.length), SLURM_ARRAY_TASK_STEP: String(step) });
    const r = spawnSync('bash', [script], { env, cwd: opt('chdir') ?? process.cwd(), encoding: 'utf8' });
    tasks.push({ task, status: r.status, stderr: r.stderr.slice(-2000) });
    if (r.status !== 0) state = 'FAILED';
  }
}
appendFileSync(log, JSON.stringify({ id, script, args, after, state, tasks }) + '\n');
console.log(id);
