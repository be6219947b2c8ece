// Wan's 3-D rotary embedding against a direct evaluation of the formula (cos/sin per pair in double),
// on every code path. Tolerance: |error| <= 1e-6 (|x[2i]| + |x[2i+1]|) per pair (float32 rotation of
// float32 inputs by double-precision angles rounded to float32).
import t from 'tap';
import { rope3d, rope3dSync, ropeSplit, Tensor } from '../../../lib/index.js';
import { assertClose, isas, randomTensor, withIsa } from './helpers.js';

function ropeRef(x: Float32Array, grid: number[], heads: number, d: number, startFrame: number, theta = 10000): Float64Array {
  const [frames, h, w] = grid;
  const sixth = Math.floor(d / 6);
  const parts = [d - 4 * sixth, 2 * sixth, 2 * sixth];
  const out = new Float64Array(x.length);
  let n = 0;
  for (let f = 0; f < frames; f++) {
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const pos = [startFrame + f, r, c];
        for (let head = 0; head < heads; head++) {
          let base = (n * heads + head) * d;
          for (let k = 0; k < 3; k++) {
            const p = parts[k];
            for (let i = 0; i < p / 2; i++) {
              const angle = pos[k] * Math.pow(theta, (-2 * i) / p);
              const a = x[base + 2 * i];
              const b = x[base + 2 * i + 1];
              out[base + 2 * i] = a * Math.cos(angle) - b * Math.sin(angle);
              out[base + 2 * i + 1] = a * Math.sin(angle) + b * Math.cos(angle);
            }
            base += p;
          }
        }
        n++;
      }
    }
  }
  return out;
}

function pairTolerance(x: Float32Array): Float64Array {
  const tol = new Float64Array(x.length);
  for (let i = 0; i < x.length; i += 2) tol[i] = tol[i + 1] = 1e-6 * (Math.abs(x[i]) + Math.abs(x[i + 1]));
  return tol;
}

t.test('ropeSplit follows Wan', (t) => {
  t.same(ropeSplit(128), [44, 42, 42]);
  t.same(ropeSplit(64), [24, 20, 20]);
  t.same(ropeSplit(12), [4, 4, 4]);
  t.same(ropeSplit(6), [2, 2, 2]);
  t.same(ropeSplit(14), [6, 4, 4]);
  t.throws(() => ropeSplit(7), { name: 'RangeError', message: /headDim/ });
  t.throws(() => ropeSplit(4), { name: 'RangeError', message: /headDim/ });
  t.end();
});

// (grid, heads, headDim, startFrame): odd grids, head dims with and without vector tails.
const CASES: [number[], number, number, number][] = [
  [[1, 1, 1], 1, 6, 0],
  [[3, 5, 7], 3, 12, 0],
  [[3, 4, 4], 4, 64, 6],
  [[2, 3, 5], 2, 128, 18],
  [[1, 7, 3], 5, 14, 1],
  [[3, 8, 8], 4, 64, 1021],
  [[2, 6, 13], 12, 128, 3],
];

for (const isa of isas()) {
  t.test(`rope3d matches the Wan formula (${isa})`, async (t) => {
    await withIsa(isa, async () => {
      let seed = 1;
      for (const [grid, heads, d, startFrame] of CASES) {
        const tokens = grid[0] * grid[1] * grid[2];
        const x = randomTensor([tokens, heads, d], seed++, 2);
        const tag = `grid ${grid.join('x')}, ${heads}x${d}, start ${startFrame}`;
        const ref = ropeRef(x.data, grid, heads, d, startFrame);
        assertClose(t, (await rope3d(x, { grid: grid as [number, number, number], startFrame })).data, ref, 0, pairTolerance(x.data), tag);
        const flat = new Tensor('float32', [tokens, heads * d], x.data);
        assertClose(t, rope3dSync(flat, { grid: grid as [number, number, number], startFrame, heads }).data, ref, 0, pairTolerance(x.data), `${tag} as [tokens, dim]`);
      }
      const x = randomTensor([2 * 3 * 4, 2, 12], 50);
      assertClose(t, rope3dSync(x, { grid: [2, 3, 4], theta: 500 }).data, ropeRef(x.data, [2, 3, 4], 2, 12, 0, 500), 0, pairTolerance(x.data), 'theta 500');
    });
  });
}

t.test('rope3d: chunk positions, norms and in place', async (t) => {
  // A chunk at startFrame s is rotated like frames s.. of the whole video.
  const video = randomTensor([6 * 2 * 3, 2, 12], 7);
  const whole = rope3dSync(video, { grid: [6, 2, 3] });
  const chunk = new Tensor('float32', [3 * 2 * 3, 2, 12], video.data.slice(3 * 6 * 24));
  const rotated = rope3dSync(chunk, { grid: [3, 2, 3], startFrame: 3 });
  t.same(Array.from(rotated.data), Array.from(whole.data.slice(3 * 6 * 24)), 'chunk 2 equals frames 3..5 of the whole video');
  // Rotations keep each pair's length.
  let worst = 0;
  for (let i = 0; i < video.size; i += 2) {
    const a = Math.hypot(video.data[i], video.data[i + 1]);
    const b = Math.hypot(whole.data[i], whole.data[i + 1]);
    worst = Math.max(worst, Math.abs(a - b) / Math.max(a, 1e-30));
  }
  t.ok(worst < 1e-6, `pair norms preserved (worst ${worst.toExponential(2)})`);
  // Position 0 everywhere (one token at the origin) is the identity.
  const origin = randomTensor([1, 3, 12], 8);
  t.same(Array.from(rope3dSync(origin, { grid: [1, 1, 1] }).data), Array.from(origin.data), 'identity at position 0');
  const copy = new Tensor('float32', video.shape, video.data.slice());
  t.equal(await rope3d(copy, { grid: [6, 2, 3], out: copy }), copy, 'in place returns x');
  t.same(Array.from(copy.data), Array.from(whole.data), 'in place equals out of place');
  t.same(rope3dSync(Tensor.zeros('float32', [0, 2, 12]), { grid: [0, 4, 4] }).shape, [0, 2, 12], 'no tokens');
});

t.test('rope3d rejects bad input naming the argument', async (t) => {
  const x = Tensor.zeros('float32', [12, 2, 12]);
  const grid: [number, number, number] = [1, 3, 4];
  t.throws(() => rope3dSync(Tensor.zeros('float32', [12, 2, 9]), { grid }), { name: 'RangeError', message: /head dimension.*x/ });
  t.throws(() => rope3dSync(Tensor.zeros('float32', [12, 2, 4]), { grid }), { name: 'RangeError', message: /head dimension.*x/ });
  t.throws(() => rope3dSync(Tensor.zeros('float32', [12, 2, 12]), { grid: [2, 3, 4] }), { name: 'RangeError', message: /options\.grid/ });
  t.throws(() => rope3dSync(x, { grid: [1, 3] as never }), { name: 'TypeError', message: /options\.grid/ });
  t.throws(() => rope3dSync(x, { grid: [1, 3, 4.5] as never }), { name: 'TypeError', message: /options\.grid\[2\]/ });
  t.throws(() => rope3dSync(x, { grid: [1, -3, -4] }), { name: 'RangeError', message: /options\.grid\[1\]/ });
  t.throws(() => rope3dSync(x, { grid, startFrame: -1 }), { name: 'RangeError', message: /options\.startFrame/ });
  t.throws(() => rope3dSync(x, { grid, theta: NaN }), { name: 'RangeError', message: /options\.theta/ });
  t.throws(() => rope3dSync(x, { grid, heads: 3 }), { name: 'RangeError', message: /options\.heads/ });
  t.throws(() => rope3dSync(Tensor.zeros('float32', [12, 24]), { grid }), { name: 'TypeError', message: /options\.heads/ });
  t.throws(() => rope3dSync(Tensor.zeros('float32', [12, 24]), { grid, heads: 5 }), { name: 'RangeError', message: /options\.heads/ });
  t.throws(() => rope3dSync(Tensor.zeros('float32', [12]), { grid }), { name: 'RangeError', message: /x/ });
  t.throws(() => rope3dSync(x, undefined as never), { name: 'TypeError', message: /options/ });
  t.throws(() => rope3dSync(x, { grid, out: Tensor.zeros('float32', [12, 24]) }), { name: 'RangeError', message: /options\.out/ });
  await t.rejects(rope3d(Tensor.zeros('int32', [12, 2, 12]), { grid }), { name: 'TypeError', message: /x/ });
});
