// Child of test/reliability/async.test.ts: ends worker threads while they have async native calls in
// flight (quantize, a quantized layer's forward, a model pass), by worker.terminate() from here or
// process.exit() in the worker, many times; then checks that this process still works. Prints
// {rounds, survived: true, check} as JSON.
//   node worker-exit.mjs <index.js> <rounds>
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { loadChildLibrary } from './library.mjs';

const { lib, index, args: [roundsArg = '6'] } = await loadChildLibrary();
const rounds = Number(roundsArg);

const workerSource = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const lib = await import(workerData.url);
  const { Tensor } = lib;
  const f32 = (shape) => new Tensor('float32', shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i)));
  const w = f32([512, 512]);
  const layer = lib.QuantizedLinear.fromFloat(w, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } });
  const f = lib.LinearF32.fromFloat(w);
  const x = f32([256, 512]);
  const big = f32([1 << 20]);
  const tiny = { ...lib.EMBEDDED_DEFAULT, name: 'tiny', inChannels: 4, outChannels: 4, dim: 24, ffnDim: 40, heads: 2, layers: 1, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 4, framesPerChunk: 1, chunks: 2 };
  const model = lib.CausalDit.synthetic(tiny, { seed: 1 });
  const context = await model.embedContext(lib.encodePrompt('p', tiny));
  const latents = f32([1, 4, 4, 4]);
  const inFlight = [];
  for (let i = 0; i < 8; i++) {
    inFlight.push(layer.forward(x), f.forward(x), lib.quantize(big, { dtype: 'int8' }), lib.layerNorm(x), model.forward(latents, { timestep: 500, context, state: model.createState() }));
  }
  parentPort.postMessage('started');
  if (workerData.mode === 'exit') process.exit(3);
  await Promise.allSettled(inFlight);
  parentPort.postMessage('done');
})();
`;

let ended = 0;
for (let r = 0; r < rounds; r++) {
  const mode = r % 2 === 0 ? 'terminate' : 'exit';
  const worker = new Worker(workerSource, { eval: true, workerData: { url: pathToFileURL(index).href, mode } });
  await new Promise((resolve, reject) => {
    worker.on('message', (m) => {
      if (m === 'started' && mode === 'terminate') worker.terminate();
    });
    worker.on('error', reject);
    worker.on('exit', () => {
      ended++;
      resolve();
    });
  });
}
// This process still computes correctly.
const x = new lib.Tensor('float32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
const y = await lib.matmul(x, new lib.Tensor('float32', [1, 3], new Float32Array([1, 1, 1])));
process.stdout.write(JSON.stringify({ rounds, ended, survived: true, check: Array.from(y.data) }) + '\n');
