// GPU quantize / dequantize throughput against the measured device-to-device copy bandwidth
// (SPEC section 3: target >= 80%). One run prints every ratio. Each figure is the best of several
// timed calls through the public API (Promise per call), so it includes the call overhead (tens of
// microseconds); the tensors are large (2 GiB of float32) to keep that overhead to a few percent.
// Run on the GPU machine: node bench-gpu/quantize.mjs [--rows 65536] [--cols 8192] [--reps 10]
import { backends, DeviceTensor, quantizeOnDevice, dequantizeOnDevice } from '../test-gpu/qarvd.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const rows = arg('rows', 65536), cols = arg('cols', 8192), reps = arg('reps', 10);
const n = rows * cols;

const { cuda } = backends();
if (cuda.devices.length === 0) {
  console.log(`no CUDA device (${cuda.status}): nothing to measure`);
  process.exit(0);
}
console.log(`device: ${cuda.devices[0].name} (cc ${cuda.devices[0].computeCapability}), x: float32 [${rows}, ${cols}] (${(n * 4) / 2 ** 30} GiB)`);

async function best(fn) {
  await fn();
  let t = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    t = Math.min(t, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return t;
}

// Random-ish data (a ramp with sign changes) filled on the host once.
const { Tensor } = await import('../test-gpu/qarvd.mjs');
const host = new Float32Array(n);
for (let i = 0; i < n; i++) host[i] = ((i * 2654435761) % 1000003) / 1000003 - 0.5;
const x = await DeviceTensor.fromHost(new Tensor('float32', [rows, cols], host));
const copy = await DeviceTensor.empty('float32', [rows, cols]);

const tCopy = await best(() => copy.copyFrom(x));
const copyBw = (2 * n * 4) / tCopy;
console.log(`device copy: ${(copyBw / 1e9).toFixed(0)} GB/s (read + write, ${(tCopy * 1e3).toFixed(3)} ms)`);

const rowsOut = [];
async function measure(label, bytesMoved, fn) {
  const t = await best(fn);
  const bw = bytesMoved / t;
  rowsOut.push({ label, ms: t * 1e3, gbs: bw / 1e9, ratio: bw / copyBw });
}

const perToken = { type: 'perToken' };
for (const dtype of ['int8', 'int4']) {
  const qBytes = dtype === 'int8' ? n : n / 2;
  const out = await DeviceTensor.empty(dtype, [rows, cols]);
  for (const scheme of ['symmetric', 'asymmetric']) {
    await measure(`quantize ${dtype} per token (dynamic, fused) ${scheme}`, n * 4 + qBytes, async () => {
      const q = await quantizeOnDevice(x, { dtype, scheme, granularity: perToken, out });
      q.scale.dispose();
      q.zeroPoint.dispose();
    });
  }
  await measure(`quantize ${dtype} per tensor, given scale`, n * 4 + qBytes, async () => {
    const q = await quantizeOnDevice(x, { dtype, scale: 0.01, out });
    q.scale.dispose();
    q.zeroPoint.dispose();
  });
  await measure(`quantize ${dtype} per channel (axis 1), given scales`, n * 4 + qBytes, async () => {
    const q = await quantizeOnDevice(x, { dtype, scale: new Float32Array(cols).fill(0.01), granularity: { type: 'perChannel', axis: 1 }, out });
    q.scale.dispose();
    q.zeroPoint.dispose();
  });
  const q = await quantizeOnDevice(x, { dtype, granularity: { type: 'perChannel', axis: 1 } });
  await measure(`dequantize ${dtype} per channel`, qBytes + n * 4, () => dequantizeOnDevice(q, { out: copy }));
  q.dispose();
  out.dispose();
}

console.log('\n| op | ms | GB/s | of copy bandwidth (target >= 0.80) |\n| --- | --- | --- | --- |');
for (const r of rowsOut) console.log(`| ${r.label} | ${r.ms.toFixed(3)} | ${r.gbs.toFixed(0)} | ${r.ratio.toFixed(2)}${r.ratio >= 0.8 ? '' : ' (below target)'} |`);
console.log('\nEvery quantize call also allocates its scale and zero-point buffers and (dynamic) reads the scales back to check them;');
console.log('"given scales" calls upload them (at most cols floats): all included in the times above.');
x.dispose();
copy.dispose();
