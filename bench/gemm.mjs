// GEMM benchmark: qarvd's FP32, W8A8, W4A8 and dual-scale linear layers against onnxruntime-node at
// the DiT shapes, side by side in one run, on 2 threads. The contenders of a shape run in
// interleaved rounds and each keeps its best time (the machine is shared: the best run is the least
// disturbed one, and interleaving exposes all of them to the same load); ratios compare those times.
//
//   npm run build && node bench/gemm.mjs            all shapes
//   node bench/gemm.mjs 768                          only M = 768
//   node bench/gemm.mjs 768 1536x8960                one shape (K x N)
import { DualScaleLinear, LinearF32, QuantizedLinear, Tensor, backends, measureInt8Peak, setIsa, setThreads } from '../dist/index.js';
import { oneNodeModel, ort, session } from './lib/ort.mjs';

const THREADS = 2;
const args = process.argv.slice(2);
const Ms = args.filter((a) => /^\d+$/.test(a)).map(Number);
const KNs = args.filter((a) => /^\d+x\d+$/.test(a)).map((a) => a.split('x').map(Number));
const M_LIST = Ms.length ? Ms : [768, 4680];
const KN_LIST = KNs.length ? KNs : [[1536, 1536], [1536, 8960], [8960, 1536]];

setThreads(THREADS);

let seed = 12345;
function random() {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 4294967296;
}
function randomFloats(n, scale = 1) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (random() * 2 - 1) * scale;
  return a;
}

/**
 * Best time in seconds of each contender (async functions), run in interleaved rounds (A, B, C, A,
 * B, C, ...) after one warm-up each, so that a burst of load from other processes hits all of them
 * alike; at least `rounds` rounds and `minSeconds` in all.
 */
async function bestOf(contenders, rounds, minSeconds) {
  for (const c of contenders) await c.run();
  const best = contenders.map(() => Infinity);
  const start = performance.now();
  for (let r = 0; r < rounds || (performance.now() - start) / 1000 < minSeconds; r++) {
    for (let i = 0; i < contenders.length; i++) {
      const t0 = performance.now();
      await contenders[i].run();
      best[i] = Math.min(best[i], (performance.now() - t0) / 1000);
    }
    if (r >= 4 * rounds) break;
  }
  return best;
}

function transpose(w, n, k) {
  const t = new Float32Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) t[j * n + i] = w[i * k + j];
  return t;
}

function pickOutliers(k, count) {
  const all = Array.from({ length: k }, (_, j) => j);
  for (let i = k - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, count).sort((a, b) => a - b);
}

function gather(x, m, k, cols) {
  const out = new Float32Array(m * cols.length);
  for (let i = 0; i < m; i++) for (let j = 0; j < cols.length; j++) out[i * cols.length + j] = x[i * k + cols[j]];
  return new Tensor('float32', [m, cols.length], out);
}

const rows = [];
function report(shape, name, seconds, ops, note = '') {
  const gops = ops / seconds / 1e9;
  rows.push({ shape, name, seconds, gops });
  console.log(`  ${name.padEnd(34)} ${(seconds * 1e3).toFixed(1).padStart(8)} ms ${gops.toFixed(1).padStart(8)} GOP/s  ${note}`);
  return seconds;
}
const ratio = (a, b) => `${(a / b).toFixed(2)}x`;

const cpu = backends().cpu;
console.log(`qarvd GEMM benchmark: ${THREADS} threads, best of several runs; ORT = onnxruntime-node ${ort.env.versions?.common ?? ''}`);
console.log(`paths: ${JSON.stringify(cpu.paths)} (best native: ${cpu.detectedIsa})`);
// The int8 peak of this CPU's best multiply instruction (AMX tdpbssd or AVX-512 vpdpbusd) on the
// same threads, so that each W8A8 rate reads as a fraction of what the hardware can do.
const peak = await measureInt8Peak({ seconds: 0.5 });
console.log(peak.isa === 'none' ? 'int8 peak: no AVX-512 VNNI or AMX on this CPU' : `int8 peak (${peak.isa}, ${THREADS} threads): ${(peak.opsPerSecond / 1e12).toFixed(2)} TOPS`);
// The W8A8 path below the best one, to show what the best one gains: AVX2 under VNNI, VNNI under AMX.
const vnniOrAmx = cpu.paths.gemmInt.startsWith('avx512vnni') || cpu.paths.gemmInt.startsWith('amx') || cpu.paths.gemmInt.startsWith('avxvnni');
const LOWER = cpu.paths.gemmInt.startsWith('amx') ? 'avx512vnni' : vnniOrAmx ? 'avx2' : null;
// Exactness: int8 weights of 127 and activations quantized to 255 make every vpmaddubsw pair sum
// 2 * 255 * 127 = 64770, beyond int16. A kernel built on u8 x s8 vpmaddubsw without a guard (ORT's
// AVX2 path) saturates there; ours must give the exact sum.
{
  const K = 64;
  const N = 8;
  const xs = new Float32Array(K).fill(1);
  const probe = await session(
    oneNodeModel({
      op: 'DynamicQuantizeMatMul',
      domain: 'com.microsoft',
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, K] }],
      initializers: [
        { name: 'b', dtype: 'int8', shape: [K, N], data: new Int8Array(K * N).fill(127) },
        { name: 's', dtype: 'float32', shape: [N], data: new Float32Array(N).fill(1) },
      ],
      nodeInputs: ['x', 'b', 's'],
      outputs: [{ name: 'y', dtype: 'float32', shape: [1, N] }],
    }),
    THREADS,
  );
  const ortY = (await probe.run({ x: new ort.Tensor('float32', xs, [1, K]) })).y.data[0];
  await probe.release();
  const ours = QuantizedLinear.fromQuantized(new Tensor('int8', [N, K], new Int8Array(N * K).fill(127)), {
    scale: new Float32Array(N).fill(1),
    activation: { type: 'dynamic', dtype: 'uint8' },
  });
  const oursY = (await ours.forward(new Tensor('float32', [1, K], xs))).data[0];
  console.log(`exactness probe (exact: ${K * 127}): qarvd W8A8 ${oursY}, ORT DynamicQuantizeMatMul ${ortY}`);
}

const summary = [];
for (const M of M_LIST) {
  for (const [K, N] of KN_LIST) {
    const shape = `M=${M} K=${K} N=${N}`;
    console.log(`\n${shape}`);
    const ops = 2 * M * K * N;
    const w = randomFloats(N * K, 0.05);
    const x = new Tensor('float32', [M, K], randomFloats(M * K));
    const xOrt = new ort.Tensor('float32', x.data, [M, K]);
    const weight = new Tensor('float32', [N, K], w);

    const contenders = [];
    const add = (name, run) => contenders.push({ name, run });

    // FP32: ours against ORT MatMul with the weight as a constant initializer ([K, N]).
    const f32 = LinearF32.fromFloat(weight);
    add('fp32 qarvd LinearF32', () => f32.forward(x));
    const wT = transpose(w, N, K);
    const sMatMul = await session(
      oneNodeModel({
        op: 'MatMul',
        inputs: [{ name: 'x', dtype: 'float32', shape: ['M', K] }],
        initializers: [{ name: 'w', dtype: 'float32', shape: [K, N], data: wT }],
        nodeInputs: ['x', 'w'],
        outputs: [{ name: 'y', dtype: 'float32', shape: ['M', N] }],
      }),
      THREADS,
    );
    add('fp32 ORT MatMul', () => sMatMul.run({ x: xOrt }));

    // W8A8 dynamic per token against ORT DynamicQuantizeMatMul (int8 weights, per-column scales).
    const w8 = QuantizedLinear.fromFloat(weight, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } });
    add('W8A8 qarvd (dynamic per token)', () => w8.forward(x));
    const q8 = w8.quantizedWeight();
    const bT = new Int8Array(K * N);
    const q8d = q8.q.data;
    for (let i = 0; i < N; i++) for (let j = 0; j < K; j++) bT[j * N + i] = q8d[i * K + j];
    const sDq = await session(
      oneNodeModel({
        op: 'DynamicQuantizeMatMul',
        domain: 'com.microsoft',
        inputs: [{ name: 'x', dtype: 'float32', shape: ['M', K] }],
        initializers: [
          { name: 'b', dtype: 'int8', shape: [K, N], data: bT },
          { name: 's', dtype: 'float32', shape: [N], data: q8.scale.data },
        ],
        nodeInputs: ['x', 'b', 's'],
        outputs: [{ name: 'y', dtype: 'float32', shape: ['M', N] }],
      }),
      THREADS,
    );
    add('W8A8 ORT DynamicQuantizeMatMul', () => sDq.run({ x: xOrt }));
    if (LOWER) {
      add(`W8A8 qarvd, ${LOWER} path`, async () => {
        setIsa(LOWER);
        try {
          return await w8.forward(x);
        } finally {
          setIsa('amx');
        }
      });
    }

    // W4A8 (int4 per group of 128) against ours W8A8 and ORT MatMulNBits (4 bits, block 128, accuracy level 4).
    const w4 = QuantizedLinear.fromFloat(weight, { weight: { dtype: 'int4', groupSize: 128 }, activation: { type: 'dynamic' } });
    add('W4A8 qarvd (int4, group 128)', () => w4.forward(x));
    const blocks = Math.ceil(K / 128);
    const q4 = w4.quantizedWeight();
    const nb = new Uint8Array(N * blocks * 64);
    const q4d = q4.q.data;
    for (let i = 0; i < N; i++)
      for (let j = 0; j < K; j++) {
        const flat = i * K + j;
        const v = ((flat % 2 === 0 ? q4d[flat >> 1] & 15 : q4d[flat >> 1] >> 4) ^ 8) & 15; // int4 -> uint4 with zero point 8
        nb[i * blocks * 64 + (j >> 1)] |= v << ((j & 1) * 4);
      }
    const sNb = await session(
      oneNodeModel({
        op: 'MatMulNBits',
        domain: 'com.microsoft',
        inputs: [{ name: 'x', dtype: 'float32', shape: ['M', K] }],
        initializers: [
          { name: 'b', dtype: 'uint8', shape: [N, blocks, 64], data: nb },
          { name: 's', dtype: 'float32', shape: [N * blocks], data: q4.scale.data },
        ],
        nodeInputs: ['x', 'b', 's'],
        attributes: { K, N, bits: 4, block_size: 128, accuracy_level: 4 },
        outputs: [{ name: 'y', dtype: 'float32', shape: ['M', N] }],
      }),
      THREADS,
    );
    add('W4 ORT MatMulNBits (blk 128, acc 4)', () => sNb.run({ x: xOrt }));

    // Dual-scale (int8 outliers + int8 normal columns, a per-token scale each) against single-scale
    // W8A8 and against two GEMMs plus an add (inputs pre-split outside the timing).
    for (const count of [32, 128]) {
      const outlierIdx = pickOutliers(K, count);
      const layer = DualScaleLinear.fromFloat(weight, { outlierIdx, outlier: { weight: { dtype: 'int8' } }, normal: { weight: { dtype: 'int8' } } });
      add(`dual-scale W8A8, ${count} outliers`, () => layer.forward(x));
      const isOut = new Uint8Array(K);
      for (const j of outlierIdx) isOut[j] = 1;
      const normalIdx = [];
      for (let j = 0; j < K; j++) if (!isOut[j]) normalIdx.push(j);
      const lo = QuantizedLinear.fromFloat(gather(w, N, K, outlierIdx), { weight: { dtype: 'int8' } });
      const ln = QuantizedLinear.fromFloat(gather(w, N, K, normalIdx), { weight: { dtype: 'int8' } });
      const xo = gather(x.data, M, K, outlierIdx);
      const xn = gather(x.data, M, K, normalIdx);
      add(`two W8A8 GEMMs + add, ${count} outliers`, async () => {
        const a = await lo.forward(xo);
        const b = await ln.forward(xn);
        const y = a.data;
        const z = b.data;
        for (let i = 0; i < y.length; i++) y[i] += z[i];
      });
    }

    const times = await bestOf(contenders, ops > 2e10 ? 3 : 8, ops > 2e10 ? 25 : 15);
    const t = {};
    contenders.forEach((c, i) => {
      t[c.name] = times[i];
      report(shape, c.name, times[i], ops);
    });
    await Promise.all([sMatMul.release(), sDq.release(), sNb.release()]);
    const tF32 = t['fp32 qarvd LinearF32'];
    const tOrtF32 = t['fp32 ORT MatMul'];
    const tW8 = t['W8A8 qarvd (dynamic per token)'];
    const tOrtDq = t['W8A8 ORT DynamicQuantizeMatMul'];
    const tW4 = t['W4A8 qarvd (int4, group 128)'];
    const tOrtNb = t['W4 ORT MatMulNBits (blk 128, acc 4)'];
    const dual = {};
    for (const count of [32, 128]) dual[count] = { tDual: t[`dual-scale W8A8, ${count} outliers`], tTwo: t[`two W8A8 GEMMs + add, ${count} outliers`] };

    const line = {
      shape,
      'fp32 ours/ORT MatMul (>= 0.9)': ratio(tOrtF32, tF32),
      'W8A8 ours/ORT DQMatMul (>= 3)': ratio(tOrtDq, tW8),
      'W8A8 vs our fp32 (>= 6)': ratio(tF32, tW8),
      ...(LOWER ? { [`W8A8 vs our ${LOWER} (>= 2)`]: ratio(t[`W8A8 qarvd, ${LOWER} path`], tW8) } : {}),
      ...(peak.opsPerSecond > 0 ? { [`W8A8 of ${peak.isa} peak`]: `${((100 * ops) / tW8 / peak.opsPerSecond).toFixed(0)}%` } : {}),
      'W4A8/W8A8 speed (>= 0.9)': ratio(tW8, tW4),
      'W4A8 ours/ORT MatMulNBits': ratio(tOrtNb, tW4),
      'dual32 time / W8A8 (<= 1.1)': ratio(dual[32].tDual, tW8),
      'dual128 time / W8A8 (<= 1.1)': ratio(dual[128].tDual, tW8),
      'dual32 / two GEMMs+add': ratio(dual[32].tDual, dual[32].tTwo),
      'dual128 / two GEMMs+add': ratio(dual[128].tDual, dual[128].tTwo),
    };
    console.log(`  weight bytes: fp32 ${f32.weightBytes}, W8A8 ${w8.weightBytes}, W4A8 ${w4.weightBytes} (W4/W8 = ${(w4.weightBytes / w8.weightBytes).toFixed(3)})`);
    for (const [k, v] of Object.entries(line)) if (k !== 'shape') console.log(`  ${k.padEnd(34)} ${v}`);
    summary.push(line);
  }
}

// A few rows (decode-like calls, the last tokens of a chunk): W8A8 against ORT at M = 1 to 16.
if (!Ms.length || Ms.some((m) => m <= 16)) {
  console.log('\nA few rows, K=1536 N=1536: W8A8 dynamic per token');
  const K = 1536;
  const N = 1536;
  const w = randomFloats(N * K, 0.05);
  const w8 = QuantizedLinear.fromFloat(new Tensor('float32', [N, K], w), { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } });
  const q8 = w8.quantizedWeight();
  const bT = new Int8Array(K * N);
  for (let i = 0; i < N; i++) for (let j = 0; j < K; j++) bT[j * N + i] = q8.q.data[i * K + j];
  const sDq = await session(
    oneNodeModel({
      op: 'DynamicQuantizeMatMul',
      domain: 'com.microsoft',
      inputs: [{ name: 'x', dtype: 'float32', shape: ['M', K] }],
      initializers: [
        { name: 'b', dtype: 'int8', shape: [K, N], data: bT },
        { name: 's', dtype: 'float32', shape: [N], data: q8.scale.data },
      ],
      nodeInputs: ['x', 'b', 's'],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['M', N] }],
    }),
    THREADS,
  );
  for (const M of [1, 2, 4, 8, 16]) {
    const x = new Tensor('float32', [M, K], randomFloats(M * K));
    const xOrt = new ort.Tensor('float32', x.data, [M, K]);
    const [ours, theirs] = await bestOf([{ run: () => w8.forward(x) }, { run: () => sDq.run({ x: xOrt }) }], 200, 1);
    console.log(`  M=${String(M).padEnd(3)} qarvd ${(ours * 1e6).toFixed(0).padStart(6)} us   ORT ${(theirs * 1e6).toFixed(0).padStart(6)} us   ours/ORT speed ${ratio(theirs, ours)} (>= 1)`);
  }
  await sDq.release();
}

console.log('\nSummary (speed ratios, > 1: qarvd faster; "dual" rows are time ratios, < 1: dual faster)');
const keys = Object.keys(summary[0] ?? {}).filter((k) => k !== 'shape');
console.log(['ratio'.padEnd(34), ...summary.map((s) => s.shape.padStart(22))].join(''));
for (const k of keys) console.log([k.padEnd(34), ...summary.map((s) => s[k].padStart(22))].join(''));
