import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../helpers/cli.js';
import { readVideos } from '../../lib/io/videos.js';
import { loadModel } from '../../lib/model/io.js';
import { generate } from '../../lib/model/sampling.js';

const fixture = (name: string) => new URL(`../fixtures/checkpoints/${name}`, import.meta.url).pathname;

t.test('qarvd convert: a Self-Forcing .pt to a model file that generate runs as is', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-cli-convert-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'tiny.safetensors');
  const r = await run(['convert', fixture('tiny_self_forcing.pt'), out, '--heads', '2', '--text-len', '8', '--latent-size', '4x4', '--chunks', '2', '--name', 'tiny-sf', '--quiet']);
  t.equal(r.code, 0, r.err);
  t.match(JSON.parse(r.out), { key: 'generator_ema', prefix: 'model.', tensors: 69, config: { name: 'tiny-sf', heads: 2, latentHeight: 4 } });
  const g = await run(['generate', '--model', out, '--prompt', 'a red fox', '--seed', '5', '--out', dir, '--no-frames', '--quiet']);
  t.equal(g.code, 0, g.err);
  const [video] = (await readVideos(path.join(dir, 'videos.safetensors'))).videos;
  // The same as Wan's layout of the same weights, loaded with the same settings.
  const wan = await loadModel(fixture('tiny_wan.safetensors'), { heads: 2, textLen: 8, latentHeight: 4, latentWidth: 4, chunks: 2 });
  const direct = await generate(wan, { prompt: 'a red fox', seed: 5 });
  t.ok(Buffer.compare(Buffer.from(direct.data.buffer), Buffer.from(video.latents.data.buffer)) === 0, 'bit for bit');
});

t.test('qarvd convert: refusals and bad arguments exit 1 with a message, writing nothing', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-cli-convert-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'x.safetensors');
  const cases: [string[], RegExp][] = [
    [['convert', fixture('malicious.pt'), out], /refuses the global posix\.system/],
    [['convert', fixture('legacy.pt'), out], /legacy torch.save format/],
    [['convert', fixture('tiny_self_forcing.pt'), out, '--key', 'critic'], /no key 'critic'/],
    [['convert', fixture('tiny_self_forcing.pt'), out, '--latent-size', '4'], /--latent-size must be HxW/],
    [['convert', fixture('tiny_self_forcing.pt'), out, '--heads', '0'], /--heads must be an integer >= 1/],
    [['convert', path.join(dir, 'missing.pt'), out], /ENOENT|no such file/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    t.not(r.code, 0, args.join(' '));
    t.match(r.err, message, args.join(' '));
  }
  t.notOk(existsSync(out));
  const plain = await run(['convert', fixture('tiny_self_forcing.pt'), out, '--no-strip-prefix', '--quiet']);
  t.equal(plain.code, 0, plain.err);
  t.match(JSON.parse(plain.out), { prefix: '', config: null, note: /not a Wan-named DiT/ });
});
