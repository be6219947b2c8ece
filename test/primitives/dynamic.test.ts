// Dynamic per-token quantize, block ranges, fp16/bf16 inputs, async forms and empty tensors, against
// the plain reference (reference.ts), on the scalar path and the detected one.
import t from 'tap';
import {
  backends,
  blockRange,
  blockRangeSync,
  chooseQParams,
  chooseQParamsSync,
  dequantize,
  dequantizeSync,
  type Granularity,
  QUANT_DTYPES,
  quantize,
  quantizeSync,
  type Scheme,
  setIsa,
  Tensor,
} from '../../lib/index.js';
import {
  bf16ToFloat,
  firstDifference,
  halfToFloat,
  refChooseQParams,
  refPack,
  refQuantize,
  refRanges,
  refUnpack,
  rng,
} from './reference.js';

const detected = backends().cpu.detectedIsa;
const PATHS = [...new Set(['scalar', detected] as const)];
t.teardown(() => {
  setIsa('amx');
});
const SCHEMES: Scheme[] = ['symmetric', 'asymmetric'];
const perToken: Granularity = { type: 'perToken' };

function randomX(n: number, seed: number): Float32Array {
  const r = rng(seed);
  // Rows of very different magnitudes, as activations have.
  return Float32Array.from({ length: n }, (_, i) => (r() - 0.45) * 2 ** ((i * 13) % 11 - 3));
}

for (const isa of PATHS) {
  t.test(`dynamic per-token quantize equals the reference, scales bit for bit (${isa})`, (t) => {
    setIsa(isa);
    let seed = 1;
    // Odd column counts put 4-bit row starts mid-byte; the big shapes run on several threads.
    const shapes = [[1, 1], [3, 7], [5, 8], [4, 9], [6, 31], [2, 33], [3, 1000], [2, 2, 1031], [1001, 33], [64, 1536], [40, 8960]];
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = randomX(n, seed++);
      const xt = new Tensor('float32', shape, x);
      for (const dtype of QUANT_DTYPES) {
        for (const scheme of SCHEMES) {
          const label = `${dtype} ${scheme} [${shape}]`;
          const q = quantizeSync(xt, { dtype, scheme, granularity: perToken });
          const ref = refChooseQParams(x, shape, perToken, dtype, scheme);
          t.equal(firstDifference(q.scale, ref.scale), -1, `scales ${label}`);
          t.equal(firstDifference(q.zeroPoint, ref.zeroPoint), -1, `zero points ${label}`);
          const want = refQuantize(x, shape, perToken, ref.scale, ref.zeroPoint, dtype);
          t.equal(firstDifference(new Uint8Array(q.data.data.buffer), refPack(want, dtype)), -1, `bytes ${label}`);
          t.same(q.scaleShape, shape.slice(0, -1));
        }
      }
    }
    t.end();
  });

  t.test(`dynamic per-token: constant, zero and single-sign rows (${isa})`, (t) => {
    setIsa(isa);
    const rows = [
      [0, 0, 0, 0, 0, 0, 0, 0, 0],
      [2, 2, 2, 2, 2, 2, 2, 2, 2],
      [-3, -1, -2, -5, -4, -1, -1, -2, -3],
      [1e-30, 2e-30, 0, 1e-30, 0, 0, 0, 0, 0],
      [3e38, -3e38, 0, 1, 2, 3, 4, 5, 6],
    ];
    const x = Float32Array.from(rows.flat());
    const shape = [rows.length, 9];
    for (const dtype of QUANT_DTYPES) {
      for (const scheme of SCHEMES) {
        if (scheme === 'asymmetric') continue; // the last row's max - min overflows float32 (tested in badinput)
        const q = quantizeSync(new Tensor('float32', shape, x), { dtype, scheme, granularity: perToken });
        const ref = refChooseQParams(x, shape, perToken, dtype, scheme);
        t.equal(firstDifference(q.scale, ref.scale), -1, `scales ${dtype} ${scheme}`);
        const want = refQuantize(x, shape, perToken, ref.scale, ref.zeroPoint, dtype);
        t.equal(firstDifference(refUnpack(q.data.data, dtype, x.length), want), -1, `${dtype} ${scheme}`);
      }
      const small = new Tensor('float32', [4, 9], x.slice(0, 36));
      const q = quantizeSync(small, { dtype, scheme: 'asymmetric', granularity: perToken });
      const ref = refChooseQParams(small.data, [4, 9], perToken, dtype, 'asymmetric');
      t.equal(firstDifference(q.scale, ref.scale), -1, `scales ${dtype} asymmetric`);
      t.equal(firstDifference(q.zeroPoint, ref.zeroPoint), -1, `zero points ${dtype} asymmetric`);
    }
    t.end();
  });

  t.test(`symmetric rows at their extremes: x = +-max|row| of many magnitudes (${isa})`, (t) => {
    // The symmetric per-token kernel relies on max|row| / scale rounding to at most 2^(bits-1) - 1.
    setIsa(isa);
    const r = rng(4242);
    const rows = 3000;
    const cols = 11;
    const x = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      const amax = Math.fround((1 + r()) * 2 ** Math.floor(r() * 240 - 120));
      const row = [amax, -amax, Math.fround(amax * (1 - 2 ** -24)), -Math.fround(amax * 0.5), 0];
      for (let j = 0; j < cols; j++) x[i * cols + j] = j < row.length ? row[j] : Math.fround((r() * 2 - 1) * amax);
    }
    const shape = [rows, cols];
    for (const dtype of QUANT_DTYPES) {
      const q = quantizeSync(new Tensor('float32', shape, x), { dtype, scheme: 'symmetric', granularity: perToken });
      const ref = refChooseQParams(x, shape, perToken, dtype, 'symmetric');
      t.equal(firstDifference(q.scale, ref.scale), -1, `${dtype} scales`);
      const want = refQuantize(x, shape, perToken, ref.scale, ref.zeroPoint, dtype);
      t.equal(firstDifference(refUnpack(q.data.data, dtype, x.length), want), -1, `${dtype} values`);
    }
    t.end();
  });

  t.test(`non-finite values make dynamic and computed calls fail naming x (${isa})`, async (t) => {
    setIsa(isa);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const x = new Float32Array(5 * 37).fill(0.5);
      x[3 * 37 + 20] = bad;
      const xt = new Tensor('float32', [5, 37], x);
      t.throws(() => quantizeSync(xt, { dtype: 'int8', granularity: perToken }), { name: 'RangeError', message: /\bx\b.*row 3/ }, `${bad} sync`);
      await t.rejects(quantize(xt, { dtype: 'uint4', granularity: perToken }), { name: 'RangeError', message: /\bx\b/ }, `${bad} async`);
      for (const g of [{ type: 'perTensor' }, { type: 'perChannel', axis: 1 }, { type: 'perChannel', axis: 0 }, { type: 'perGroup', axis: 0, groupSize: 5 }] as Granularity[]) {
        t.throws(() => chooseQParamsSync(xt, { dtype: 'int8', granularity: g }), { name: 'RangeError', message: /\bx\b/ }, `${bad} ${g.type}`);
        t.throws(() => blockRangeSync(xt, { granularity: g }), { name: 'RangeError', message: /\bx\b/ }, `${bad} blockRange ${g.type}`);
      }
      // With given parameters non-finite values are fine: they saturate or map to the zero point.
      t.doesNotThrow(() => quantizeSync(xt, { dtype: 'int8', scale: 0.1 }));
    }
  });

  t.test(`blockRange equals the reference for every granularity (${isa})`, (t) => {
    setIsa(isa);
    const cases: { shape: number[]; g: Granularity }[] = [
      { shape: [100003], g: { type: 'perTensor' } },
      { shape: [5, 7, 9], g: { type: 'perChannel', axis: 0 } },
      { shape: [5, 7, 9], g: { type: 'perChannel', axis: 1 } },
      { shape: [5, 7, 9], g: { type: 'perChannel', axis: 2 } },
      { shape: [200, 1031], g: { type: 'perChannel', axis: 1 } },
      { shape: [64, 2048], g: { type: 'perGroup', axis: 0, groupSize: 16 } },
      { shape: [3, 4, 24], g: { type: 'perGroup', axis: 2, groupSize: 8 } },
      { shape: [6, 5, 7], g: { type: 'perGroup', axis: 0, groupSize: 3 } },
      { shape: [9, 33], g: { type: 'perToken' } },
    ];
    let seed = 50;
    for (const { shape, g } of cases) {
      const x = randomX(shape.reduce((a, b) => a * b, 1), seed++);
      const got = blockRangeSync(new Tensor('float32', shape, x), { granularity: g });
      const ref = refRanges(x, shape, g);
      t.equal(firstDifference(got.min, ref.lo), -1, `min [${shape}] ${JSON.stringify(g)}`);
      t.equal(firstDifference(got.max, ref.hi), -1, `max [${shape}] ${JSON.stringify(g)}`);
    }
    t.end();
  });

  t.test(`float16 and bfloat16 inputs equal converting to float32 first (${isa})`, (t) => {
    setIsa(isa);
    const r = rng(9);
    const shape = [7, 45];
    const n = 7 * 45;
    // Finite half and bfloat16 bit patterns of every magnitude, subnormals included.
    const h16 = Uint16Array.from({ length: n }, () => Math.floor(r() * 0x7c00) | (r() < 0.5 ? 0x8000 : 0));
    const b16 = Uint16Array.from({ length: n }, () => {
      const e = 100 + Math.floor(r() * 60);
      return (r() < 0.5 ? 0x8000 : 0) | (e << 7) | Math.floor(r() * 128);
    });
    const inputs = [
      { x: new Tensor('float16', shape, h16), f: Float32Array.from(h16, halfToFloat) },
      { x: new Tensor('bfloat16', shape, b16), f: Float32Array.from(b16, bf16ToFloat) },
    ];
    const grans: Granularity[] = [{ type: 'perTensor' }, { type: 'perChannel', axis: 0 }, { type: 'perChannel', axis: 1 }, { type: 'perGroup', axis: 1, groupSize: 9 }, perToken];
    for (const { x, f } of inputs) {
      const xf = new Tensor('float32', shape, f);
      for (const g of grans) {
        for (const dtype of QUANT_DTYPES) {
          for (const scheme of SCHEMES) {
            const label = `${x.dtype} ${dtype} ${scheme} ${JSON.stringify(g)}`;
            const a = quantizeSync(x, { dtype, scheme, granularity: g });
            const b = quantizeSync(xf, { dtype, scheme, granularity: g });
            t.equal(firstDifference(a.scale, b.scale), -1, `scales ${label}`);
            t.equal(firstDifference(a.data.data, b.data.data), -1, `data ${label}`);
            const ref = refChooseQParams(f, shape, g, dtype, scheme);
            t.equal(firstDifference(a.scale, ref.scale), -1, `reference scales ${label}`);
          }
        }
      }
      // Static parameters, NaN and infinities included.
      const special = x.data.slice();
      special[0] = x.dtype === 'float16' ? 0x7e00 : 0x7fc0;
      special[1] = x.dtype === 'float16' ? 0x7c00 : 0x7f80;
      special[2] = x.dtype === 'float16' ? 0xfc00 : 0xff80;
      const conv = Float32Array.from(special, x.dtype === 'float16' ? halfToFloat : bf16ToFloat);
      for (const dtype of QUANT_DTYPES) {
        const q = quantizeSync(new Tensor(x.dtype, shape, special), { dtype, scale: 0.01, zeroPoint: 1, scheme: 'asymmetric' });
        const want = refQuantize(conv, shape, { type: 'perTensor' }, [0.01], [1], dtype);
        t.equal(firstDifference(refUnpack(q.data.data, dtype, n), want), -1, `${x.dtype} static ${dtype} with NaN and infinities`);
      }
    }
    t.end();
  });
}

t.test('async forms equal the sync ones', async (t) => {
  const x = new Tensor('float32', [33, 129], randomX(33 * 129, 77));
  const grans: Granularity[] = [{ type: 'perTensor' }, { type: 'perChannel', axis: 1 }, { type: 'perGroup', axis: 0, groupSize: 11 }, perToken];
  for (const g of grans) {
    for (const dtype of QUANT_DTYPES) {
      const a = await quantize(x, { dtype, granularity: g });
      const b = quantizeSync(x, { dtype, granularity: g });
      t.equal(firstDifference(a.data.data, b.data.data), -1, `quantize ${dtype} ${g.type}`);
      t.equal(firstDifference(a.scale, b.scale), -1, `scales ${dtype} ${g.type}`);
      t.equal(firstDifference((await dequantize(a)).data, dequantizeSync(b).data), -1, `dequantize ${dtype} ${g.type}`);
      const p = await chooseQParams(x, { dtype, granularity: g });
      t.equal(firstDifference(p.scale, chooseQParamsSync(x, { dtype, granularity: g }).scale), -1, `chooseQParams ${dtype} ${g.type}`);
    }
    const r = await blockRange(x, { granularity: g });
    t.equal(firstDifference(r.max, blockRangeSync(x, { granularity: g }).max), -1, `blockRange ${g.type}`);
  }
});

t.test('out reuses a buffer and gives the same result', async (t) => {
  const x = new Tensor('float32', [9, 71], randomX(9 * 71, 5));
  for (const dtype of QUANT_DTYPES) {
    const out = Tensor.zeros(dtype, [9, 71]);
    out.data.fill(0x5a);
    const fresh = quantizeSync(x, { dtype, granularity: perToken });
    const reused = await quantize(x, { dtype, granularity: perToken, out });
    t.equal(reused.data, out, `${dtype} result data is out`);
    t.equal(firstDifference(out.data, fresh.data.data), -1, `${dtype} same bytes (padding included)`);
    const back = Tensor.zeros('float32', [9, 71]);
    t.equal(dequantizeSync(reused, { out: back }), back);
    t.equal(firstDifference(back.data, dequantizeSync(fresh).data), -1, `${dtype} dequantize into out`);
  }
});

t.test('the async form does not block the event loop', async (t) => {
  // The scalar path on 16M elements takes tens of milliseconds at least; a 1 ms timer set after the
  // call must fire before the work is done.
  setIsa('scalar');
  t.teardown(() => {
    setIsa('amx');
  });
  const x = new Tensor('float32', [4096, 4096], new Float32Array(4096 * 4096).fill(0.25));
  let settled = false;
  const started = performance.now();
  const work = quantize(x, { dtype: 'int8', granularity: perToken }).then((q) => {
    settled = true;
    return q;
  });
  const settledWhenTimerFired = await new Promise<boolean>((resolve) => setTimeout(() => resolve(settled), 1));
  const q = await work;
  t.equal(settledWhenTimerFired, false, `the timer fired while quantize ran (${(performance.now() - started).toFixed(0)} ms)`);
  t.equal(q.data.data[12345], 127);
});

t.test('empty tensors give empty results', async (t) => {
  const empty = new Tensor('float32', [0], new Float32Array(0));
  const q = quantizeSync(empty, { dtype: 'int8' });
  t.equal(q.data.data.length, 0);
  t.equal(q.scale.length, 1);
  t.equal(dequantizeSync(q).size, 0);
  // Blocks of an empty tensor get the parameters of the range [0, 0].
  const rows = new Tensor('float32', [3, 0], new Float32Array(0));
  const qt = await quantize(rows, { dtype: 'uint8', granularity: perToken });
  t.same(Array.from(qt.zeroPoint), [0, 0, 0]);
  t.equal(qt.scale.length, 3);
  const cols = new Tensor('float32', [0, 5], new Float32Array(0));
  const qc = quantizeSync(cols, { dtype: 'int4', granularity: { type: 'perChannel', axis: 1 }, scale: [1, 2, 3, 4, 5] });
  t.equal(qc.data.data.length, 0);
  t.equal(chooseQParamsSync(cols, { dtype: 'int8', granularity: { type: 'perChannel', axis: 1 } }).scale.length, 5);
  const r = blockRangeSync(cols, { granularity: { type: 'perChannel', axis: 1 } });
  t.same(Array.from(r.min), [Infinity, Infinity, Infinity, Infinity, Infinity]);
  t.equal((await dequantize(qc)).size, 0);
});
