import t from 'tap';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../helpers/cli.js';
import { readVideos } from '../../lib/io/videos.js';
import { CausalDit } from '../../lib/model/dit.js';
import { EMBEDDED_TESTBED } from '../../lib/model/config.js';
import { generate } from '../../lib/model/sampling.js';

t.test('generate writes latents and pictures; eval compares two sets', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-gen-'));
  const r = await run(['generate', '--config', 'embedded-testbed', '--out', dir, '--prompt', 'a red fox', '--seed', '7', '--chunks', '2', '--quiet']);
  t.equal(r.code, 0, r.err);
  t.same(readdirSync(dir).sort(), ['video-0.gif', 'video-0.png', 'videos.safetensors']);
  const set = await readVideos(path.join(dir, 'videos.safetensors'));
  t.equal(set.videos.length, 1);
  t.equal(set.videos[0].prompt, 'a red fox');
  t.same(set.videos[0].latents.shape, [6, 16, 16, 16]);
  // The file holds exactly what the library generates for that prompt and seed.
  const direct = await generate(CausalDit.synthetic(EMBEDDED_TESTBED, { seed: 0 }), { prompt: 'a red fox', seed: 7, chunks: 2 });
  t.ok(direct.data.every((v, i) => v === set.videos[0].latents.data[i]));

  const e = await run(['eval', path.join(dir, 'videos.safetensors'), path.join(dir, 'videos.safetensors'), '--out', path.join(dir, 'm.json')]);
  t.equal(e.code, 0, e.err);
  const m = JSON.parse(e.out);
  t.equal(m.mean.psnr, 'Infinity');
  t.equal(m.mean.ssim, 1);
  t.equal(m.perVideo[0].perChunk.mse.length, 2);

  const other = mkdtempSync(path.join(tmpdir(), 'qarvd-gen-'));
  t.equal((await run(['generate', '--config', 'embedded-testbed', '--out', other, '--prompt', 'waves', '--chunks', '2', '--quiet', '--no-frames'])).code, 0);
  const bad = await run(['eval', path.join(dir, 'videos.safetensors'), path.join(other, 'videos.safetensors')]);
  t.equal(bad.code, 1);
  t.match(bad.err, /made from 'a red fox'.*'waves'/);
});

t.test('generate --attention and --kv-cache run the model so', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-gen-'));
  const r = await run(['generate', '--config', 'embedded-testbed', '--out', dir, '--prompt', 'a red fox', '--seed', '7', '--chunks', '2', '--attention', 'int8', '--kv-cache', 'bf16', '--quiet', '--no-frames']);
  t.equal(r.code, 0, r.err);
  t.match(JSON.parse(r.out), { attention: 'int8', kvCache: 'bf16' });
  const set = await readVideos(path.join(dir, 'videos.safetensors'));
  t.match(set.info, { attention: 'int8', kvCache: 'bf16' });
  const direct = await generate(CausalDit.synthetic(EMBEDDED_TESTBED, { seed: 0 }), { prompt: 'a red fox', seed: 7, chunks: 2, attention: 'int8', kvCache: 'bf16' });
  t.ok(direct.data.every((v, i) => v === set.videos[0].latents.data[i]), 'the library\'s video for those options');
});

t.test('bad arguments exit non-zero with a message', async (t) => {
  const cases: [string[], RegExp][] = [
    [['generate', '--seed', '-1'], /--seed must be an integer >= 0/],
    [['generate', '--chunks', 'two'], /--chunks must be an integer/],
    [['generate', '--attention', 'fp16'], /--attention must be one of fp32, bf16, int8/],
    [['generate', '--kv-cache', 'int4'], /--kv-cache must be one of fp32, bf16, int8/],
    [['generate', '--model', '/nonexistent/m.safetensors', '--quiet'], /ENOENT|no such file/],
    [['generate', '--config', 'huge', '--quiet'], /embedded-default/],
    [['eval', 'a.safetensors'], /missing required argument/],
    [['eval', '/nonexistent/a', '/nonexistent/b'], /ENOENT|no such file/],
  ];
  for (const [args, pattern] of cases) {
    const r = await run(args);
    t.not(r.code, 0, args.join(' '));
    t.match(r.err, pattern, args.join(' '));
  }
});

t.test('sensitivity measures per-chunk sensitivity and writes chunk weights', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-sens-'));
  const file = path.join(dir, 's.json');
  const r = await run(['sensitivity', '--config', 'embedded-testbed', '--prompt', 'a red fox', '--chunks', '2', '--bits', '4', '--out', file, '--quiet']);
  t.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  t.equal(j.sensitivity.length, 2);
  t.ok(Math.abs(j.sensitivity[0] + j.sensitivity[1] - 1) < 1e-12, 'normalised');
  t.ok(Math.abs(j.chunkWeights[0] - 2 * j.sensitivity[0]) < 1e-12, 'w_k = s_k / mean(s)');
  t.ok(j.mse.every((m: number) => m > 0));
  const bad = await run(['sensitivity', '--bits', '3']);
  t.not(bad.code, 0);
  t.match(bad.err, /--bits must be 8 or 4/);
});
