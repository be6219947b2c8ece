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

// The best time of `fn` over a short burst of runs.
async function burst(fn, { iterations = 12, minSeconds = 0.08 } = {}) {
  await fn();
  let min = Infinity;
  const start = performance.now();
  for (let i = 0; i < iterations || performance.now() - start < minSeconds * 1000; i++) {
    const t0 = performance.now();
    await fn();
    min = Math.min(min, performance.now() - t0);
    if (i >= 200) break;
  }
  return min / 1000;
}

// Runs every case in turn, ROUNDS times, keeping each case's best: other work on the machine then
// disturbs all cases alike instead of whichever happened to run at the wrong moment.
const ROUNDS = Number(process.env.QARVD_BENCH_ROUNDS ?? 6);
async function measure(cases) {
  const bestOf = new Map(cases.map((c) => [c, Infinity]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) bestOf.set(c, Math.min(bestOf.get(c), await burst(c.fn)));
  }
  return bestOf;
}

// memcpy on `parts` threads: workers copy their slice of a SharedArrayBuffer when signalled.
// Returns { copy, close }: copy() runs one copy on all parts and waits for them.
async function memcpyWorkers(bytes, parts) {
  const src = new Float32Array(new SharedArrayBuffer(bytes));
  const dst = new Float32Array(new SharedArrayBuffer(bytes));
  src.fill(1.5);
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
  return {
    copy() {
      Atomics.store(ctl, 1, 0);
      Atomics.add(ctl, 0, 1);
      Atomics.notify(ctl, 0);
      for (let done; (done = Atomics.load(ctl, 1)) < parts; ) Atomics.wait(ctl, 1, done, 100);
    },
    async close() {
      Atomics.store(ctl, 0, -1);
      Atomics.notify(ctl, 0);
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
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

const table = [];
function row(shape, c, seconds, refs) {
  table.push({
    shape: shape.join('x'),
    op: c.label,
    threads: c.threads,
    ms: (seconds * 1000).toFixed(3),
    'GB/s': (c.bytes / seconds / 1e9).toFixed(2),
    'x ORT': c.vsOrt ? (refs[c.vsOrt] / seconds).toFixed(2) : '',
    '% memcpy 1T': c.vsCopy ? ((refs.mc1 / seconds) * 100).toFixed(0) : '',
    [`% memcpy ${THREADS}T`]: c.vsCopy ? ((refs.mcN / seconds) * 100).toFixed(0) : '',
  });
}

console.log(`qarvd quantize benchmark: ${backends().cpu.isa}, ${THREADS} threads, best of ${ROUNDS} interleaved rounds`);
for (const [rows, cols] of SHAPES) {
  const shape = [rows, cols];
  const n = rows * cols;
  const bytes = n * 4;
  const xf = activations(rows, cols);
  const x = new Tensor('float32', shape, xf);
  const x16 = new Tensor('bfloat16', shape, Uint16Array.from(new Uint32Array(xf.buffer), (u) => u >>> 16));
  const feeds = { x: new ort.Tensor('float32', xf, shape) };
  const ortN = await ortSession(rows, cols, THREADS);
  const ort1 = await ortSession(rows, cols, 1);
  const copyN = await memcpyWorkers(bytes, THREADS);
  const src = new Float32Array(n).fill(1.5);
  const dst = new Float32Array(n);

  const out8 = Tensor.zeros('int8', shape);
  const outU8 = Tensor.zeros('uint8', shape);
  const out4 = Tensor.zeros('int4', shape);
  const back = Tensor.zeros('float32', shape);
  const dyn = { dtype: 'int8', granularity: perToken, out: out8 };
  const colScale = new Float32Array(cols).fill(0.01);
  const groups = { type: 'perGroup', axis: 1, groupSize: 128 };
  const g4 = quantizeSync(x, { dtype: 'int4', granularity: groups });
  const q8 = quantizeSync(x, { dtype: 'int8', granularity: perToken });
  const T = THREADS;
  const cases = [
    { id: 'mc1', label: 'memcpy (TypedArray.set)', threads: 1, bytes, fn: () => dst.set(src), vsCopy: true },
    { id: 'mcN', label: `memcpy (${T} worker threads, SharedArrayBuffer)`, threads: T, bytes, fn: () => copyN.copy(), vsCopy: true },
    { id: 'ortN', label: 'ORT DynamicQuantizeLinear (per tensor, uint8)', threads: T, bytes, fn: () => ortN.run(feeds), vsOrt: 'ortN', vsCopy: true },
    { id: 'ort1', label: 'ORT DynamicQuantizeLinear (per tensor, uint8)', threads: 1, bytes, fn: () => ort1.run(feeds), vsOrt: 'ort1', vsCopy: true },
    { label: 'qarvd per-token int8 sym, dynamic (quantizeSync, out reused)', threads: T, bytes, fn: () => quantizeSync(x, dyn), vsOrt: 'ortN', vsCopy: true },
    { label: 'qarvd per-token int8 sym, dynamic (quantize async, out reused)', threads: T, bytes, fn: () => quantize(x, dyn), vsOrt: 'ortN', vsCopy: true },
    { label: 'qarvd per-token int8 sym, dynamic (quantizeSync, new output)', threads: T, bytes, fn: () => quantizeSync(x, { dtype: 'int8', granularity: perToken }), vsOrt: 'ortN', vsCopy: true },
    { label: 'qarvd per-token int8 sym, dynamic (quantizeSync, out reused)', threads: 1, bytes, fn: withThreads(1, () => quantizeSync(x, dyn)), vsOrt: 'ort1', vsCopy: true },
    { label: 'qarvd per-token uint8 asym, dynamic (out reused)', threads: T, bytes, fn: () => quantizeSync(x, { dtype: 'uint8', granularity: perToken, out: outU8 }), vsOrt: 'ortN', vsCopy: true },
    { label: 'qarvd per-tensor uint8 asym, dynamic (the ORT op; out reused)', threads: T, bytes, fn: () => quantizeSync(x, { dtype: 'uint8', out: outU8 }), vsOrt: 'ortN', vsCopy: true },
    { label: 'qarvd per-tensor uint8 asym, dynamic (the ORT op; out reused)', threads: 1, bytes, fn: withThreads(1, () => quantizeSync(x, { dtype: 'uint8', out: outU8 })), vsOrt: 'ort1', vsCopy: true },
    { label: 'qarvd per-token int8 sym, dynamic, bf16 input (GB/s of bf16)', threads: T, bytes: n * 2, fn: () => quantizeSync(x16, dyn) },
    { label: 'qarvd static int8, per channel (last axis)', threads: T, bytes, fn: () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perChannel', axis: 1 }, scale: colScale, out: out8 }), vsCopy: true },
    { label: 'qarvd static int4 packing, per group of 128', threads: T, bytes, fn: () => quantizeSync(x, { dtype: 'int4', granularity: groups, scale: g4.scale, out: out4 }), vsCopy: true },
    { label: 'qarvd dequantize int8 per token -> fp32 (GB/s of fp32 out)', threads: T, bytes, fn: () => dequantizeSync(q8, { out: back }), vsCopy: true },
    { label: 'qarvd dequantize int4 per group -> fp32 (GB/s of fp32 out)', threads: T, bytes, fn: () => dequantizeSync(g4, { out: back }), vsCopy: true },
  ];
  const times = await measure(cases);
  const refs = Object.fromEntries(cases.filter((c) => c.id).map((c) => [c.id, times.get(c)]));
  for (const c of cases) row(shape, c, times.get(c), refs);
  await copyN.close();
}
console.table(table);
console.log('GB/s: bytes of the float tensor (quantize input, dequantize output, bytes copied) per second.');
console.log('x ORT: ORT DynamicQuantizeLinear time / ours at the same thread count (higher is better).');
console.log('% memcpy: time of a memcpy of the same byte count / ours (over 100: faster than copying the float tensor).');
