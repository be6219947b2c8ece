// LayerNorm (plain, affine, modulated per group), RMSNorm and the gated residual against plain
// double-precision loops, on every code path. Tolerance: 1e-5 relative plus 1e-6 absolute (outputs
// are O(1) after normalisation; float32 statistics).
import t from 'tap';
import { gatedResidual, gatedResidualSync, layerNorm, layerNormSync, rmsNorm, rmsNormSync, Tensor } from '../../../lib/index.js';
import { assertClose, isas, randomTensor, withIsa } from './helpers.js';

const RTOL = 1e-5;
const ATOL = 1e-6;

interface RefOptions {
  eps?: number;
  weight?: Float32Array;
  bias?: Float32Array;
  shift?: Float32Array;
  scale?: Float32Array;
  groups?: number;
}

function layerNormRef(x: Float32Array, rows: number, dim: number, o: RefOptions): Float64Array {
  const out = new Float64Array(rows * dim);
  const eps = o.eps ?? 1e-6;
  const per = rows / (o.groups ?? 1);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let j = 0; j < dim; j++) mean += x[r * dim + j];
    mean /= dim;
    let v = 0;
    for (let j = 0; j < dim; j++) v += (x[r * dim + j] - mean) ** 2;
    const rstd = 1 / Math.sqrt(v / dim + eps);
    const g = Math.floor(r / per);
    for (let j = 0; j < dim; j++) {
      let y = (x[r * dim + j] - mean) * rstd;
      if (o.weight) y = y * o.weight[j] + (o.bias ? o.bias[j] : 0);
      if (o.scale && o.shift) y = y * (1 + o.scale[g * dim + j]) + o.shift[g * dim + j];
      out[r * dim + j] = y;
    }
  }
  return out;
}

function rmsNormRef(x: Float32Array, rows: number, dim: number, eps: number, weight?: Float32Array): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let ms = 0;
    for (let j = 0; j < dim; j++) ms += x[r * dim + j] ** 2;
    const rr = 1 / Math.sqrt(ms / dim + eps);
    for (let j = 0; j < dim; j++) out[r * dim + j] = x[r * dim + j] * rr * (weight ? weight[j] : 1);
  }
  return out;
}

// (rows, dim, groups): odd rows, dims with vector tails, per-frame groups as in the causal DiT.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 7],
  [12, 36, 3],
  [33, 100, 11],
  [192, 256, 3],
  [64, 1536, 4],
  [5, 1543, 5],
];

for (const isa of isas()) {
  t.test(`layerNorm: plain, affine and modulated (${isa})`, async (t) => {
    await withIsa(isa, async () => {
      let seed = 1;
      for (const [rows, dim, groups] of SHAPES) {
        // an offset of 3 checks the mean is taken out accurately
        const x = randomTensor([rows, dim], seed++, 2, 3);
        const weight = randomTensor([dim], seed++, 1, 1);
        const bias = randomTensor([dim], seed++);
        const shift = randomTensor([groups, dim], seed++);
        const scale = randomTensor([groups, dim], seed++, 0.5);
        const tag = `${rows}x${dim}/${groups}`;
        assertClose(t, layerNormSync(x).data, layerNormRef(x.data, rows, dim, {}), RTOL, ATOL, `plain ${tag}`);
        assertClose(t, (await layerNorm(x, { weight, bias, eps: 1e-5 })).data,
          layerNormRef(x.data, rows, dim, { weight: weight.data, bias: bias.data, eps: 1e-5 }), RTOL, ATOL, `affine ${tag}`);
        assertClose(t, layerNormSync(x, { weight }).data, layerNormRef(x.data, rows, dim, { weight: weight.data }), RTOL, ATOL, `weight only ${tag}`);
        assertClose(t, (await layerNorm(x, { shift, scale })).data,
          layerNormRef(x.data, rows, dim, { shift: shift.data, scale: scale.data, groups }), RTOL, ATOL, `modulated ${tag}`);
        assertClose(t, layerNormSync(x, { weight, bias, shift, scale }).data,
          layerNormRef(x.data, rows, dim, { weight: weight.data, bias: bias.data, shift: shift.data, scale: scale.data, groups }), RTOL, ATOL, `affine + modulated ${tag}`);
      }
      // one modulation vector as [dim], a rank-3 input, and a large common offset
      const x = randomTensor([3, 5, 20], 77, 1, 1000);
      const shift = randomTensor([20], 78);
      const scale = randomTensor([20], 79);
      assertClose(t, layerNormSync(x, { shift, scale }).data,
        layerNormRef(x.data, 15, 20, { shift: shift.data, scale: scale.data }), RTOL, ATOL, 'rank 3, [dim] modulation, offset 1000');
      // a constant row: variance 0, so the output is 0 * rsqrt(eps) = 0 (+ shift)
      const c = new Tensor('float32', [2, 9], new Float32Array(18).fill(4.25));
      t.same(Array.from(layerNormSync(c).data), new Array(18).fill(0), 'constant rows normalise to 0');
    });
  });

  t.test(`rmsNorm (${isa})`, async (t) => {
    await withIsa(isa, async () => {
      let seed = 100;
      for (const [rows, dim] of SHAPES) {
        const x = randomTensor([rows, dim], seed++, 3);
        const weight = randomTensor([dim], seed++, 1, 1);
        assertClose(t, (await rmsNorm(x, { weight })).data, rmsNormRef(x.data, rows, dim, 1e-6, weight.data), RTOL, ATOL, `${rows}x${dim}`);
        assertClose(t, rmsNormSync(x, { eps: 0.5 }).data, rmsNormRef(x.data, rows, dim, 0.5), RTOL, ATOL, `${rows}x${dim} eps 0.5, no weight`);
      }
      t.same(Array.from(rmsNormSync(Tensor.zeros('float32', [2, 3])).data), [0, 0, 0, 0, 0, 0], 'zero rows stay 0');
    });
  });

  t.test(`gatedResidual (${isa})`, async (t) => {
    await withIsa(isa, async () => {
      let seed = 200;
      for (const [rows, dim, groups] of SHAPES) {
        const x = randomTensor([rows, dim], seed++);
        const y = randomTensor([rows, dim], seed++);
        const gate = randomTensor([groups, dim], seed++);
        const per = rows / groups;
        const ref = Array.from(x.data, (v, i) => v + y.data[i] * gate.data[Math.floor(Math.floor(i / dim) / per) * dim + (i % dim)]);
        assertClose(t, gatedResidualSync(x, y, gate).data, ref, 1e-6, 1e-7, `${rows}x${dim}/${groups}`);
        const inPlace = await gatedResidual(x, y, gate, { out: x });
        t.equal(inPlace, x, 'in place returns x');
        assertClose(t, x.data, ref, 1e-6, 1e-7, `${rows}x${dim}/${groups} in place`);
      }
    });
  });
}

t.test('norms in place and on empty inputs', async (t) => {
  const x = randomTensor([4, 10], 5);
  const ref = layerNormRef(x.data, 4, 10, {});
  t.equal(layerNormSync(x, { out: x }), x);
  assertClose(t, x.data, ref, RTOL, ATOL, 'layerNorm in place');
  const z = randomTensor([3, 10], 6);
  const zr = rmsNormRef(z.data, 3, 10, 1e-6);
  t.equal(await rmsNorm(z, { out: z }), z);
  assertClose(t, z.data, zr, RTOL, ATOL, 'rmsNorm in place');
  t.same(layerNormSync(Tensor.zeros('float32', [0, 8]), { shift: Tensor.zeros('float32', [8]), scale: Tensor.zeros('float32', [8]) }).shape, [0, 8], 'no rows');
});

t.test('norms reject bad input naming the argument', async (t) => {
  const x = Tensor.zeros('float32', [6, 8]);
  const v8 = Tensor.zeros('float32', [8]);
  t.throws(() => layerNormSync(Tensor.zeros('float16', [6, 8])), { name: 'TypeError', message: /x.*float32/ });
  t.throws(() => layerNormSync(Tensor.zeros('float32', [6, 0])), { name: 'RangeError', message: /last dimension for x/ });
  t.throws(() => layerNormSync(Tensor.zeros('float32', [])), { name: 'RangeError', message: /x/ });
  t.throws(() => layerNormSync(x, { eps: NaN }), { name: 'RangeError', message: /options\.eps/ });
  t.throws(() => layerNormSync(x, { eps: 0 }), { name: 'RangeError', message: /options\.eps/ });
  t.throws(() => layerNormSync(x, { eps: '1' as never }), { name: 'TypeError', message: /options\.eps/ });
  t.throws(() => layerNormSync(x, { weight: Tensor.zeros('float32', [7]) }), { name: 'RangeError', message: /options\.weight/ });
  t.throws(() => layerNormSync(x, { bias: v8 }), { name: 'TypeError', message: /options\.weight/ });
  t.throws(() => layerNormSync(x, { shift: v8 }), { name: 'TypeError', message: /options\.scale/ });
  t.throws(() => layerNormSync(x, { shift: Tensor.zeros('float32', [4, 8]), scale: Tensor.zeros('float32', [4, 8]) }), { name: 'RangeError', message: /options\.shift.*divide the 6 rows/ });
  t.throws(() => layerNormSync(x, { shift: Tensor.zeros('float32', [2, 8]), scale: Tensor.zeros('float32', [3, 8]) }), { name: 'RangeError', message: /options\.scale/ });
  t.throws(() => layerNormSync(x, { shift: Tensor.zeros('float32', [2, 7]), scale: Tensor.zeros('float32', [2, 7]) }), { name: 'RangeError', message: /options\.shift/ });
  t.throws(() => layerNormSync(x, { shift: Tensor.zeros('float32', [0, 8]), scale: Tensor.zeros('float32', [0, 8]) }), { name: 'RangeError', message: /options\.shift/ });
  t.throws(() => layerNormSync(x, { out: Tensor.zeros('float32', [8, 6]) }), { name: 'RangeError', message: /options\.out/ });
  t.throws(() => rmsNormSync(x, { weight: Tensor.zeros('int8', [8]) }), { name: 'TypeError', message: /options\.weight/ });
  const wide = Tensor.zeros('float32', [7, 8]);
  const inside = new Tensor('float32', [6, 8], wide.data.subarray(8));
  const firstRow = new Tensor('float32', [8], wide.data.subarray(0, 8));
  t.throws(() => rmsNormSync(inside, { weight: firstRow, out: new Tensor('float32', [6, 8], wide.data.subarray(0, 48)) }), { name: 'RangeError', message: /options\.out.*overlaps/ }, 'out partly over x');
  t.throws(() => layerNormSync(x, { weight: firstRow, out: new Tensor('float32', [6, 8], wide.data.subarray(0, 48)) }), { name: 'RangeError', message: /options\.out.*overlaps/ }, 'out over the weight');
  t.throws(() => rmsNormSync(x, { eps: -1 }), { name: 'RangeError', message: /options\.eps/ });
  t.throws(() => rmsNormSync(x, 'fast' as never), { name: 'TypeError', message: /options/ });
  t.throws(() => gatedResidualSync(x, Tensor.zeros('float32', [6, 7]), v8), { name: 'RangeError', message: /y/ });
  t.throws(() => gatedResidualSync(x, x, Tensor.zeros('float32', [4, 8])), { name: 'RangeError', message: /gate/ });
  const y = Tensor.zeros('float32', [6, 8]);
  const gateInX = new Tensor('float32', [8], x.data.subarray(8, 16));
  t.throws(() => gatedResidualSync(x, y, gateInX, { out: x }), { name: 'RangeError', message: /options\.out.*overlaps/ }, 'out must not overwrite the gate');
  await t.rejects(layerNorm(x, { eps: Infinity }), { name: 'RangeError', message: /options\.eps/ });
  await t.rejects(gatedResidual(x, y, Tensor.zeros('float32', [8]), { out: v8 }), { name: 'RangeError', message: /options\.out/ });
});
