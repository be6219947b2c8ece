// minMax / absMax / columnNorms against plain loops, on every code path, at awkward sizes.
import t from 'tap';
import { Tensor, type MinMaxPerAxis, absMax, absMaxSync, columnNorms, columnNormsSync, minMax, minMaxSync, setThreads, backends } from '../../lib/index.js';
import { close, firstDiff, gaussian, onEveryIsa, onEveryIsaAsync, refMinMax } from './helpers.js';

// Sizes around the vector width (8) and the 16-wide unrolled loop, plus sizes that split across threads.
const SHAPES: number[][] = [[1], [7], [8], [9], [15], [17], [33], [3, 5], [5, 3, 9], [2, 17, 3], [4, 1, 23], [31, 65], [200, 37], [3, 70001], [70001, 3], [2, 9, 4099]];

function withNaN(x: Float32Array, every: number): Float32Array {
  for (let i = 3; i < x.length; i += every) x[i] = NaN;
  return x;
}

t.test('minMax matches a loop for the whole tensor and every axis', (t) => {
  onEveryIsa((isa) => {
    SHAPES.forEach((shape, s) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const data = withNaN(gaussian(size, 100 + s, 3), 29);
      const x = new Tensor('float32', shape, data);
      const whole = minMaxSync(x);
      const ref = refMinMax(data, shape);
      t.same([whole.min, whole.max, whole.nanCount], [ref.min[0], ref.max[0], ref.nan], `${isa} [${shape}] whole`);
      for (let axis = 0; axis < shape.length; axis++) {
        const r = minMaxSync(x, { axis });
        const e = refMinMax(data, shape, axis);
        t.equal(firstDiff(r.min, e.min), -1, `${isa} [${shape}] axis ${axis} min`);
        t.equal(firstDiff(r.max, e.max), -1, `${isa} [${shape}] axis ${axis} max`);
        t.equal(r.nanCount, e.nan);
        const neg = minMaxSync(x, { axis: axis - shape.length });
        t.equal(firstDiff(neg.min, e.min), -1, `${isa} negative axis ${axis - shape.length}`);
      }
    });
  });
  t.end();
});

t.test('NaN policy: skipped and counted; an all-NaN slice reports NaN; infinities are values', (t) => {
  onEveryIsa((isa) => {
    const x = new Tensor('float32', [3, 10], new Float32Array(30));
    x.data.fill(NaN, 0, 10); // row 0 all NaN
    x.data.set([1, -Infinity, 2, 3, 4, 5, 6, 7, 8, 9], 10);
    x.data.set([0, 0, Infinity, 0, 0, 0, 0, 0, NaN, 0], 20);
    const r = minMaxSync(x, { axis: 0 });
    t.ok(Number.isNaN(r.min[0]) && Number.isNaN(r.max[0]), `${isa} all-NaN row`);
    t.same([r.min[1], r.max[1], r.min[2], r.max[2]], [-Infinity, 9, 0, Infinity]);
    t.equal(r.nanCount, 11);
    const all = new Tensor('float32', [20], new Float32Array(20).fill(NaN));
    const w = minMaxSync(all);
    t.ok(Number.isNaN(w.min) && Number.isNaN(w.max));
    t.equal(w.nanCount, 20);
  });
  t.end();
});

t.test('absMax is max(-min, max)', async (t) => {
  await onEveryIsaAsync(async (isa) => {
    const data = gaussian(3 * 1005, 7, 2);
    const x = new Tensor('float32', [3, 1005], data);
    const whole = await absMax(x);
    let ref = 0;
    for (const v of data) ref = Math.max(ref, Math.abs(v));
    t.equal(whole.absMax, ref, `${isa} whole`);
    const per = absMaxSync(x, { axis: 0 });
    for (let r = 0; r < 3; r++) {
      let m = 0;
      for (let j = 0; j < 1005; j++) m = Math.max(m, Math.abs(data[r * 1005 + j]));
      t.equal(per.absMax[r], m, `${isa} row ${r}`);
    }
  });
});

t.test('async minMax equals sync and does not block', async (t) => {
  const x = new Tensor('float32', [513, 129], gaussian(513 * 129, 11));
  const a = await minMax(x, { axis: 1 });
  const b = minMaxSync(x, { axis: 1 });
  t.equal(firstDiff(a.min, b.min), -1);
  t.equal(firstDiff(a.max, b.max), -1);
});

t.test('results do not depend on the thread count', (t) => {
  const before = backends().cpu.threads;
  const x = new Tensor('float32', [7, 30011], withNaN(gaussian(7 * 30011, 5), 1001));
  const ref = [minMaxSync(x, { axis: 0 }), minMaxSync(x, { axis: 1 }), minMaxSync(x)];
  try {
    for (const n of [1, 3]) {
      setThreads(n);
      const got = [minMaxSync(x, { axis: 0 }), minMaxSync(x, { axis: 1 }), minMaxSync(x)];
      for (let k = 0; k < 2; k++) {
        t.equal(firstDiff((got[k] as MinMaxPerAxis).min, (ref[k] as MinMaxPerAxis).min), -1, `${n} threads min`);
        t.equal(firstDiff((got[k] as MinMaxPerAxis).max, (ref[k] as MinMaxPerAxis).max), -1, `${n} threads max`);
      }
      t.same(got[2], ref[2], `${n} threads whole`);
    }
  } finally {
    setThreads(before);
  }
  t.end();
});

function refNorms(w: Float32Array, rows: number, cols: number): number[] {
  const out = new Array<number>(cols).fill(0);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j] += w[i * cols + j] * w[i * cols + j];
  return out.map(Math.sqrt);
}

t.test('columnNorms matches a float64 loop (relative 1e-12)', async (t) => {
  const shapes = [[1, 1], [3, 7], [5, 9], [17, 31], [64, 300], [257, 129], [9, 5000], [4000, 9]];
  await onEveryIsaAsync(async (isa) => {
    for (const [rows, cols] of shapes) {
      const w = gaussian(rows * cols, rows * 31 + cols, 0.05);
      const got = await columnNorms(new Tensor('float32', [rows, cols], w));
      const ref = refNorms(w, rows, cols);
      t.ok(ref.every((v, j) => close(got[j], v, 1e-12)), `${isa} [${rows}, ${cols}]`);
      t.equal(firstDiff(columnNormsSync(new Tensor('float32', [rows, cols], w)), got), -1);
    }
  });
});

t.test('columnNorms stays accurate at 9000 x 9000 scale sums', (t) => {
  // A column of 9000 equal values: the exact norm is 9000^0.5 * v, far beyond float32 summation accuracy.
  const rows = 9000;
  const cols = 3;
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    w[i * cols] = 0.1;
    w[i * cols + 1] = i % 2 ? 1e-3 : 1e3;
    w[i * cols + 2] = 1;
  }
  const got = columnNormsSync(new Tensor('float32', [rows, cols], w));
  const v = Math.fround(0.1);
  t.ok(close(got[0], Math.sqrt(rows * v * v), 1e-13));
  t.ok(close(got[1], Math.sqrt((rows / 2) * (1e6 + Math.fround(1e-3) ** 2)), 1e-13));
  t.equal(got[2], Math.sqrt(rows));
  t.end();
});
