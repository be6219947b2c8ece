// GELU (tanh) and SiLU against the formulas in double precision, on every code path; the kernels'
// vectorised exp against Math.exp.
import t from 'tap';
import { gelu, geluSync, silu, siluSync, Tensor } from '../../../lib/index.js';
import { kernelExpSync } from '../../../lib/model/ops/activation.js';
import { assertClose, isas, randomTensor, withIsa } from './helpers.js';

const geluRef = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
const siluRef = (x: number) => x / (1 + Math.exp(-x));

// Tolerance: 1e-6 relative, plus 1e-30 absolute where the true value underflows float32. GELU gets
// 1e-9 |x| more in absolute terms: in its negative tail (x < -4, |gelu(x)| < 1e-4 |x|) the float32
// rounding of u is amplified by |2u| (as in PyTorch's float32 GELU), and for u < -18 the double
// reference itself has 1 + tanh(u) = 0.
const RTOL = 1e-6;
const ATOL = 1e-30;
const geluAtol = (x: ArrayLike<number>) => Array.from(x, (v) => ATOL + 1e-9 * Math.abs(v));

function specials(): Float32Array {
  const xs = [0, -0, 1e-30, -1e-30, 1e-8, -1e-8, 0.5, -0.5, 3, -3, 5.5, -5.5, 9, -9, 10, -10, 20, -20, 40, -40, 87, -87, 100, -100, 1e6, -1e6];
  // a dense sweep over the interesting range, and a tail that is not a multiple of 8
  for (let x = -30; x <= 30; x += 0.0137) xs.push(x);
  return Float32Array.from(xs);
}

for (const isa of isas()) {
  t.test(`gelu and silu match the formulas (${isa})`, async (t) => {
    await withIsa(isa, async () => {
      for (const data of [specials(), randomTensor([1001, 37], 3, 6).data, new Float32Array([2.5])]) {
        const x = new Tensor('float32', [data.length], data);
        assertClose(t, geluSync(x).data, Array.from(data, geluRef), RTOL, geluAtol(data), `gelu ${data.length}`);
        assertClose(t, (await silu(x)).data, Array.from(data, siluRef), RTOL, ATOL, `silu ${data.length}`);
      }
      // 3 * 65536 elements: several threads' ranges, each with its own tail
      const big = randomTensor([3, 65536 + 5], 9, 8);
      assertClose(t, (await gelu(big)).data, Array.from(big.data, geluRef), RTOL, geluAtol(big.data), 'gelu large');
    });
  });

  t.test(`activations: NaN and infinities (${isa})`, async (t) => {
    await withIsa(isa, () => {
      const x = new Tensor('float32', [5], new Float32Array([NaN, Infinity, -Infinity, 1e38, -1e38]));
      const g = geluSync(x).data;
      const s = siluSync(x).data;
      t.ok(Number.isNaN(g[0]) && Number.isNaN(s[0]), 'NaN propagates');
      t.equal(g[1], Infinity);
      t.equal(s[1], Infinity);
      t.ok(Number.isNaN(g[2]) && Number.isNaN(s[2]), '-inf gives NaN, as -inf * 0 in PyTorch');
      t.equal(g[3], Math.fround(1e38), 'gelu(x) = x for large x');
      t.equal(g[4], 0, 'gelu(x) = (-)0 for very negative x');
      t.equal(s[4], 0, 'silu(x) = (-)0 for very negative x');
    });
  });

  t.test(`kernel exp is within 2e-7 relative of Math.exp on [-87, 88] (${isa})`, async (t) => {
    await withIsa(isa, () => {
      const xs: number[] = [];
      for (let x = -87; x <= 88; x += 0.000731) xs.push(x);
      xs.push(0, -0, 1e-9, -1e-9, 88, 0.34657359, -0.34657359);
      const x = Float32Array.from(xs);
      const y = kernelExpSync(x);
      let worst = 0;
      for (let i = 0; i < x.length; i++) {
        const ref = Math.exp(x[i]);
        worst = Math.max(worst, Math.abs(y[i] - ref) / ref);
      }
      t.ok(worst <= 2e-7, `max relative error ${worst.toExponential(2)} over ${x.length} points`);
      // Outside the range the AVX2 exp saturates (e^-87.34 ~ 1.2e-38, e^88 ~ 1.65e38) where std::exp
      // gives subnormals, 0 or Infinity: either way tiny stays tiny and huge stays huge.
      const low = kernelExpSync(new Float32Array([-88, -1000, -Infinity]));
      t.ok(low.every((v) => v >= 0 && v <= 1.2e-38), `tiny below -87.34 (${Array.from(low).join(', ')})`);
      const high = kernelExpSync(new Float32Array([88.8, 1000, Infinity]));
      t.ok(high.every((v) => v >= 1.6e38), `huge above 88 (${Array.from(high).join(', ')})`);
      t.ok(Number.isNaN(kernelExpSync(new Float32Array([NaN]))[0]), 'NaN stays NaN');
    });
  });
}

t.test('activations in place and into out', async (t) => {
  const x = randomTensor([7, 9], 4, 3);
  const expected = Array.from(x.data, geluRef);
  const out = Tensor.zeros('float32', [7, 9]);
  t.equal(geluSync(x, { out }), out, 'returns out');
  assertClose(t, out.data, expected, RTOL, geluAtol(x.data), 'into out');
  const atol = geluAtol(x.data);
  t.equal(await gelu(x, { out: x }), x, 'in place returns x');
  assertClose(t, x.data, expected, RTOL, atol, 'in place');
  const empty = geluSync(Tensor.zeros('float32', [0, 4]));
  t.same(empty.shape, [0, 4], 'empty tensor gives an empty tensor');
});

t.test('activations reject bad input naming the argument', async (t) => {
  t.throws(() => geluSync(new Float32Array(3) as never), { name: 'TypeError', message: /x/ });
  t.throws(() => siluSync(Tensor.zeros('int8', [3])), { name: 'TypeError', message: /x.*float32/ });
  t.throws(() => geluSync(Tensor.zeros('float32', [3]), null as never), { name: 'TypeError', message: /options/ });
  t.throws(() => geluSync(Tensor.zeros('float32', [3]), { out: Tensor.zeros('float32', [4]) }), { name: 'RangeError', message: /options\.out/ });
  const buf = new Float32Array(8);
  const a = new Tensor('float32', [4], buf.subarray(0, 4));
  const b = new Tensor('float32', [4], buf.subarray(2, 6));
  t.throws(() => siluSync(a, { out: b }), { name: 'RangeError', message: /options\.out.*overlaps/ });
  await t.rejects(gelu(Tensor.zeros('uint8', [2])), { name: 'TypeError', message: /x/ });
});
