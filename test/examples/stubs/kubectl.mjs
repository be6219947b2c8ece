#!/usr/bin/env node
// A stand-in for kubectl in tests: `apply -f job.yaml` runs the Job's container command on this
// machine (sh -c, the container's env, WORK replaced by $KUBECTL_STUB_WORK), once per completion
// index with JOB_COMPLETION_INDEX set for Indexed Jobs; `wait --for=condition=complete job/<name>`
// succeeds if every pod of it succeeded. Jobs are recorded in $KUBECTL_STUB_LOG (JSON lines).
import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, existsSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const log = process.env.KUBECTL_STUB_LOG;
const [verb, ...rest] = process.argv.slice(2);
const jobs = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
if (verb === 'apply') {
  const file = rest[rest.indexOf('-f') + 1];
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS())) {
    if (doc.kind !== 'Job') throw new Error(`stub kubectl: only Jobs, not ${doc.kind}`);
    const [container] = doc.spec.template.spec.containers;
    const indexed = doc.spec.completionMode === 'Indexed';
    const env = { ...process.env };
    for (const e of container.env ?? []) env[e.name] = e.value;
    env.WORK = process.env.KUBECTL_STUB_WORK;
    const pods = [];
    for (let i = 0; i < (indexed ? doc.spec.completions : 1); i++) {
      const r = spawnSync(container.command[0], [...container.command.slice(1), ...container.args], { env: indexed ? { ...env, JOB_COMPLETION_INDEX: String(i) } : env, encoding: 'utf8' });
      pods.push({ index: indexed ? i : null, status: r.status, stderr: r.stderr.slice(-2000) });
    }
    appendFileSync(log, JSON.stringify({ name: doc.metadata.name, pods }) + '\n');
    console.log(`job.batch/${doc.metadata.name} created`);
  }
} else if (verb === 'wait') {
  const name = rest.find((a) => a.startsWith('job/')).slice(4);
  const job = jobs.findLast((j) => j.name === name);
  if (!job || job.pods.some((p) => p.status !== 0)) {
    console.error(`error: timed out waiting for the condition on jobs/${name}`);
    process.exit(1);
  }
  console.log(`job.batch/${name} condition met`);
} else {
  throw new Error(`stub kubectl: unsupported ${verb}`);
}
