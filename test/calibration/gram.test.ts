// Weighted X^T X against a triple loop, within the stated float32-block tolerance.
import t from 'tap';
import { Gram, Tensor, gramAccumulate, gramAccumulateSync } from '../../lib/index.js';
import { firstDiff, gaussian, onEveryIsa, onEveryIsaAsync } from './helpers.js';

/** Exact-ish reference (float64) and the sum of |terms| that scales the allowed error. */
function refGram(x: Float32Array, rows: number, cols: number, w: (r: number) => number) {
  const h = new Float64Array(cols * cols);
  const abs = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++) {
    const wr = w(r);
    for (let i = 0; i < cols; i++) {
      const a = wr * x[r * cols + i];
      for (let j = 0; j < cols; j++) {
        const v = a * x[r * cols + j];
        h[i * cols + j] += v;
        abs[i * cols + j] += Math.abs(v);
      }
    }
  }
  return { h, abs };
}

// The stated bound: float32 sums within blocks of 256 rows, so about 256 * 2^-24 relative to the
// sum of |terms| (we allow that bound, not the typical error).
function withinTolerance(got: Float64Array, ref: { h: Float64Array; abs: Float64Array }, rows: number): number {
  const k = Math.min(rows, 256) * 2 ** -24;
  for (let i = 0; i < got.length; i++) if (!(Math.abs(got[i] - ref.h[i]) <= k * ref.abs[i])) return i;
  return -1;
}

t.test('matches a triple loop for awkward shapes (tiles of 6 x 16 with tails), weighted and not', async (t) => {
  const shapes: Array<[number, number]> = [[1, 1], [1, 7], [3, 5], [7, 17], [11, 6], [300, 16], [257, 33], [513, 97], [100, 385], [40, 800]];
  await onEveryIsaAsync(async (isa) => {
    for (const [rows, cols] of shapes) {
      const x = gaussian(rows * cols, rows * 7 + cols, 1.5);
      const rw = Array.from({ length: rows }, (_, r) => 0.25 + (r % 7) * 0.5);
      const g = await gramAccumulate(new Tensor('float32', [rows, cols], x), { weight: 2, rowWeights: rw });
      const ref = refGram(x, rows, cols, (r) => 2 * rw[r]);
      t.equal(withinTolerance(g.matrix, ref, rows), -1, `${isa} [${rows}, ${cols}] weighted`);
      const plain = gramAccumulateSync(new Tensor('float32', [rows, cols], x));
      t.equal(withinTolerance(plain.matrix, refGram(x, rows, cols, () => 1), rows), -1, `${isa} [${rows}, ${cols}]`);
      t.equal(plain.rows, rows);
      t.equal(plain.weightSum, rows);
      // Symmetric, exactly.
      let sym = true;
      for (let i = 0; i < cols && sym; i++) for (let j = 0; j < i; j++) if (g.matrix[i * cols + j] !== g.matrix[j * cols + i]) sym = false;
      t.ok(sym, 'symmetric');
    }
  });
});

t.test('the scalar path is float64 throughout (tight tolerance)', (t) => {
  onEveryIsa((isa) => {
    if (isa !== 'scalar') return;
    const rows = 700;
    const cols = 45;
    const x = gaussian(rows * cols, 5);
    const g = gramAccumulateSync(new Tensor('float32', [rows, cols], x));
    const ref = refGram(x, rows, cols, () => 1);
    t.equal(Array.from(g.matrix).findIndex((v, i) => Math.abs(v - ref.h[i]) > 1e-12 * ref.abs[i]), -1);
  });
  t.end();
});

t.test('accumulating two halves, or merging two accumulators, equals one pass', async (t) => {
  const rows = 600;
  const cols = 70;
  const x = gaussian(rows * cols, 21);
  const whole = gramAccumulateSync(new Tensor('float32', [rows, cols], x), { weight: 1.5 });
  const g = new Gram(cols);
  // Split at a multiple of the 256-row block: the same float32 block sums, so exact equality.
  await g.accumulate(new Tensor('float32', [256, cols], x.subarray(0, 256 * cols)), { weight: 1.5 });
  await g.accumulate(new Tensor('float32', [rows - 256, cols], x.subarray(256 * cols)), { weight: 1.5 });
  t.equal(firstDiff(g.matrix, whole.matrix), -1, 'two accumulations');
  const a = gramAccumulateSync(new Tensor('float32', [256, cols], x.subarray(0, 256 * cols)), { weight: 1.5 });
  const b = gramAccumulateSync(new Tensor('float32', [rows - 256, cols], x.subarray(256 * cols)), { weight: 1.5 });
  a.merge(b);
  t.equal(firstDiff(a.matrix, whole.matrix, (p, q) => Math.abs(p - q) <= 1e-12 * Math.max(1, Math.abs(q))), -1, 'merge');
  t.equal(a.rows, rows);
  t.equal(a.weightSum, 1.5 * rows);
  // Any split stays within the tolerance.
  const c = gramAccumulateSync(new Tensor('float32', [101, cols], x.subarray(0, 101 * cols)), { weight: 1.5 });
  c.merge(gramAccumulateSync(new Tensor('float32', [rows - 101, cols], x.subarray(101 * cols)), { weight: 1.5 }));
  t.equal(withinTolerance(c.matrix, refGram(x, rows, cols, () => 1.5), 256), -1, 'odd split');
  t.throws(() => a.merge(new Gram(cols + 1)), RangeError);
});

t.test('3-D input is rows of the last dimension; mean(); JSON round trip', async (t) => {
  const x = gaussian(2 * 5 * 12, 4);
  const g = await gramAccumulate(new Tensor('float32', [2, 5, 12], x));
  const flat = gramAccumulateSync(new Tensor('float32', [10, 12], x));
  t.equal(firstDiff(g.matrix, flat.matrix), -1);
  const m = g.mean();
  t.equal(m[0], g.matrix[0] / 10);
  const back = Gram.fromJSON(JSON.parse(JSON.stringify(g)));
  t.equal(firstDiff(back.matrix, g.matrix), -1);
  t.same([back.rows, back.weightSum, back.cols], [10, 10, 12]);
  t.throws(() => new Gram(3).mean(), RangeError);
});

t.test('accumulations into one Gram queue up', async (t) => {
  const g = new Gram(64);
  const x = new Tensor('float32', [512, 64], gaussian(512 * 64, 1));
  const runs = [g.accumulate(x), g.accumulate(x)];
  t.throws(() => g.accumulateSync(x), /still running/);
  await Promise.all(runs);
  const once = gramAccumulateSync(x);
  t.equal(firstDiff(g.matrix, once.matrix.map((v) => 2 * v), (a, b) => Math.abs(a - b) <= 1e-12 * Math.abs(b)), -1);
  t.equal(g.rows, 1024);
});
