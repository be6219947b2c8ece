// The model's attention precision and KV cache storage: validated where they enter (generate,
// forward, createState), float32 by default and bit for bit the same when asked for explicitly, the
// caches' bytes, and the bf16/int8 options changing the video only a little (the kernels themselves are
// tested against references in ops/attention-precision.test.ts).
import t from 'tap';
import { CausalDit, EMBEDDED_TESTBED, encodePrompt, generate, Rng, Tensor, videoMetrics } from '../../lib/index.js';
import type { DitConfig } from '../../lib/model/config.js';

const small: DitConfig = { ...EMBEDDED_TESTBED, name: 'small', chunks: 3, layers: 2 };
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

t.test('the native pass gives the op-by-op floats and caches for every precision and storage', async (t) => {
  const tiny: DitConfig = { ...EMBEDDED_TESTBED, name: 'tiny', inChannels: 4, outChannels: 4, dim: 64, ffnDim: 48, heads: 2, layers: 2, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 6, framesPerChunk: 2, chunks: 3 };
  const m = CausalDit.synthetic(tiny, { seed: 4 });
  const ctx = await m.embedContext(encodePrompt('a test prompt', tiny));
  const run = async (execution: 'native' | 'ops', attention: 'fp32' | 'bf16' | 'int8', kvCache: 'fp32' | 'bf16' | 'int8') => {
    const state = m.createState(undefined, { kvCache });
    const rng = new Rng(7);
    const outs: Float32Array[] = [];
    for (let chunk = 0; chunk < 3; chunk++) {
      for (const [timestep, commit] of [[1000, false], [500, false], [0, true]] as const) {
        const x = new Tensor('float32', [2, 4, 4, 6], rng.fillNormal(new Float32Array(2 * 4 * 4 * 6)));
        outs.push((await m.forward(x, { timestep, context: ctx, state, commit, execution, attention })).data);
      }
    }
    return { outs, state };
  };
  const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((v, i) => Object.is(v, b[i]));
  for (const [attention, kvCache] of [['bf16', 'fp32'], ['int8', 'fp32'], ['fp32', 'bf16'], ['fp32', 'int8'], ['int8', 'int8'], ['bf16', 'bf16']] as const) {
    const ops = await run('ops', attention, kvCache);
    const nat = await run('native', attention, kvCache);
    const tag = `${attention} attention, ${kvCache} cache`;
    t.ok(nat.outs.every((o, i) => same(o, ops.outs[i])), `${tag}: every pass identical`);
    for (let b = 0; b < tiny.layers; b++) {
      const [cn, co] = [nat.state.caches[b], ops.state.caches[b]];
      const ok = same(cn.keys.data, co.keys.data) && same(cn.values.data, co.values.data) &&
        (kvCache !== 'int8' || (same(cn.keyScales!.data, co.keyScales!.data) && same(cn.valueScales!.data, co.valueScales!.data) && same(cn.keySmoothing!.data, co.keySmoothing!.data)));
      t.ok(ok, `${tag}, block ${b}: the same cache`);
    }
  }
});
