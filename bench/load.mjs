// Peak memory of loading a Wan2.1-T2V-1.3B-sized bf16 checkpoint (Wan's names, no configuration, as
// diffusion_pytorch_model.safetensors ships): loadModel reads it tensor by tensor and keeps the bf16
// tensors as the model's float source (widened only to be packed), against the whole file read,
// decoded, every tensor widened, then the model built. Each runs in its own process (peak RSS).
// Writes a 2.6 GB file to the temporary folder (removed after); QARVD_BENCH_LOAD_LAYERS=n for fewer blocks.
import { spawnSync } from 'node:child_process';
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SELF_FORCING_1_3B, expectedShapes, writeSafetensorsStream } from '../dist/index.js';

const mode = process.argv[2];
if (mode) {
  // A child: load the file one way, report the peak resident memory and what the result holds.
  const q = await import('../dist/index.js');
  const file = process.argv[3];
  let held = 0;
  if (mode === 'loadModel') {
    const model = await q.loadModel(file);
    held = model.weightBytes;
  } else {
    // What loadModel did before: the whole file, decoded (copied), every tensor widened, then the model.
    const { readFile } = await import('node:fs/promises');
    const { tensors, metadata } = q.decodeSafetensors(new Uint8Array(await readFile(file)), file);
    const shapes = new Map(Object.entries(tensors).map(([n, t]) => [n, t.shape]));
    const config = q.modelFileConfig(file, metadata, shapes);
    const wide = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, q.toFloat32(t)]));
    held = q.CausalDit.fromTensors(config, wide).weightBytes;
  }
  console.log(JSON.stringify({ peakRss: process.resourceUsage().maxRSS * 1024, held }));
  process.exit(0);
}

const layers = Number(process.env.QARVD_BENCH_LOAD_LAYERS ?? SELF_FORCING_1_3B.layers);
const config = { ...SELF_FORCING_1_3B, layers };
const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-bench-load-'));
const file = path.join(dir, 'diffusion_pytorch_model.safetensors');
try {
  // Small finite bf16 values (|x| < 0.05), tiled from a table: weights that load like real ones.
  const table = Uint16Array.from({ length: 65536 }, (_, i) => (new Uint32Array(Float32Array.of(Math.sin(i * 12.9898) * 0.05).buffer)[0] >>> 16));
  const entries = Object.entries(expectedShapes(config)).map(([name, shape], k) => ({
    name, dtype: 'bfloat16', shape,
    bytes: async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = table[(i * 40503 + k) & 65535];
      return new Uint8Array(out.buffer);
    },
  }));
  await writeSafetensorsStream(file, entries, { format: 'pt' });
  const fileBytes = entries.reduce((s, e) => s + e.shape.reduce((a, b) => a * b, 1) * 2, 0);
  const gib = (b) => (b / 2 ** 30).toFixed(2);
  console.log(`Wan-named bf16 file: ${layers} blocks of dim ${config.dim}, ${gib(fileBytes)} GiB`);
  console.log('| load | peak RSS GiB | packed weights GiB | peak / file |');
  console.log('| --- | --- | --- | --- |');
  for (const m of ['loadModel', 'wholeFile']) {
    const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, m, file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    const { peakRss, held } = JSON.parse(r.stdout);
    const label = m === 'loadModel' ? 'loadModel: tensor by tensor, bf16 source kept' : 'whole file, decoded, widened, then the model';
    console.log(`| ${label} | ${gib(peakRss)} | ${gib(held)} | ${(peakRss / fileBytes).toFixed(2)}x |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
