import t, { type Test } from 'tap';
import { QuantizedLinear, Tensor, backends, setIsa, setThreads, type ActivationQuantOptions } from '../../lib/index.js';
import type { Scheme } from '../../lib/primitives/qparams.js';
import {
  type ActRef,
  firstOutside,
  isaPaths,
  useIsa,
  resetIsa,
  quantizeWeightRef,
  quantizedLinearRef,
  randInt,
  randTensor,
  rng,
} from './reference.js';

// Fast-path outputs come from exact int32 sums through a float32 epilogue: one rounding for each
// float(acc), scale product and fused multiply-add per group, and the bias. So
// |y - y64| <= (G + 4) * 2^-24 * (|b| + sum |terms|). The emulated path adds a float32 GEMM over
// dequantized values: (K + 8) * 2^-24 * (|b| + sum over k of |dequantized products|).
const U = 2 ** -24;

interface Case {
  m: number;
  n: number;
  k: number;
  dtype: 'int8' | 'int4';
  scheme: Scheme;
  groupSize: number;
  act: ActRef;
  bias: boolean;
}

function activationOption(act: ActRef): ActivationQuantOptions {
  return act.type === 'dynamic'
    ? { type: 'dynamic', dtype: act.dtype, scheme: act.scheme }
    : { type: 'static', dtype: act.dtype, scale: act.scale!, zeroPoint: act.zeroPoint! };
}

function randomAct(r: () => number): ActRef {
  const dtype = r() < 0.5 ? 'int8' : 'uint8';
  if (r() < 0.7) return { type: 'dynamic', dtype, scheme: r() < 0.5 ? 'symmetric' : 'asymmetric' };
  const zeroPoint = dtype === 'int8' ? randInt(r, -20, 20) : randInt(r, 100, 150);
  return { type: 'static', dtype, scheme: 'asymmetric', scale: 0.01 + r() * 0.05, zeroPoint };
}

function randomCase(r: () => number): Case {
  const k = randInt(r, 1, 400);
  return {
    m: r() < 0.2 ? randInt(r, 1, 3) : randInt(r, 1, 70),
    n: randInt(r, 1, 50),
    k,
    dtype: r() < 0.5 ? 'int8' : 'int4',
    scheme: r() < 0.5 ? 'symmetric' : 'asymmetric',
    groupSize: r() < 0.4 ? 0 : 16 * randInt(r, 1, 8),
    act: randomAct(r),
    bias: r() < 0.6,
  };
}

async function checkCase(t: Test, c: Case, seed: number, label: string): Promise<void> {
  const r = rng(seed);
  const x = randTensor(r, [c.m, c.k], 2);
  const w = randTensor(r, [c.n, c.k]);
  const bias = c.bias ? randTensor(r, [c.n]).data : null;
  const layer = QuantizedLinear.fromFloat(w, {
    ...(bias ? { bias } : {}),
    weight: { dtype: c.dtype, scheme: c.scheme, ...(c.groupSize ? { groupSize: c.groupSize } : {}) },
    activation: activationOption(c.act),
  });
  const cols = Array.from({ length: c.k }, (_, j) => j);
  const wr = quantizeWeightRef(w, cols, c.dtype, c.scheme, c.groupSize);
  const qw = layer.quantizedWeight();
  const unpacked = qw.q.dtype === 'int8' ? Array.from(qw.q.data as Int8Array) : unpackInt4(qw.q.data as Uint8Array, c.n * c.k);
  t.same(unpacked, Array.from(wr.q), `${label}: weights quantized as the reference`);
  t.same(Array.from(qw.scale.data), Array.from(wr.scale), `${label}: weight scales`);
  t.same(Array.from(qw.zeroPoint.data), Array.from(wr.zero), `${label}: weight zero points`);
  t.same(qw.scale.shape, c.groupSize ? [c.n, wr.groups] : [c.n]);

  const ref = quantizedLinearRef(x, c.n, [{ cols, act: c.act, q: wr.q, scale: wr.scale, zero: wr.zero, groupSize: c.groupSize }], bias);
  const dbg = layer.debugAccumulatorsSync(x);
  t.same(dbg.acc.shape, [c.m, c.n, ref.groups]);
  t.same(Array.from(dbg.actScale.data), ref.actScale, `${label}: activation scales`);
  t.same(Array.from(dbg.actZeroPoint.data), ref.actZero, `${label}: activation zero points`);
  const badAcc = firstOutside(dbg.acc.data, ref.acc, () => 0);
  t.equal(badAcc, -1, `${label}: int32 accumulators exact${badAcc >= 0 ? ` (element ${badAcc}: ${dbg.acc.data[badAcc]} vs ${ref.acc[badAcc]})` : ''}`);

  const y = await layer.forward(x);
  const bad = firstOutside(y.data, ref.y, (i) => (ref.groups + 4) * U * ref.mag[i]);
  t.equal(bad, -1, `${label}: fast output${bad >= 0 ? ` (element ${bad}: ${y.data[bad]} vs ${ref.y[bad]})` : ''}`);
  const ye = layer.forwardSync(x, { mode: 'emulated' });
  const badE = firstOutside(ye.data, ref.y, (i) => (c.k + 8) * U * ref.magK[i]);
  t.equal(badE, -1, `${label}: emulated output${badE >= 0 ? ` (element ${badE}: ${ye.data[badE]} vs ${ref.y[badE]})` : ''}`);
}

function unpackInt4(bytes: Uint8Array, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const nib = i % 2 === 0 ? bytes[i >> 1] & 15 : bytes[i >> 1] >> 4;
    out.push(nib >= 8 ? nib - 16 : nib);
  }
  return out;
}

t.test('random layers: exact integers, weights and outputs as the reference, on every ISA path', async (t) => {
  const r = rng(11);
  const cases: Case[] = [];
  for (let i = 0; i < 24; i++) cases.push(randomCase(r));
  // Fixed corners: odd K below one kernel step, K just past a group, the fused many-row path.
  cases.push({ m: 1, n: 1, k: 1, dtype: 'int4', scheme: 'asymmetric', groupSize: 16, act: { type: 'dynamic', dtype: 'uint8', scheme: 'asymmetric' }, bias: true });
  cases.push({ m: 5, n: 17, k: 129, dtype: 'int4', scheme: 'symmetric', groupSize: 128, act: { type: 'dynamic', dtype: 'int8', scheme: 'asymmetric' }, bias: false });
  cases.push({ m: 300, n: 33, k: 95, dtype: 'int8', scheme: 'asymmetric', groupSize: 0, act: { type: 'dynamic', dtype: 'int8', scheme: 'asymmetric' }, bias: true });
  cases.push({ m: 270, n: 20, k: 161, dtype: 'int4', scheme: 'asymmetric', groupSize: 32, act: { type: 'static', dtype: 'uint8', scheme: 'asymmetric', scale: 0.02, zeroPoint: 128 }, bias: true });
  for (const isa of isaPaths('gemmInt')) {
    useIsa(isa);
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i];
      await checkCase(t, c, 100 + i, `${isa.name} #${i} m=${c.m} n=${c.n} k=${c.k} ${c.dtype} ${c.scheme} g=${c.groupSize} ${c.act.type}/${c.act.dtype}/${c.act.scheme}`);
    }
  }
  resetIsa();
});

t.test('every ISA path gives the same floats, not only the same integers', (t) => {
  const r = rng(12);
  const w = randTensor(r, [37, 211]);
  const x = randTensor(r, [23, 211]);
  for (const weight of [{ dtype: 'int8' as const }, { dtype: 'int4' as const, groupSize: 64, scheme: 'asymmetric' as const }]) {
    const layer = QuantizedLinear.fromFloat(w, { weight, bias: randTensor(r, [37]) });
    const outs = isaPaths('gemmInt').map((isa) => {
      useIsa(isa);
      return Array.from(layer.forwardSync(x).data);
    });
    resetIsa();
    for (const o of outs.slice(1)) t.same(o, outs[0], `${weight.dtype}: paths agree bit for bit`);
  }
  t.end();
});

t.test('the emulated builds give what the native code gives where the CPU has the path', (t) => {
  // On a machine with AVX-512 VNNI (or AMX) this checks the emulation itself, which is what runs
  // these paths on machines without them.
  const r = rng(18);
  const w = randTensor(r, [70, 200]);
  const isas = (['avxvnni', 'avx512vnni', 'amx'] as const).filter((isa) => isaPaths('gemmInt').some((p) => p.isa === isa && !p.emulated));
  for (const weight of [{ dtype: 'int8' as const }, { dtype: 'int4' as const, groupSize: 32, scheme: 'asymmetric' as const }]) {
    const layer = QuantizedLinear.fromFloat(w, { weight, bias: randTensor(r, [70]) });
    for (const m of [3, 40]) {
      const x = randTensor(r, [m, 200]);
      for (const isa of isas) {
        setIsa(isa);
        const native = layer.forwardSync(x).data;
        setIsa(isa, { emulate: 'always' });
        t.same(layer.forwardSync(x).data, native, `${isa} ${weight.dtype} m=${m}: emulated == native`);
      }
      resetIsa();
    }
  }
  if (isas.length === 0) t.comment('no VNNI or AMX path on this CPU: the emulated builds are checked against the scalar reference only');
  t.end();
});

t.test('the row-block split does not change the result: any thread count agrees', (t) => {
  const r = rng(15);
  const w = randTensor(r, [40, 150]);
  const layer = QuantizedLinear.fromFloat(w, { weight: { dtype: 'int4', groupSize: 32 }, bias: randTensor(r, [40]) });
  const threads = backends().cpu.threads;
  for (const m of [3, 130, 300]) {
    const x = randTensor(r, [m, 150]);
    const all = layer.forwardSync(x);
    for (const n of [1, 7]) {
      setThreads(n);
      const other = layer.forwardSync(x);
      setThreads(threads);
      t.same(other.data, all.data, `m=${m}, ${n} threads`);
    }
  }
  t.end();
});

t.test('concurrent forward calls on one layer give the results of sequential ones', async (t) => {
  const r = rng(16);
  const w = randTensor(r, [64, 300]);
  const layer = QuantizedLinear.fromFloat(w, { weight: { dtype: 'int4', groupSize: 64 } });
  const xs = [5, 70, 260, 1].map((m) => randTensor(r, [m, 300]));
  const together = await Promise.all(xs.map((x) => layer.forward(x)));
  xs.forEach((x, i) => t.same(together[i].data, layer.forwardSync(x).data, `input ${i}`));
});

t.test('dynamic ranges skip NaN and infinities, which quantize to the zero point and saturate', (t) => {
  const r = rng(17);
  const k = 45;
  const n = 6;
  const w = randTensor(r, [n, k]);
  const x = randTensor(r, [3, k], 2);
  x.data[2] = NaN;
  x.data[17] = Infinity;
  x.data[40] = -Infinity;
  x.data[k + 9] = Infinity; // row 1
  x.data.fill(NaN, 2 * k, 3 * k); // row 2: no number at all
  x.data[2 * k + 4] = -Infinity;
  const cols = Array.from({ length: k }, (_, j) => j);
  for (const dtype of ['int8', 'int4'] as const) {
    for (const act of [
      { type: 'dynamic' as const, dtype: 'uint8' as const, scheme: 'asymmetric' as const },
      { type: 'dynamic' as const, dtype: 'int8' as const, scheme: 'symmetric' as const },
    ]) {
      const layer = QuantizedLinear.fromFloat(w, { weight: { dtype }, activation: activationOption(act) });
      const wr = quantizeWeightRef(w, cols, dtype, 'symmetric', 0);
      const ref = quantizedLinearRef(x, n, [{ cols, act, q: wr.q, scale: wr.scale, zero: wr.zero, groupSize: 0 }], null);
      for (const isa of isaPaths('gemmInt')) {
        useIsa(isa);
        const dbg = layer.debugAccumulatorsSync(x);
        t.same(Array.from(dbg.actScale.data), ref.actScale, `${isa.name} ${dtype} ${act.dtype}/${act.scheme}: scales from the finite values`);
        t.same(Array.from(dbg.acc.data), ref.acc, `${isa.name} ${dtype} ${act.dtype}/${act.scheme}: exact`);
        t.ok(layer.forwardSync(x).data.every((v) => Number.isFinite(v)), 'finite outputs');
      }
      resetIsa();
    }
  }
  t.end();
});

t.test('static activations: ties round half to even, values past the range saturate, NaN is the zero point', (t) => {
  const k = 40;
  const n = 3;
  const w = new Tensor('float32', [n, k], Float32Array.from({ length: n * k }, (_, i) => ((i * 7) % 11) / 11 - 0.5));
  const xs: number[] = [];
  for (let j = 0; j < k; j++) xs.push((j - 20) * 0.25); // multiples of scale/2: many ties
  xs[3] = 1e9;
  xs[4] = -1e9;
  xs[5] = NaN;
  const x = new Tensor('float32', [1, k], Float32Array.from(xs));
  for (const act of [
    { type: 'static' as const, dtype: 'int8' as const, scheme: 'asymmetric' as const, scale: 0.5, zeroPoint: 3 },
    { type: 'static' as const, dtype: 'uint8' as const, scheme: 'asymmetric' as const, scale: 0.5, zeroPoint: 250 },
    { type: 'dynamic' as const, dtype: 'uint8' as const, scheme: 'symmetric' as const },
  ]) {
    for (const dtype of ['int8', 'int4'] as const) {
      const layer = QuantizedLinear.fromFloat(w, { weight: { dtype }, activation: activationOption(act) });
      const cols = Array.from({ length: k }, (_, j) => j);
      const wr = quantizeWeightRef(w, cols, dtype, 'symmetric', 0);
      const ref = quantizedLinearRef(x, n, [{ cols, act, q: wr.q, scale: wr.scale, zero: wr.zero, groupSize: 0 }], null);
      for (const isa of isaPaths('gemmInt')) {
        useIsa(isa);
        const dbg = layer.debugAccumulatorsSync(x);
        t.same(Array.from(dbg.acc.data), ref.acc, `${isa.name} ${dtype} ${act.type}/${act.dtype}: exact`);
        t.same(Array.from(dbg.actScale.data), ref.actScale);
      }
      resetIsa();
    }
  }
  t.end();
});

t.test('fromQuantized rebuilds the same layer from its integer weights', async (t) => {
  const r = rng(13);
  const w = randTensor(r, [19, 150]);
  const x = randTensor(r, [7, 150]);
  const bias = randTensor(r, [19]);
  for (const weight of [
    { dtype: 'int8' as const, scheme: 'asymmetric' as const },
    { dtype: 'int4' as const, groupSize: 32, scheme: 'asymmetric' as const },
  ]) {
    const a = QuantizedLinear.fromFloat(w, { weight, bias });
    const qw = a.quantizedWeight();
    const b = QuantizedLinear.fromQuantized(qw.q, { scale: qw.scale, zeroPoint: qw.zeroPoint, groupSize: qw.groupSize || undefined, bias });
    t.same((await b.forward(x)).data, (await a.forward(x)).data, `${weight.dtype}: same outputs`);
    t.same(b.quantizedWeight().q.data, qw.q.data);
    t.equal(b.config.dtype, weight.dtype);
  }
  // Given scales and zero points (e.g. from calibration) instead of the min/max range.
  const scale = Float32Array.from({ length: 19 }, (_, i) => 0.005 + i * 0.001);
  const zeroPoint = Int32Array.from({ length: 19 }, (_, i) => (i % 5) - 2);
  const c = QuantizedLinear.fromFloat(w, { weight: { dtype: 'int8', scheme: 'asymmetric', scale, zeroPoint } });
  const qw = c.quantizedWeight();
  t.same(Array.from(qw.scale.data), Array.from(scale));
  t.same(Array.from(qw.zeroPoint.data), Array.from(zeroPoint));
  const q = qw.q.data as Int8Array;
  let exact = true;
  for (let i = 0; i < 19 * 150; i++) {
    const row = Math.floor(i / 150);
    const v = Math.min(127, Math.max(-128, roundHalfEven(Math.fround(w.data[i] / scale[row])) + zeroPoint[row]));
    if (q[i] !== v) exact = false;
  }
  t.ok(exact, 'weights quantized with the given scale and zero point');
});

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

t.test('empty and tiny inputs, leading dimensions, weight bytes', async (t) => {
  const r = rng(14);
  const w = randTensor(r, [9, 64]);
  const q8 = QuantizedLinear.fromFloat(w);
  const q4 = QuantizedLinear.fromFloat(w, { weight: { dtype: 'int4' } });
  t.same((await q8.forward(Tensor.zeros('float32', [0, 64]))).shape, [0, 9]);
  t.same(q4.forwardSync(Tensor.zeros('float32', [3, 0, 64])).shape, [3, 0, 9]);
  const d = q8.debugAccumulatorsSync(Tensor.zeros('float32', [0, 64]));
  t.same(d.acc.shape, [0, 9, 1]);
  const x = randTensor(r, [2, 3, 64]);
  t.same((await q8.forward(x)).shape, [2, 3, 9]);
  // Packed int4 weights take half the bytes of int8 ones (plus the same per-channel metadata).
  const big = randTensor(r, [64, 1024]);
  const b8 = QuantizedLinear.fromFloat(big).weightBytes;
  const b4 = QuantizedLinear.fromFloat(big, { weight: { dtype: 'int4' } }).weightBytes;
  t.ok(b8 >= 64 * 1024 && b8 < 64 * 1024 * 1.02, `int8 bytes ${b8}`);
  t.ok(Math.abs(b4 - (b8 - 64 * 1024 / 2)) < 1, `int4 bytes ${b4} = int8 bytes ${b8} - half the weights`);
});
