// examples/slurm and examples/kubernetes, run here as far as they can be: the scripts and the
// manifests' commands run unchanged on this machine, with stand-ins for sbatch and kubectl
// (test/examples/stubs) that set the variables Slurm and the Job controller set, and a `qarvd` on
// the PATH that runs this checkout.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { packageRoot } from '../../lib/native/binding.js';
import { saveSyntheticModel } from '../../lib/model/io.js';
import { writeSafetensors } from '../../lib/io/safetensors.js';
import { loadQuantizedModel } from '../../lib/checkpoint/checkpoint.js';
import { Tensor } from '../../lib/tensor/tensor.js';
import { Rng } from '../../lib/model/random.js';
import { EMBEDDED_TESTBED, type DitConfig } from '../../lib/model/config.js';
import { qarvdBin } from '../helpers/cli-bin.js';

const examples = path.join(packageRoot, 'examples');
const stubs = path.join(packageRoot, 'test', 'examples', 'stubs');
const PROMPTS = ['a red fox running', 'waves at dusk', 'a quiet forest', 'a train in the snow'];
/** As small as the pipeline allows: the point is the scripts, not the model. */
const tiny: DitConfig = { ...EMBEDDED_TESTBED, name: 'tiny', inChannels: 4, outChannels: 4, dim: 32, ffnDim: 64, heads: 2, layers: 1, freqDim: 16, textDim: 8, textLen: 4, latentHeight: 4, latentWidth: 4, framesPerChunk: 1, chunks: 3 };

/** A work folder with a model file and the prompts' features, and a PATH with qarvd, sbatch and kubectl. */
async function setup() {
  const root = mkdtempSync(path.join(tmpdir(), 'qarvd-examples-'));
  const work = path.join(root, 'work');
  const bin = path.join(root, 'bin');
  for (const d of [work, bin]) spawnSync('mkdir', ['-p', d]);
  await saveSyntheticModel(path.join(work, 'model.safetensors'), tiny, 3);
  const features = new Tensor('float32', [PROMPTS.length, 4, tiny.textDim], new Rng(1).fillNormal(new Float32Array(PROMPTS.length * 4 * tiny.textDim)));
  await writeSafetensors(path.join(work, 'prompts.safetensors'), { features }, { prompts: JSON.stringify(PROMPTS) });
  const { script, env } = await qarvdBin();
  // Fewer histogram bins than the default 32768 keep the test fast; nothing else is added.
  writeFileSync(path.join(bin, 'qarvd'), `#!/usr/bin/env bash\nif [ "$1" = quantize ]; then set -- "$@" --bins 256; fi\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(script)} "$@"\n`);
  chmodSync(path.join(bin, 'qarvd'), 0o755);
  for (const stub of ['sbatch', 'kubectl']) writeFileSync(path.join(bin, stub), `#!/usr/bin/env bash\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(stubs, `${stub}.mjs`))} "$@"\n`), chmodSync(path.join(bin, stub), 0o755);
  // The children are plain Node: without the test runner's TypeScript loader.
  const { NODE_OPTIONS: _, ...inherited } = process.env;
  return { root, work, env: { ...inherited, ...env, PATH: `${bin}:${process.env.PATH}` } };
}

const jsonLines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

t.test('slurm: submit.sh runs sensitivity and calibration as job arrays, each step after the last', async (t) => {
  const { root, work, env } = await setup();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const log = path.join(root, 'sbatch.log');
  const r = spawnSync('bash', [path.join(examples, 'slurm', 'submit.sh')], {
    env: { ...env, MODEL: path.join(work, 'model.safetensors'), FEATURES: path.join(work, 'prompts.safetensors'), WORK: work, SHARDS: '2', SBATCH_STUB_LOG: log },
    encoding: 'utf8',
  });
  t.equal(r.status, 0, r.stderr);
  const jobs = jsonLines(log);
  t.same(jobs.map((j) => path.basename(j.script)), ['sensitivity.sbatch', 'merge-sensitivity.sbatch', 'calibrate.sbatch', 'quantize.sbatch']);
  for (const j of jobs) t.equal(j.state, 'COMPLETED', `${path.basename(j.script)}: ${j.tasks.map((x: { stderr: string }) => x.stderr).join(' ')}`);
  t.same(jobs.map((j) => j.after), [[], [jobs[0].id], [jobs[1].id], [jobs[2].id]], 'afterok on the step before');
  t.same(jobs[0].tasks.map((x: { task: number }) => x.task), [0, 1], 'an array of 2 tasks');
  t.match(r.stdout, /submitted: sensitivity 1000, merge 1001, calibration 1002, quantize 1003/);
  const sensitivity = JSON.parse(readFileSync(path.join(work, 'sensitivity.json'), 'utf8'));
  t.same(sensitivity.prompts, PROMPTS, 'the merged result covers every prompt, in order');
  t.equal(sensitivity.shard, null);
  const { model } = await loadQuantizedModel(path.join(work, 'w8a8.safetensors'));
  t.equal(model.config.name, 'tiny');

  // A lost shard: the merge step fails and says which.
  rmSync(path.join(work, 'sensitivity.1.json'));
  const again = spawnSync('bash', [path.join(examples, 'slurm', 'merge-sensitivity.sbatch')], { env: { ...env, WORK: work }, encoding: 'utf8' });
  t.not(again.status, 0);
  t.match(again.stderr, /missing shard 2\/2 \(prompts 2\.\.3\)/);
});

t.test('kubernetes: the Indexed Jobs and the merge steps, in the order run.sh applies them', async (t) => {
  const manifests = readdirSync(path.join(examples, 'kubernetes')).filter((f) => f.endsWith('.yaml'));
  t.same(manifests.sort(), ['calibrate-job.yaml', 'merge-sensitivity-job.yaml', 'quantize-job.yaml', 'sensitivity-job.yaml']);
  for (const file of manifests) {
    const [job] = parseAllDocuments(readFileSync(path.join(examples, 'kubernetes', file), 'utf8')).map((d) => d.toJS());
    t.equal(job.kind, 'Job', file);
    const pod = job.spec.template.spec;
    t.equal(pod.restartPolicy, 'Never', `${file}: a failed pod is not restarted in place`);
    const [container] = pod.containers;
    const env = Object.fromEntries(container.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    t.equal(container.volumeMounts[0].mountPath, env.WORK, `${file}: WORK is the mounted volume`);
    t.equal(pod.volumes[0].persistentVolumeClaim.claimName, 'qarvd-work');
    if (job.spec.completionMode === 'Indexed') {
      t.equal(Number(env.SHARDS), job.spec.completions, `${file}: --shards equals completions`);
      t.ok(job.spec.parallelism <= job.spec.completions);
      t.match(container.args[0], /--shard auto --shards "\$SHARDS"/);
    }
  }
  const { root, work, env } = await setup();
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const log = path.join(root, 'kubectl.log');
  const r = spawnSync('bash', [path.join(examples, 'kubernetes', 'run.sh')], { env: { ...env, KUBECTL_STUB_LOG: log, KUBECTL_STUB_WORK: work }, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr + (existsSync(log) ? readFileSync(log, 'utf8') : ''));
  const jobs = jsonLines(log);
  t.same(jobs.map((j) => j.name), ['qarvd-sensitivity', 'qarvd-merge-sensitivity', 'qarvd-calibrate', 'qarvd-quantize']);
  t.same(jobs[0].pods.map((p: { index: number }) => p.index), [0, 1, 2, 3]);
  t.same(JSON.parse(readFileSync(path.join(work, 'sensitivity.2.json'), 'utf8')).shard, { index: 3, count: 4, start: 2, end: 3, of: 4 });
  const stats = JSON.parse(readFileSync(path.join(work, 'calibration.json'), 'utf8'));
  t.same(stats.prompts, PROMPTS);
  t.ok(existsSync(path.join(work, 'quantized.safetensors')));
});
