// The model's attention precision and KV cache storage: validated where they enter (generate,
// forward, createState), float32 by default and bit for bit the same when asked for explicitly, the
// caches' bytes, and the bf16/int8 options changing the video only a little (the kernels themselves are
// tested against references in ops/attention-precision.test.ts).
import t from 'tap';
import { CausalDit, EMBEDDED_DEFAULT, encodePrompt, generate, Tensor, videoMetrics } from '../../lib/index.js';
import type { DitConfig } from '../../lib/model/config.js';

const small: DitConfig = { ...EMBEDDED_DEFAULT, name: 'small', chunks: 3, layers: 2 };
const model = CausalDit.synthetic(small, { seed: 0 });
const request = { prompt: 'a red fox running through snow', seed: 3 };

t.test('options are validated where they enter', async (t) => {
  await t.rejects(generate(model, { ...request, attention: 'fp16' as never }), { name: 'RangeError', message: /options\.attention/ });
  await t.rejects(generate(model, { ...request, kvCache: 'int4' as never }), { name: 'RangeError', message: /options\.kvCache/ });
  t.throws(() => model.createState(undefined, { kvCache: 'bfloat16' as never }), { name: 'RangeError', message: /options\.kvCache/ });
  t.throws(() => model.createState(undefined, 'int8' as never), { name: 'TypeError', message: /options/ });
  const state = model.createState();
  const ctx = await model.embedContext(encodePrompt('x', small));
  const x = Tensor.zeros('float32', [3, small.inChannels, small.latentHeight, small.latentWidth]);
  await t.rejects(model.forward(x, { timestep: 500, context: ctx, state, attention: 8 as never }), { name: 'RangeError', message: /options\.attention/ });
});

t.test('float32 is the default; the caches shrink with their storage', async (t) => {
  const plain = await generate(model, request);
  const explicit = await generate(model, { ...request, attention: 'fp32', kvCache: 'fp32' });
  t.same(Array.from(explicit.data), Array.from(plain.data), 'explicit fp32 = default, bit for bit');
  const bytes = (kvCache: 'fp32' | 'bf16' | 'int8') => model.createState(undefined, { kvCache }).cacheBytes;
  const headDim = small.dim / small.heads;
  t.equal(bytes('bf16') / bytes('fp32'), 0.5, 'bf16: half');
  t.ok(Math.abs(bytes('int8') / bytes('fp32') - (1 + 4 / headDim) / 4) < 1e-3, `int8: a quarter plus a scale per token and head (${(bytes('int8') / bytes('fp32')).toFixed(4)})`);
  for (const [attention, kvCache] of [['bf16', 'fp32'], ['int8', 'fp32'], ['fp32', 'bf16'], ['fp32', 'int8'], ['int8', 'int8']] as const) {
    const video = await generate(model, { ...request, attention, kvCache });
    const psnr = videoMetrics(video, plain).psnr;
    t.ok(video.data.some((v, i) => v !== plain.data[i]), `${attention} attention, ${kvCache} cache: takes effect`);
    t.ok(psnr > 45, `${attention} attention, ${kvCache} cache: close to float32 (${psnr.toFixed(1)} dB)`);
  }
});
