import t from 'tap';
import { LinearF32, PackedWeights, QuantizedLinear, Tensor, matmul, matmulSync, packWeights, setIsa, setThreads, backends } from '../../lib/index.js';
import { firstOutside, isaPaths, useIsa, resetIsa, matmulRef, randInt, randTensor, rng } from './reference.js';

// FP32 outputs must be within the worst-case bound of recursive float32 summation:
// |y - y64| <= (K + 4) * 2^-24 * (sum_k |x_k w_k| + |b|).
const U = 2 ** -24;

t.test('LinearF32 and matmul match a float64 reference on every ISA path', async (t) => {
  const r = rng(1);
  const cases: Array<[number, number, number]> = [
    [1, 1, 1],
    [3, 5, 7],
    [6, 16, 33],
    [7, 17, 257],
    [13, 31, 300],
    [50, 45, 513],
    [2, 70, 1000],
    [300, 40, 70], // enough rows for several row blocks per thread
  ];
  for (let i = 0; i < 6; i++) cases.push([randInt(r, 1, 40), randInt(r, 1, 50), randInt(r, 1, 600)]);
  for (const isa of isaPaths('gemmF32')) {
    useIsa(isa);
    for (const [m, n, k] of cases) {
      const x = randTensor(r, [m, k]);
      const w = randTensor(r, [n, k]);
      const bias = r() < 0.5 ? randTensor(r, [n]).data : null;
      const { y: want, mag } = matmulRef(x, w, bias);
      const layer = LinearF32.fromFloat(w, bias ? { bias } : {});
      const got = await layer.forward(x);
      t.same(got.shape, [m, n]);
      const bad = firstOutside(got.data, want, (j) => (k + 4) * U * mag[j]);
      t.equal(bad, -1, `${isa.name} m=${m} n=${n} k=${k}${bad >= 0 ? `: element ${bad} ${got.data[bad]} vs ${want[bad]}` : ''}`);
      t.same(layer.forwardSync(x).data, got.data, `${isa.name} sync equals async m=${m} n=${n} k=${k}`);
    }
  }
  resetIsa();
});

t.test('AVX-512 gives the AVX2 sums bit for bit (same order, fused multiply-adds), and its emulated build too', (t) => {
  const r = rng(9);
  const w = randTensor(r, [77, 700]);
  const x = randTensor(r, [29, 700]);
  const layer = LinearF32.fromFloat(w, { bias: randTensor(r, [77]).data });
  setIsa('avx2');
  const avx2 = layer.forwardSync(x).data;
  setIsa('avx512', { emulate: true });
  const avx512 = layer.forwardSync(x).data;
  setIsa('avx512', { emulate: 'always' });
  const emulated = layer.forwardSync(x).data;
  resetIsa();
  t.same(avx512, avx2, 'avx512 == avx2');
  t.same(emulated, avx2, 'emulated avx512 == avx2');
  t.end();
});

t.test('any thread count gives the same result', (t) => {
  const r = rng(2);
  const x = randTensor(r, [200, 97]);
  const w = randTensor(r, [45, 97]);
  const layer = LinearF32.fromFloat(w);
  const threads = backends().cpu.threads;
  const all = layer.forwardSync(x);
  for (const n of [1, 7]) {
    setThreads(n);
    const other = layer.forwardSync(x);
    setThreads(threads);
    t.same(other.data, all.data, `${n} threads`);
  }
  t.end();
});

t.test('leading dimensions are kept; empty inputs give empty outputs', async (t) => {
  const r = rng(3);
  const w = randTensor(r, [5, 8]);
  const layer = LinearF32.fromFloat(w);
  const x = randTensor(r, [2, 3, 8]);
  const y = await layer.forward(x);
  t.same(y.shape, [2, 3, 5]);
  t.same(y.data, layer.forwardSync(x.reshape([6, 8])).data);
  const empty = await layer.forward(Tensor.zeros('float32', [0, 8]));
  t.same(empty.shape, [0, 5]);
  t.equal(empty.data.length, 0);
  t.same(layer.forwardSync(Tensor.zeros('float32', [2, 0, 8])).shape, [2, 0, 5]);
  t.same(layer.forwardSync(randTensor(r, [8])).shape, [5]);
});

t.test('matmul takes a Tensor or weights packed once', async (t) => {
  const r = rng(4);
  const x = randTensor(r, [9, 20]);
  const w = randTensor(r, [11, 20]);
  const bias = randTensor(r, [11]);
  const packed = packWeights(w);
  t.ok(packed instanceof PackedWeights);
  t.equal(packed.kind, 'float32');
  t.equal(packed.bytes, 16 * 20 * 4);
  const a = await matmul(x, w, { bias });
  const b = await matmul(x, packed, { bias });
  t.same(a.data, b.data);
  t.same(matmulSync(x, packed, { bias }).data, a.data);
  t.equal(LinearF32.fromFloat(w).weightBytes, 16 * 20 * 4);
});

t.test('bad inputs are TypeError/RangeError naming the argument', async (t) => {
  const r = rng(5);
  const w = randTensor(r, [4, 6]);
  const layer = LinearF32.fromFloat(w);
  t.throws(() => layer.forwardSync(randTensor(r, [3, 5])), { name: 'RangeError', message: /last dimension of x to be 6/ });
  t.throws(() => layer.forwardSync(Tensor.zeros('int8', [3, 6]) as never), { name: 'TypeError', message: /x to have dtype float32/ });
  t.throws(() => layer.forwardSync(new Float32Array(6) as never), { name: 'TypeError', message: /Tensor for x/ });
  await t.rejects(layer.forward(randTensor(r, [2, 7])), { name: 'RangeError', message: /inFeatures/ });
  t.throws(() => LinearF32.fromFloat(randTensor(r, [4])), { name: 'RangeError', message: /weight to have shape/ });
  t.throws(() => LinearF32.fromFloat(Tensor.zeros('float32', [0, 3])), { name: 'RangeError', message: /weight/ });
  t.throws(() => LinearF32.fromFloat(w, { bias: new Float32Array(3) }), { name: 'RangeError', message: /bias/ });
  t.throws(() => LinearF32.fromFloat(w, { bias: [1, 2, 3, 4] as never }), { name: 'TypeError', message: /bias/ });
  const nanW = randTensor(r, [2, 3]);
  nanW.data[4] = NaN;
  t.throws(() => LinearF32.fromFloat(nanW), { name: 'RangeError', message: /weight.*element 4/ });
  t.throws(() => matmulSync(randTensor(r, [2, 6]), 'w' as never), { name: 'TypeError', message: /for w/ });
  const q = QuantizedLinear.fromFloat(w);
  t.throws(() => matmulSync(randTensor(r, [2, 6]), q.packed), { name: 'TypeError', message: /packed for a quantized layer/ });
  t.throws(() => new (PackedWeights as never as new (...a: unknown[]) => unknown)(Symbol('x'), 'float32', 1, 1, null), TypeError);
});
