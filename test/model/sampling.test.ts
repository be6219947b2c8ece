// The sampler's schedule and arithmetic against Self-Forcing's, as torch computes them
// (test/fixtures/checkpoints/schedule.json, written by torch: FlowMatchScheduler(shift=5, sigma_min=0,
// extra_one_step=True).set_timesteps(1000) and the pipeline's warped denoising_step_list).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { EMBEDDED_TESTBED } from '../../lib/model/config.js';
import { CausalDit } from '../../lib/model/dit.js';
import { generate, modelTimestepOf, sigmaOf } from '../../lib/model/sampling.js';
import { Rng } from '../../lib/model/random.js';
import { Tensor } from '../../lib/tensor/tensor.js';

const torch = JSON.parse(readFileSync(new URL('../fixtures/checkpoints/schedule.json', import.meta.url), 'utf8')) as { sigmas: number[]; timesteps: number[]; denoising_step_list: number[] };
const ulps = (a: number, b: number) => Math.abs(new Int32Array(Float32Array.of(a).buffer)[0] - new Int32Array(Float32Array.of(b).buffer)[0]);

t.test('the shifted schedule in float32: the default steps exactly as torch, every step within 3 ulps', async (t) => {
  const steps = [1000, 750, 500, 250];
  t.same(steps.map((s) => modelTimestepOf(sigmaOf(s))), torch.denoising_step_list, 'what the model sees: 1000, 937.5, 833.333313, 625');
  t.equal(modelTimestepOf(sigmaOf(500)), 833.3333129882812);
  t.not(modelTimestepOf(sigmaOf(500)), 2500 / 3);
  for (const s of steps) t.equal(sigmaOf(s), torch.sigmas[1000 - s], `sigma of ${s}`);
  let worst = 0;
  for (let i = 0; i < 1000; i++) {
    worst = Math.max(worst, ulps(sigmaOf(1000 - i), torch.sigmas[i]), ulps(modelTimestepOf(sigmaOf(1000 - i)), torch.timesteps[i]));
  }
  t.ok(worst <= 3, `every integer timestep within ${worst} float32 ulps of torch's CPU linspace`);
  t.equal(sigmaOf(0), 0);
  t.equal(sigmaOf(1000, 3), 1);
});

t.test('generate runs the model at those timesteps and re-noises in float32 as add_noise does', async (t) => {
  // A stand-in model that predicts zero flow: x0 is the noisy input, so the video is the last re-noising.
  const c = { ...EMBEDDED_TESTBED, chunks: 1, latentHeight: 2, latentWidth: 2, inChannels: 2 };
  const seen: number[] = [];
  const model = {
    config: c,
    createState: () => ({}),
    embedContext: async (x: Tensor) => x,
    forward: async (x: Tensor<'float32'>, o: { timestep: number }) => {
      seen.push(o.timestep);
      return Tensor.zeros('float32', x.shape);
    },
  } as unknown as CausalDit;
  const video = await generate(model, { prompt: Tensor.zeros('float32', [1, c.textDim]), seed: 9 });
  t.same(seen, [...torch.denoising_step_list, 0]);
  // The reference: the same noise streams, float32 at every operation ((1 - sigma) x0 + sigma noise).
  const n = c.framesPerChunk * c.inChannels * 4;
  const x = new Rng(9).fillNormal(new Float32Array(n));
  const stepNoise = new Rng((9 ^ 0x5bd1e995) >>> 0);
  for (const s of [750, 500, 250]) {
    const sigma = Math.fround(torch.sigmas[1000 - s]);
    for (let j = 0; j < n; j++) x[j] = Math.fround(Math.fround(Math.fround(1 - sigma) * x[j]) + Math.fround(sigma * Math.fround(stepNoise.normal())));
  }
  t.same([...video.data], [...x]);
});
