// Quantize family throughput, side by side in one run: dynamic per-token int8 quantize of fp32
// activations at DiT sizes against onnxruntime-node's DynamicQuantizeLinear and against memcpy,
// plus static quantize, dequantize and int4 packing.
//
//   npm run build:ts && node bench/quantize.mjs        (or: npm run bench -- quantize)
//
// GB/s counts the bytes of the float tensor (the input of a quantize, the output of a dequantize,
// the bytes copied by memcpy). Times are the best of many runs (the machine is shared; the best run
// is the least disturbed one). ONNX Runtime's DynamicQuantizeLinear is per tensor, uint8, asymmetric
// (two passes: range, then quantize); our per-token int8 rows compute one scale per row.
import { Worker } from 'node:worker_threads';
import { backends, dequantizeSync, quantize, quantizeSync, setThreads, Tensor } from '../dist/index.js';
import { oneNodeModel, ort, session } from './lib/ort.mjs';

const SHAPES = [
  [4680, 1536],
  [768, 8960],
];
const THREADS = backends().cpu.threads;
const perToken = { type: 'perToken' };

async function best(fn, { warmup = 3, iterations = 40, minSeconds = 0.6 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  let min = Infinity;
  const start = performance.now();
  for (let i = 0; i < iterations || performance.now() - start < minSeconds * 1000; i++) {
    const t0 = performance.now();
    await fn();
    min = Math.min(min, performance.now() - t0);
    if (i >= 400) break;
  }
  return min / 1000;
}

// memcpy on `parts` threads: workers copy their slice of a SharedArrayBuffer when signalled.
async function memcpySeconds(bytes, parts) {
  const src = new Float32Array(new SharedArrayBuffer(bytes));
  const dst = new Float32Array(new SharedArrayBuffer(bytes));
  src.fill(1.5);
  if (parts === 1) return best(() => dst.set(src));
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const code = `
    const { workerData } = require('node:worker_threads');
    const { src, dst, ctl, part, parts } = workerData;
    const b = Math.floor((src.length * part) / parts), e = Math.floor((src.length * (part + 1)) / parts);
    const s = src.subarray(b, e), d = dst.subarray(b, e);
    for (let gen = 0; ; ) {
      Atomics.wait(ctl, 0, gen);
      gen = Atomics.load(ctl, 0);
      if (gen < 0) break;
      d.set(s);
      Atomics.add(ctl, 1, 1);
      Atomics.notify(ctl, 1);
    }`;
  const workers = Array.from({ length: parts }, (_, part) => new Worker(code, { eval: true, workerData: { src, dst, ctl, part, parts } }));
  await new Promise((r) => setTimeout(r, 300));
  const once = () => {
    Atomics.store(ctl, 1, 0);
    Atomics.add(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    for (let done; (done = Atomics.load(ctl, 1)) < parts; ) Atomics.wait(ctl, 1, done, 100);
  };
  const seconds = await best(once);
  Atomics.store(ctl, 0, -1);
  Atomics.notify(ctl, 0);
  await Promise.all(workers.map((w) => w.terminate()));
  return seconds;
}

async function ortSession(rows, cols, threads) {
  const model = oneNodeModel({
    op: 'DynamicQuantizeLinear',
    inputs: [{ name: 'x', dtype: 'float32', shape: [rows, cols] }],
    nodeInputs: ['x'],
    outputs: [
      { name: 'y', dtype: 'uint8', shape: [rows, cols] },
      { name: 'y_scale', dtype: 'float32', shape: [] },
      { name: 'y_zero_point', dtype: 'uint8', shape: [] },
    ],
  });
  return session(model, threads);
}

function activations(rows, cols) {
  const x = new Float32Array(rows * cols);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = ((s >>> 8) / 16777216 - 0.5) * (1 + (i % cols === 7 ? 40 : 0));
  }
  return x;
}

function withThreads(n, fn) {
  return async () => {
    setThreads(n);
    try {
      return await fn();
    } finally {
      setThreads(THREADS);
    }
  };
}

const rowsOut = [];
function row(shape, op, threads, seconds, bytes, refs) {
  const gbs = bytes / seconds / 1e9;
  rowsOut.push({
    shape: shape.join('x'),
    op,
    threads,
    ms: (seconds * 1000).toFixed(3),
    'GB/s': gbs.toFixed(2),
    'x ORT': refs.ort ? (refs.ort / seconds).toFixed(2) : '',
    '% memcpy 1T': refs.mc1 ? ((refs.mc1 / seconds) * 100).toFixed(0) : '',
    [`% memcpy ${THREADS}T`]: refs.mcN ? ((refs.mcN / seconds) * 100).toFixed(0) : '',
  });
}

console.log(`qarvd quantize benchmark: ${backends().cpu.isa}, ${THREADS} threads, onnxruntime-node ${ort.env.versions?.common ?? ''}`);
for (const [rows, cols] of SHAPES) {
  const shape = [rows, cols];
  const n = rows * cols;
  const bytes = n * 4;
  const xf = activations(rows, cols);
  const x = new Tensor('float32', shape, xf);

  const mc1 = await memcpySeconds(bytes, 1);
  const mcN = THREADS > 1 ? await memcpySeconds(bytes, THREADS) : mc1;
  const feeds = { x: new ort.Tensor('float32', xf, shape) };
  const ortN = await ortSession(rows, cols, THREADS);
  const ortTime = await best(() => ortN.run(feeds));
  const ort1 = await ortSession(rows, cols, 1);
  const ortTime1 = await best(() => ort1.run(feeds));
  const refs = { ort: ortTime, mc1, mcN };
  row(shape, 'memcpy (TypedArray.set)', 1, mc1, bytes, refs);
  if (THREADS > 1) row(shape, `memcpy (${THREADS} worker threads)`, THREADS, mcN, bytes, refs);
  row(shape, 'ORT DynamicQuantizeLinear (per tensor, uint8)', THREADS, ortTime, bytes, refs);
  row(shape, 'ORT DynamicQuantizeLinear (per tensor, uint8)', 1, ortTime1, bytes, { ...refs, ort: ortTime1 });

  const out8 = Tensor.zeros('int8', shape);
  const outU8 = Tensor.zeros('uint8', shape);
  const dyn = { dtype: 'int8', granularity: perToken, out: out8 };
  row(shape, 'qarvd per-token int8 sym, dynamic (quantizeSync, out reused)', THREADS, await best(() => quantizeSync(x, dyn)), bytes, refs);
  row(shape, 'qarvd per-token int8 sym, dynamic (quantize async, out reused)', THREADS, await best(() => quantize(x, dyn)), bytes, refs);
  row(shape, 'qarvd per-token int8 sym, dynamic (quantizeSync, new output)', THREADS, await best(() => quantizeSync(x, { dtype: 'int8', granularity: perToken })), bytes, refs);
  row(shape, 'qarvd per-token int8 sym, dynamic (quantizeSync, out reused)', 1, await best(withThreads(1, () => quantizeSync(x, dyn))), bytes, { ...refs, ort: ortTime1 });
  row(shape, 'qarvd per-token uint8 asym, dynamic (out reused)', THREADS, await best(() => quantizeSync(x, { dtype: 'uint8', granularity: perToken, out: outU8 })), bytes, refs);
  row(shape, 'qarvd per-tensor uint8 asym, dynamic (= ORT op; out reused)', THREADS, await best(() => quantizeSync(x, { dtype: 'uint8', out: outU8 })), bytes, refs);
  row(shape, 'qarvd per-tensor uint8 asym, dynamic (= ORT op; out reused)', 1, await best(withThreads(1, () => quantizeSync(x, { dtype: 'uint8', out: outU8 }))), bytes, { ...refs, ort: ortTime1 });

  const x16 = new Tensor('bfloat16', shape, Uint16Array.from(new Uint32Array(xf.buffer), (u) => u >>> 16));
  row(shape, 'qarvd per-token int8 sym, dynamic, bf16 input (2-byte GB/s)', THREADS, await best(() => quantizeSync(x16, dyn)), n * 2, {});

  const colScale = new Float32Array(cols).fill(0.01);
  row(shape, 'qarvd static int8, per channel (last axis)', THREADS, await best(() => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perChannel', axis: 1 }, scale: colScale, out: out8 })), bytes, refs);
  const groups = { type: 'perGroup', axis: 1, groupSize: 128 };
  const g4 = quantizeSync(x, { dtype: 'int4', granularity: groups });
  const out4 = Tensor.zeros('int4', shape);
  row(shape, 'qarvd static int4 packing, per group 128', THREADS, await best(() => quantizeSync(x, { dtype: 'int4', granularity: groups, scale: g4.scale, out: out4 })), bytes, refs);
  const q8 = quantizeSync(x, { dtype: 'int8', granularity: perToken });
  const back = Tensor.zeros('float32', shape);
  row(shape, 'qarvd dequantize int8 per token -> fp32 (output GB/s)', THREADS, await best(() => dequantizeSync(q8, { out: back })), bytes, { mc1, mcN });
  row(shape, 'qarvd dequantize int4 per group -> fp32 (output GB/s)', THREADS, await best(() => dequantizeSync(g4, { out: back })), bytes, { mc1, mcN });
}
console.table(rowsOut);
console.log('x ORT: ORT DynamicQuantizeLinear time / ours at the same thread count (higher is better).');
console.log('% memcpy: memcpy time of the same byte count / ours (over 100 means faster than copying the input).');
