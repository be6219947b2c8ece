// The CUDA W8A8 layer at the DiT shapes against PyTorch on the same GPU (SPEC section 3: >= 1.5x
// bf16 matmul). Ours: fp32 in, dynamic per-token int8 activations (asymmetric), int8 weights per
// channel, fp32 out with bias; "GPU ms" is the activation quantization + GEMM + epilogue timed with
// CUDA events over back-to-back runs (timeForward), as PyTorch is timed by bench-gpu/gemm.py (run
// here as a child process when python3 with torch is present); "call ms" is the best wall time of
// one forward() on device tensors, Promise and scratch allocation included.
// Run on the GPU machine: node bench-gpu/gemm.mjs [--reps 50] [--kernel tensorCores|simple] [--no-torch]
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backends, DeviceQuantizedLinear, DeviceTensor, rng, Tensor } from '../test-gpu/qarvd.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const reps = Number(arg('reps', 50));
const kernel = arg('kernel', 'tensorCores');
const SHAPES = [768, 4680].flatMap((m) => [[1536, 1536], [1536, 8960], [8960, 1536]].map(([k, n]) => [m, k, n]));

const { cuda } = backends();
if (cuda.devices.length === 0) {
  console.log(`no CUDA device (${cuda.status}): nothing to measure`);
  process.exit(0);
}
console.log(`device: ${cuda.devices[0].name} (cc ${cuda.devices[0].computeCapability}), kernel: ${kernel}, ${reps} runs per figure (best of 3)`);

let torch = null;
if (!process.argv.includes('--no-torch')) {
  try {
    const script = fileURLToPath(new URL('./gemm.py', import.meta.url));
    torch = JSON.parse(execFileSync('python3', [script, '--json', '--reps', String(reps)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
    if (torch.error) {
      console.log(`PyTorch: ${torch.error}`);
      torch = null;
    } else {
      console.log(`PyTorch ${torch.torch} (CUDA ${torch.cuda}) on ${torch.device}`);
    }
  } catch (e) {
    console.log(`PyTorch not measured: ${e.message.split('\n')[0]}`);
  }
}

function randomFloat(shape, seed) {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() - 0.5) * 4;
  return new Tensor('float32', shape, data);
}

const rows = [];
for (const [m, k, n] of SHAPES) {
  const r = rng(m + k + n);
  const q = new Tensor('int8', [n, k], Int8Array.from({ length: n * k }, () => Math.floor(r() * 256) - 128));
  const layer = await DeviceQuantizedLinear.fromQuantized(q, {
    scale: new Float32Array(n).fill(0.01),
    bias: new Float32Array(n).fill(0.1),
  });
  const x = await DeviceTensor.fromHost(randomFloat([m, k], m * k));
  const out = await DeviceTensor.empty('float32', [m, n]);
  let gpu = Infinity;
  for (let i = 0; i < 3; i++) gpu = Math.min(gpu, await layer.timeForward(x, { repeat: reps, kernel }));
  let call = Infinity;
  await layer.forward(x, { out, kernel });
  for (let i = 0; i < Math.min(reps, 20); i++) {
    const t0 = process.hrtime.bigint();
    await layer.forward(x, { out, kernel });
    call = Math.min(call, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const t = torch?.rows.find((row) => row.m === m && row.k === k && row.n === n);
  rows.push({ m, k, n, gpu, call, bf16: t?.bf16_ms, intmm: t?.int_mm_ms });
  for (const d of [x, out, layer]) d.dispose();
}

const tops = (row, ms) => (ms ? ((2 * row.m * row.k * row.n) / (ms * 1e9)).toFixed(0) : '-');
const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : '-');
console.log('\n| M | K | N | ours GPU ms | TOPS | call ms | bf16 ms | TFLOPS | _int_mm ms | TOPS | bf16 / ours (target >= 1.5) | _int_mm / ours |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const row of rows) {
  console.log(
    `| ${row.m} | ${row.k} | ${row.n} | ${row.gpu.toFixed(4)} | ${tops(row, row.gpu)} | ${row.call.toFixed(4)} | ${row.bf16?.toFixed(4) ?? '-'} | ${tops(row, row.bf16)} | ${row.intmm?.toFixed(4) ?? '-'} | ${tops(row, row.intmm)} | ${ratio(row.bf16, row.gpu)} | ${ratio(row.intmm, row.gpu)} |`,
  );
}
console.log('\nOurs includes the per-token quantization of fp32 activations and the fp32 epilogue; bf16 is a bare');
console.log('bf16 x bf16 -> bf16 cuBLAS matmul and _int_mm a bare int8 x int8 -> int32 one (no quantization).');
