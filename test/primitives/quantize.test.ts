// quantize / dequantize / chooseQParams against the plain reference (reference.ts): exact integers
// and bit-equal scales for every dtype x scheme x granularity, on the scalar path and the detected one.
import t from 'tap';
import {
  backends,
  chooseQParamsSync,
  dequantizeSync,
  type Granularity,
  qparamsFromRange,
  QUANT_DTYPES,
  type QuantDType,
  quantizeSync,
  type Scheme,
  setIsa,
  Tensor,
} from '../../lib/index.js';
import {
  firstDifference,
  refChooseQParams,
  refDequantize,
  refNumBlocks,
  refPack,
  refQuantize,
  refUnpack,
  rng,
} from './reference.js';

const detected = backends().cpu.detectedIsa;
const PATHS = [...new Set(['scalar', detected] as const)];
t.teardown(() => {
  setIsa('amx');
});

const SCHEMES: Scheme[] = ['symmetric', 'asymmetric'];

// Shapes and granularities: per channel on the first, a middle and the last axis; per group along
// the last and the first axis; odd sizes so that 4-bit runs start mid-byte.
const CASES: { shape: number[]; g: Granularity }[] = [
  { shape: [1031], g: { type: 'perTensor' } },
  { shape: [5, 7, 9], g: { type: 'perTensor' } },
  { shape: [5, 7, 9], g: { type: 'perChannel', axis: 0 } },
  { shape: [5, 7, 9], g: { type: 'perChannel', axis: 1 } },
  { shape: [5, 7, 9], g: { type: 'perChannel', axis: 2 } },
  { shape: [3, 37], g: { type: 'perChannel', axis: -1 } },
  { shape: [6, 33], g: { type: 'perChannel', axis: 0 } },
  { shape: [3, 4, 24], g: { type: 'perGroup', axis: 2, groupSize: 8 } },
  { shape: [3, 45], g: { type: 'perGroup', axis: -1, groupSize: 9 } },
  { shape: [4, 130], g: { type: 'perGroup', axis: 1, groupSize: 65 } },
  { shape: [6, 5, 7], g: { type: 'perGroup', axis: 0, groupSize: 3 } },
  { shape: [12, 11], g: { type: 'perGroup', axis: 0, groupSize: 2 } },
  { shape: [9, 33], g: { type: 'perToken' } },
  { shape: [2, 3, 17], g: { type: 'perToken' } },
  { shape: [4, 1000], g: { type: 'perToken' } },
];

function randomX(n: number, seed: number, spread = 8): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.3) * spread);
}

function randomQParams(count: number, dtype: QuantDType, scheme: Scheme, seed: number): { scale: Float32Array; zeroPoint: Int32Array } {
  const r = rng(seed);
  const { qmin, qmax } = { int8: { qmin: -128, qmax: 127 }, uint8: { qmin: 0, qmax: 255 }, int4: { qmin: -8, qmax: 7 }, uint4: { qmin: 0, qmax: 15 } }[dtype];
  const scale = Float32Array.from({ length: count }, () => 0.005 + r() * 0.3);
  const sym = dtype === 'uint8' ? 128 : dtype === 'uint4' ? 8 : 0;
  const zeroPoint = Int32Array.from({ length: count }, () => (scheme === 'symmetric' ? sym : qmin + Math.floor(r() * (qmax - qmin + 1))));
  return { scale, zeroPoint };
}

for (const isa of PATHS) {
  t.test(`static quantize/dequantize, every dtype x scheme x granularity (${isa})`, (t) => {
    setIsa(isa);
    let seed = 1;
    for (const { shape, g } of CASES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = randomX(n, seed++);
      // Specials land in several blocks; the spread saturates at both ends for small scales.
      x[0] = NaN;
      x[Math.floor(n / 2)] = Infinity;
      x[n - 1] = -Infinity;
      const xt = new Tensor('float32', shape, x);
      for (const dtype of QUANT_DTYPES) {
        for (const scheme of SCHEMES) {
          const { scale, zeroPoint } = randomQParams(refNumBlocks(shape, g), dtype, scheme, seed++);
          // Outputs are not zeroed before the kernels run: pre-filled buffers show every byte is written.
          const out = Tensor.zeros(dtype, shape);
          out.data.fill(0x5a);
          const q = quantizeSync(xt, { dtype, scheme, granularity: g, scale, zeroPoint, out });
          const want = refQuantize(x, shape, g, scale, zeroPoint, dtype);
          const label = `${dtype} ${scheme} ${g.type} [${shape}] ${JSON.stringify(g)}`;
          t.equal(firstDifference(refUnpack(q.data.data, dtype, n), want), -1, `quantize ${label}`);
          t.equal(firstDifference(new Uint8Array(q.data.data.buffer), refPack(want, dtype)), -1, `bytes ${label}`);
          const back = dequantizeSync(q, { out: new Tensor('float32', shape, new Float32Array(n).fill(NaN)) });
          t.equal(firstDifference(back.data, refDequantize(want, shape, g, scale, zeroPoint)), -1, `dequantize ${label}`);
        }
      }
    }
    t.end();
  });

  t.test(`computed qparams and quantize, every dtype x scheme x granularity (${isa})`, (t) => {
    setIsa(isa);
    let seed = 100;
    for (const { shape, g } of CASES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = randomX(n, seed++, 20);
      const xt = new Tensor('float32', shape, x);
      for (const dtype of QUANT_DTYPES) {
        for (const scheme of SCHEMES) {
          const label = `${dtype} ${scheme} [${shape}] ${JSON.stringify(g)}`;
          const ref = refChooseQParams(x, shape, g, dtype, scheme);
          const p = chooseQParamsSync(xt, { dtype, scheme, granularity: g });
          t.equal(firstDifference(p.scale, ref.scale), -1, `scales ${label}`);
          t.equal(firstDifference(p.zeroPoint, ref.zeroPoint), -1, `zero points ${label}`);
          // quantize computes the same parameters (dynamically for per token).
          const q = quantizeSync(xt, { dtype, scheme, granularity: g });
          t.equal(firstDifference(q.scale, ref.scale), -1, `quantize scales ${label}`);
          t.equal(firstDifference(q.zeroPoint, ref.zeroPoint), -1, `quantize zero points ${label}`);
          const want = refQuantize(x, shape, g, ref.scale, ref.zeroPoint, dtype);
          t.equal(firstDifference(refUnpack(q.data.data, dtype, n), want), -1, `quantize ${label}`);
          t.equal(q.scheme, scheme);
          t.same(q.granularity.type, g.type);
        }
      }
    }
    t.end();
  });

  t.test(`large tensors split over all threads, odd 4-bit runs included (${isa})`, (t) => {
    setIsa(isa);
    // Each case has enough work for several tasks; odd run lengths make 4-bit tasks start mid-run.
    const big: { shape: number[]; g: Granularity }[] = [
      { shape: [301, 7, 33], g: { type: 'perChannel', axis: 1 } },
      { shape: [200, 1031], g: { type: 'perChannel', axis: 1 } },
      { shape: [48, 1031], g: { type: 'perGroup', axis: 0, groupSize: 16 } },
      { shape: [4001, 33], g: { type: 'perGroup', axis: 1, groupSize: 11 } },
      { shape: [100003], g: { type: 'perTensor' } },
    ];
    let seed = 300;
    for (const { shape, g } of big) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = randomX(n, seed++);
      const xt = new Tensor('float32', shape, x);
      for (const dtype of QUANT_DTYPES) {
        const scheme: Scheme = dtype.startsWith('u') ? 'asymmetric' : 'symmetric';
        const label = `${dtype} [${shape}] ${JSON.stringify(g)}`;
        const { scale, zeroPoint } = randomQParams(refNumBlocks(shape, g), dtype, scheme, seed++);
        const out = Tensor.zeros(dtype, shape);
        out.data.fill(0xa5);
        const q = quantizeSync(xt, { dtype, scheme, granularity: g, scale, zeroPoint, out });
        const want = refQuantize(x, shape, g, scale, zeroPoint, dtype);
        t.equal(firstDifference(new Uint8Array(q.data.data.buffer), refPack(want, dtype)), -1, `static bytes ${label}`);
        t.equal(firstDifference(dequantizeSync(q).data, refDequantize(want, shape, g, scale, zeroPoint)), -1, `dequantize ${label}`);
        const p = chooseQParamsSync(xt, { dtype, scheme, granularity: g });
        const ref = refChooseQParams(x, shape, g, dtype, scheme);
        t.equal(firstDifference(p.scale, ref.scale), -1, `scales ${label}`);
        t.equal(firstDifference(p.zeroPoint, ref.zeroPoint), -1, `zero points ${label}`);
      }
    }
    t.end();
  });

  t.test(`ties round half to even (${isa})`, (t) => {
    setIsa(isa);
    for (const scale of [0.25, 1, 0.1, 3.7]) {
      const ks = Array.from({ length: 41 }, (_, i) => i - 20);
      const x = Float32Array.from(ks, (k) => (k + 0.5) * scale);
      for (const dtype of ['int8', 'int4'] as const) {
        const q = quantizeSync(Tensor.fromArray(x), { dtype, scale });
        const got = refUnpack(q.data.data, dtype, x.length);
        const want = refQuantize(x, [x.length], { type: 'perTensor' }, [scale], [0], dtype);
        t.equal(firstDifference(got, want), -1, `${dtype} scale ${scale} against the reference`);
        if (scale === 0.25 || scale === 1) {
          // Exact halves: k + 0.5 goes to the even one of k and k + 1, then saturates.
          const lim = dtype === 'int8' ? [-128, 127] : [-8, 7];
          const even = Int32Array.from(ks, (k) => Math.min(Math.max(k % 2 === 0 ? k : k + 1, lim[0]), lim[1]));
          t.equal(firstDifference(got, even), -1, `${dtype} halves to even, scale ${scale}`);
        }
      }
    }
    t.end();
  });

  t.test(`saturation, infinities and NaN (${isa})`, (t) => {
    setIsa(isa);
    const x = Float32Array.from([1e30, -1e30, Infinity, -Infinity, NaN, 3.4e38, -3.4e38, 1e-45, -1e-45, 0, -0]);
    const zp: Record<QuantDType, number> = { int8: -5, uint8: 200, int4: 3, uint4: 11 };
    const range: Record<QuantDType, [number, number]> = { int8: [-128, 127], uint8: [0, 255], int4: [-8, 7], uint4: [0, 15] };
    for (const dtype of QUANT_DTYPES) {
      for (const scale of [1e-30, 0.5, 1e30]) {
        const q = quantizeSync(Tensor.fromArray(x), { dtype, scale, zeroPoint: zp[dtype] });
        const got = Array.from(refUnpack(q.data.data, dtype, x.length));
        const [qmin, qmax] = range[dtype];
        const z = zp[dtype];
        t.equal(got[2], qmax, `${dtype} +Infinity saturates at qmax`);
        t.equal(got[3], qmin, `${dtype} -Infinity saturates at qmin`);
        t.equal(got[4], z, `${dtype} NaN maps to the zero point`);
        t.equal(got[9], z, `${dtype} 0 maps to the zero point`);
        t.equal(got[10], z, `${dtype} -0 maps to the zero point`);
        if (scale !== 1e30) {
          t.equal(got[0], qmax, `${dtype} huge positive saturates, scale ${scale}`);
          t.equal(got[1], qmin, `${dtype} huge negative saturates, scale ${scale}`);
        }
        t.equal(firstDifference(got, refQuantize(x, [x.length], { type: 'perTensor' }, [scale], [z], dtype)), -1, `${dtype} scale ${scale}`);
      }
    }
    t.end();
  });

  t.test(`int4 packing of odd lengths, raw bytes (${isa})`, (t) => {
    setIsa(isa);
    for (const n of [1, 3, 7, 9, 15, 31, 33, 63, 65, 127, 1001]) {
      const x = Float32Array.from({ length: n }, (_, i) => ((i * 7) % 16) - 8);
      for (const dtype of ['int4', 'uint4'] as const) {
        const zeroPoint = dtype === 'int4' ? 0 : 8;
        const q = quantizeSync(Tensor.fromArray(x), { dtype, scale: 1, zeroPoint, scheme: 'asymmetric' });
        t.equal(q.data.data.length, Math.ceil(n / 2), `${dtype} n=${n} byte count`);
        const want = refPack(refQuantize(x, [n], { type: 'perTensor' }, [1], [zeroPoint], dtype), dtype);
        t.equal(firstDifference(q.data.data, want), -1, `${dtype} n=${n} bytes`);
        if (n % 2 === 1) t.equal(q.data.data[q.data.data.length - 1] >> 4, 0, `${dtype} n=${n} zero padding nibble`);
      }
    }
    // Known bytes: [1, -2, 3] -> 0xE1, 0x03.
    const q = quantizeSync(Tensor.fromArray([1, -2, 3]), { dtype: 'int4', scale: 1 });
    t.same(Array.from(q.data.data), [0xe1, 0x03]);
    t.end();
  });

  t.test(`SIMD tails: sizes around the vector widths (${isa})`, (t) => {
    setIsa(isa);
    for (const n of [1, 7, 8, 9, 16, 31, 32, 33, 63, 64, 65, 1000, 1031, 100003]) {
      const x = randomX(n, n);
      for (const dtype of QUANT_DTYPES) {
        const scheme = dtype.startsWith('u') ? 'asymmetric' : 'symmetric';
        const q = quantizeSync(new Tensor('float32', [n], x), { dtype });
        const ref = refChooseQParams(x, [n], { type: 'perTensor' }, dtype, scheme);
        t.equal(firstDifference(q.scale, ref.scale), -1, `n=${n} ${dtype} scale`);
        const want = refQuantize(x, [n], { type: 'perTensor' }, ref.scale, ref.zeroPoint, dtype);
        t.equal(firstDifference(new Uint8Array(q.data.data.buffer), refPack(want, dtype)), -1, `n=${n} ${dtype} bytes`);
        t.equal(firstDifference(dequantizeSync(q).data, refDequantize(want, [n], { type: 'perTensor' }, ref.scale, ref.zeroPoint)), -1, `n=${n} ${dtype} dequantize`);
      }
    }
    t.end();
  });

  t.test(`dequantize(quantize(x)) is within scale / 2 (${isa})`, (t) => {
    setIsa(isa);
    const shape = [17, 129];
    const x = randomX(17 * 129, 7, 6);
    for (const g of [{ type: 'perTensor' }, { type: 'perChannel', axis: 1 }, { type: 'perGroup', axis: 1, groupSize: 43 }, { type: 'perToken' }] as Granularity[]) {
      for (const dtype of QUANT_DTYPES) {
        for (const scheme of SCHEMES) {
          const q = quantizeSync(new Tensor('float32', shape, x), { dtype, scheme, granularity: g });
          const back = dequantizeSync(q).data;
          let worst = 0;
          for (let e = 0; e < x.length; e++) {
            const s = q.scale[g.type === 'perTensor' ? 0 : g.type === 'perChannel' ? e % 129 : g.type === 'perGroup' ? Math.floor(e / 43) : Math.floor(e / 129)];
            // The float32 product (q - z) * s adds at most half an ulp of the result.
            worst = Math.max(worst, Math.abs(back[e] - x[e]) / (s / 2 + Math.abs(x[e]) * 2 ** -23));
          }
          t.ok(worst <= 1, `${dtype} ${scheme} ${g.type}: max error / (scale / 2) = ${worst.toFixed(4)}`);
        }
      }
    }
    t.end();
  });
}

t.test('symmetric uint8 uses the zero point 128 and qparamsFromRange agrees', (t) => {
  const q = quantizeSync(Tensor.fromArray([-1, 0, 1]), { dtype: 'uint8', scheme: 'symmetric' });
  t.same(Array.from(q.zeroPoint), [128]);
  t.equal(q.scale[0], qparamsFromRange(-1, 1, 'uint8', 'symmetric').scale);
  t.same(Array.from(q.data.data), [1, 128, 255]);
  t.end();
});
