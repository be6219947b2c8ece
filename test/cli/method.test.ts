import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../helpers/cli.js';
import { saveSyntheticModel } from '../../lib/model/io.js';
import { loadQuantizedModel, readQuantizedModel } from '../../lib/checkpoint/checkpoint.js';
import { readVideos } from '../../lib/io/videos.js';
import { readSafetensors } from '../../lib/io/safetensors.js';
import { ChunkScheduler } from '../../lib/schedule/scheduler.js';
import { small } from '../method/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-method-'));
const model = path.join(dir, 'small.safetensors');
await saveSyntheticModel(model, small, 3);
const f = (name: string) => path.join(dir, name);
const json = (r: { out: string }) => JSON.parse(r.out);
const prompts = ['--prompt', 'a red fox', '--prompt', 'ocean waves at dusk', '--prompt', 'a quiet forest'];

t.test('sensitivity shards merge into the single-process result, bit for bit', async (t) => {
  const whole = await run(['sensitivity', '--model', model, ...prompts, '--seed', '4', '--out', f('s.json'), '--quiet']);
  t.equal(whole.code, 0, whole.err);
  for (const i of [1, 2]) t.equal((await run(['sensitivity', '--model', model, ...prompts, '--seed', '4', '--shard', `${i}/2`, '--out', f(`s${i}.json`), '--quiet'])).code, 0);
  const part = JSON.parse(readFileSync(f('s1.json'), 'utf8'));
  t.same(part.shard, { index: 1, count: 2, start: 0, end: 1, of: 3 });
  const m = await run(['merge', f('s2.json'), f('s1.json'), '--out', f('s-merged.json')]);
  t.equal(m.code, 0, m.err);
  const merged = JSON.parse(readFileSync(f('s-merged.json'), 'utf8'));
  const single = json(whole);
  t.same(merged.sensitivity, single.sensitivity, 'identical sensitivities');
  t.same(merged.perPrompt, single.perPrompt);
  t.same(merged.chunkWeights, single.chunkWeights);
  t.same(merged.prompts, single.prompts);
  const missing = await run(['merge', f('s2.json'), '--out', f('x.json')]);
  t.equal(missing.code, 1);
  t.match(missing.err, /missing shard 1\/2 \(prompts 0\.\.0\) of 2/);
  const twice = await run(['merge', f('s1.json'), f('s1.json'), f('s2.json'), '--out', f('x.json')]);
  t.match(twice.err, /shard 1\/2 is given twice/);
  const shardAsWeights = await run(['quantize', '--model', model, '--sensitivity', f('s1.json'), '--out', f('x.safetensors'), '--quiet']);
  t.match(shardAsWeights.err, /one shard.*qarvd merge/);
});

t.test('calibration shards merge into the same checkpoint as one process', async (t) => {
  const common = ['--model', model, '--prompt', 'a red fox', '--prompt', 'ocean waves at dusk', '--sensitivity', f('s.json'), '--bins', '512', '--quiet'];
  const one = await run(['quantize', ...common, '--setting', 'W4A8', '--out', f('one.safetensors'), '--plan-out', f('plan.json')]);
  t.equal(one.code, 0, one.err);
  t.match(json(one), { setting: 'W4A8', method: '+ bit allocation' });
  const plan = JSON.parse(readFileSync(f('plan.json'), 'utf8'));
  const saved = (await readQuantizedModel(f('one.safetensors'))).info as { plans: unknown };
  t.same(plan.plans, saved.plans, 'the plan file is the plan the checkpoint carries');
  t.equal(Object.keys(plan.plans.chunks.choices).length, small.chunks);
  for (const i of [1, 2]) {
    const r = await run(['quantize', ...common, '--shard', `${i}/2`, '--stats-out', f(`c${i}.json`)]);
    t.equal(r.code, 0, r.err);
  }
  t.equal((await run(['merge', f('c1.json'), f('c2.json'), '--out', f('c.json')])).code, 0);
  const two = await run(['quantize', '--model', model, '--stats', f('c.json'), '--setting', 'W4A8', '--out', f('two.safetensors'), '--quiet']);
  t.equal(two.code, 0, two.err);
  const [a, b] = [await readQuantizedModel(f('one.safetensors')), await readQuantizedModel(f('two.safetensors'))];
  t.equal(a.layers.length, b.layers.length);
  for (let i = 0; i < a.layers.length; i++) t.same(b.layers[i], a.layers[i], `${a.layers[i].name}: same integers, scales and activation settings`);
  t.same((b.info as { chunkWeights: number[] }).chunkWeights, JSON.parse(readFileSync(f('s.json'), 'utf8')).chunkWeights);

  // Step 3 of the pipeline: generate with the checkpoint; the file holds what the library generates with it.
  const g = await run(['generate', '--quantized', f('one.safetensors'), '--prompt', 'a red fox', '--seed', '9', '--out', f('gen'), '--no-frames', '--quiet']);
  t.equal(g.code, 0, g.err);
  const { videos } = await readVideos(path.join(f('gen'), 'videos.safetensors'));
  const loaded = await loadQuantizedModel(f('one.safetensors'));
  const direct = await new ChunkScheduler(loaded.model, loaded.policy).generate({ prompt: 'a red fox', seed: 9 });
  t.ok(direct.data.every((v, i) => v === videos[0].latents.data[i]), 'generate --quantized = the loaded model under its policy');

  const bench = await run(['bench', '--model', model, '--quantized', f('one.safetensors'), '--repeats', '1', '--quiet']);
  t.equal(bench.code, 0, bench.err);
  const runs = json(bench).runs;
  t.equal(runs.length, 2);
  t.equal(runs[0].name, 'FP32');
  t.ok(runs[1].blockBytesRatio < 0.3, `W4A8 block weights ${runs[1].blockBytesRatio} of FP32`);
  t.ok(runs[1].seconds > 0 && runs[1].speedup > 0);
  // Stored bytes: every block layer's tensor in the file (integers, scales, zero points, outlier columns, bias).
  const { tensors } = await readSafetensors(f('one.safetensors'));
  const blockTensorBytes = Object.entries(tensors).filter(([n]) => /^blocks\.\d+\.((self|cross)_attn\.[qkvo]|ffn\.[02])\./.test(n)).reduce((a, [, x]) => a + x.data.byteLength, 0);
  t.equal(runs[1].storedBlockBytes, blockTensorBytes, 'stored bytes = the block tensors of the checkpoint');
});

t.test('demo runs the whole pipeline and writes the report with its checkpoints', async (t) => {
  const out = f('report');
  const r = await run(['demo', '--model', model, '--out', out, '--sensitivity-prompts', '1', '--calibration-prompts', '1', '--eval-prompts', '1', '--repeats', '1', '--bins', '512', '--quiet']);
  t.equal(r.code, 0, r.err);
  const summary = json(r);
  t.equal(summary.ablation.length, 18, 'nine rows per setting');
  t.match(summary.ablation.slice(7, 9).map((a: { method: string }) => a.method), [/int8 attention/, /int8 attention.*int8 KV cache/], 'the quantized-attention rows');
  for (const file of ['index.html', 'result.json', 'w8a8.safetensors', 'w4a8.safetensors', 'video-0.png', 'video-0-fp32.gif', 'video-0-w8a8.gif', 'video-0-w4a8.gif']) {
    t.ok(existsSync(path.join(out, file)), file);
  }
  const data = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'));
  t.equal(data.sensitivity.values.length, small.chunks);
  t.equal(data.settings.length, 2);
  t.ok(data.notes.length > 0);
  t.ok(data.notes.some((n: string) => /W8A8 \+ int8 attention: [\d.]+x the speed of FP32/.test(n)), 'the speed with int8 attention');
  t.equal(data.settings[0].perChunk.length, 3, 'per-chunk curves: naive, full, full + int8 attention');
  const html = readFileSync(path.join(out, 'index.html'), 'utf8');
  for (const plot of ['sensitivity', 'psnr-W8A8', 'psnr-W4A8', 'speed', 'profile', 'memory', 'outliers-0']) t.match(html, `data-plot="${plot}"`);
  t.same(data.profiles.map((p: { variant: string }) => p.variant), ['FP32', 'W8A8', 'W8A8 + int8 attention', 'W4A8', 'W4A8 + int8 attention'], 'a profiled video per variant');
  for (const p of data.profiles) t.ok(p.linears > 0 && p.attention > 0, `${p.variant}: linears and attention timed`);
  const loaded = await loadQuantizedModel(path.join(out, 'w8a8.safetensors'));
  t.equal(loaded.model.config.name, 'small');
});

t.test('bad arguments and files', async (t) => {
  writeFileSync(f('not-json.json'), 'hello');
  const cases: [string[], RegExp][] = [
    [['quantize', '--setting', 'W2A8'], /--setting must be one of W8A8, W4A8/],
    [['quantize', '--method', 'magic'], /--method must be one of/],
    [['quantize', '--shard', '3/2'], /--shard must be i\/n/],
    [['quantize', '--model', model, '--shard', '1/2', '--out', f('x.safetensors')], /--shard needs --stats-out/],
    [['quantize', '--model', model], /give --out/],
    [['quantize', '--model', model, '--stats', f('missing.json'), '--out', f('x.safetensors')], /cannot read calibration statistics/],
    [['quantize', '--model', model, '--stats', f('s.json'), '--out', f('x.safetensors')], /cannot read calibration statistics.*CalibrationStats/],
    [['sensitivity', '--model', model, '--prompt', 'a', '--shard', '2/2'], /more parts than there are prompts/],
    [['merge', f('not-json.json'), '--out', f('x.json')], /not JSON/],
    [['merge', f('s.json'), f('c1.json'), '--out', f('x.json')], /different kinds/],
    [['merge', f('s.json')], /required option '--out/],
    [['generate', '--quantized', model, '--quiet'], /qarvd.quantized|quantized checkpoint/],
    [['demo', '--config', 'embedded-testbed', '--eval-prompts', '9'], /default prompts/],
  ];
  for (const [args, pattern] of cases) {
    const r = await run(args);
    t.not(r.code, 0, args.join(' '));
    t.match(r.err, pattern, args.join(' '));
  }
});
