import t from 'tap';
import { readFileSync } from 'node:fs';
import {
  HELD_OUT_SEED, SHAPES_BACKGROUND, SHAPES_COLOURS, SHAPES_FRAMES, SHAPES_SIZE, depthToSpace, heldOutScenes, latentsToRgb, renderScene, rgbToLatents,
  shapeScene, spaceToDepth, type ShapeScene,
} from '../../lib/data/shapes.js';
import { encodePrompt } from '../../lib/model/weights.js';
import { Rng } from '../../lib/model/random.js';
import { Tensor } from '../../lib/tensor/tensor.js';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/trained/shapes.json', import.meta.url), 'utf8')) as {
  seed: number; caption: string; colour: number; shape: number; motion: number; radius: number; change: { colour: number; frame: number } | null;
  centres: [number, number][]; pixels: [number, number, number, number, number][]; frameSums: number[]; latentSum: number; context: number[][];
}[];

const at = (x: Tensor, f: number, c: number, y: number, xx: number) => x.data[((f * x.shape[1] + c) * x.shape[2] + y) * x.shape[3] + xx];

t.test('the Python mirror (training/shapes.py) agrees with the generator', (t) => {
  t.ok(fixture.length >= 10);
  for (const f of fixture) {
    const s = shapeScene(f.seed);
    t.equal(s.caption, f.caption, `caption of seed ${f.seed}`);
    t.same([s.colour, s.shape, s.motion, s.change], [f.colour, f.shape, f.motion, f.change], `parameters of seed ${f.seed}`);
    t.equal(s.radius, f.radius);
    t.same(s.centres, f.centres, `centres of seed ${f.seed}, exactly`);
    const rgb = renderScene(s);
    for (const [fr, ch, y, x, v] of f.pixels) t.equal(at(rgb, fr, ch, y, x), Math.fround(v), `pixel ${fr} ${ch} ${y} ${x} of seed ${f.seed}`);
    for (let fr = 0; fr < SHAPES_FRAMES; fr++) {
      let sum = 0;
      for (let i = 0; i < 3 * SHAPES_SIZE * SHAPES_SIZE; i++) sum += rgb.data[fr * 3 * SHAPES_SIZE * SHAPES_SIZE + i];
      t.ok(Math.abs(sum - f.frameSums[fr]) < 1e-9 * Math.max(1, Math.abs(sum)), `frame ${fr} of seed ${f.seed}`);
    }
    const lat = rgbToLatents(rgb);
    let sum = 0;
    for (const v of lat.data) sum += v;
    t.ok(Math.abs(sum - f.latentSum) < 1e-6 * Math.max(1, Math.abs(sum)), `latents of seed ${f.seed}`);
    const ctx = encodePrompt(f.caption, { textLen: 8, textDim: 32 });
    for (let i = 0; i < f.context.length; i++) for (let j = 0; j < 32; j++) t.ok(Math.abs(ctx.data[i * 32 + j] - f.context[i][j]) < 1e-6, `context ${i} ${j}`);
  }
  t.end();
});

t.test('scenes: captions say what the parameters are, motions stay inside the frame', (t) => {
  const seen = new Set<string>();
  for (let seed = 0; seed < 400; seed++) {
    const s = shapeScene(seed);
    const words = s.caption.split(' ');
    t.equal(words[1], SHAPES_COLOURS[s.colour].name);
    t.equal(words[2], ['disc', 'square'][s.shape]);
    seen.add(words[3] === 'bouncing' ? 'bouncing' : words.slice(3, 5).join(' '));
    t.ok(s.radius >= 3.5 && s.radius < 4.5);
    const lo = s.radius, hi = SHAPES_SIZE - s.radius;
    t.ok(s.centres.every(([x, y]) => x >= lo - 1e-9 && x <= hi + 1e-9 && y >= lo - 1e-9 && y <= hi + 1e-9), `seed ${seed} stays inside`);
    t.equal(s.centres.length, SHAPES_FRAMES);
    if (s.change) {
      t.not(s.change.colour, s.colour);
      t.equal(s.change.frame, 12);
      t.equal(words.slice(-2).join(' '), `turning ${SHAPES_COLOURS[s.change.colour].name}`);
    } else t.notOk(s.caption.includes('turning'));
    const dx = s.centres.slice(1).map((c, i) => c[0] - s.centres[i][0]);
    const dy = s.centres.slice(1).map((c, i) => c[1] - s.centres[i][1]);
    if (s.motion < 4) {
      const step = [[-1, 0], [1, 0], [0, -1], [0, 1]][s.motion];
      const speed = Math.abs(dx[0] + dy[0]);
      t.ok(speed >= 0.8 && speed < 1, 'speed in [0.8, 1)');
      for (let i = 0; i < dx.length; i++) {
        t.ok(Math.abs(dx[i] - step[0] * speed) < 1e-9 && Math.abs(dy[i] - step[1] * speed) < 1e-9, 'constant velocity in the caption\'s direction');
      }
      t.equal(words[3], 'moving');
    } else {
      t.equal(words[3], 'bouncing');
      // A side wall is met within the first 8 steps: a step shortened by the reflection, or the
      // first one that turns back (all other steps move |vx| across).
      const vx = Math.max(...dx.map(Math.abs));
      const hit = dx.findIndex((v, i) => Math.abs(v) < vx - 1e-9 || Math.sign(v) !== Math.sign(dx[0]) || (i > 0 && Math.sign(v) !== Math.sign(dx[i - 1])));
      t.ok(hit >= 3 && hit <= 5, `seed ${seed} meets the right wall within 6 frames (step ${hit})`);
      t.ok(dx[0] >= 1.6 && dx[0] < 2 && dy[0] >= 0.8 && dy[0] < 1.2, 'right and down, at the speeds drawn');
      t.ok(dx.every((v) => Math.abs(v) <= 2 + 1e-9) && dy.every((v) => Math.abs(v) <= 1.2 + 1e-9));
    }
  }
  t.same([...seen].sort(), ['bouncing', 'moving down', 'moving left', 'moving right', 'moving up'], 'all five motions occur');
  t.equal(heldOutScenes(2)[1].seed, HELD_OUT_SEED + 1);
  t.end();
});

t.test('rendering: coverage by hand', (t) => {
  const red = SHAPES_COLOURS[0].rgb, bg = SHAPES_BACKGROUND;
  const still = (c: [number, number]) => Array.from({ length: SHAPES_FRAMES }, () => c);
  const disc: ShapeScene = { seed: 0, caption: '', colour: 0, shape: 0, motion: 0, radius: 4, change: null, centres: still([10.5, 20.5]) };
  const d = renderScene(disc);
  // Pixel (x 10, y 20) has its centre on the disc's centre: fully covered.
  for (let c = 0; c < 3; c++) t.equal(at(d, 0, c, 20, 10), Math.fround(red[c]));
  // Pixel x 14 (centre 14.5) is 4 from the centre: coverage 4 + 0.5 - 4 = 0.5.
  for (let c = 0; c < 3; c++) t.equal(at(d, 0, c, 20, 14), Math.fround(0.5 * bg[c] + 0.5 * red[c]));
  // x 15 is 5 away: uncovered. The pixel (13, 23) is sqrt(3^2 + 3^2) = 4.243 away: coverage 0.257.
  for (let c = 0; c < 3; c++) t.equal(at(d, 0, c, 20, 15), Math.fround(bg[c]));
  const a = 4.5 - Math.sqrt(18);
  for (let c = 0; c < 3; c++) t.ok(Math.abs(at(d, 0, c, 23, 13) - (bg[c] * (1 - a) + red[c] * a)) < 1e-7);
  const square: ShapeScene = { ...disc, shape: 1, change: { colour: 2, frame: 5 } };
  const s = renderScene(square);
  // Half-side 0.886 * 4 = 3.544: the pixel 3 columns off is covered (3.544 + 0.5 - 3 > 1), 4 off by 0.044.
  for (let c = 0; c < 3; c++) t.equal(at(s, 0, c, 20, 13), Math.fround(red[c]));
  const e = 3.544 + 0.5 - 4;
  for (let c = 0; c < 3; c++) t.ok(Math.abs(at(s, 0, c, 20, 14) - (bg[c] * (1 - e) + red[c] * e)) < 1e-7);
  // The corner pixel (13, 23) is covered in both directions: a square, unlike the disc.
  for (let c = 0; c < 3; c++) t.equal(at(s, 0, c, 23, 13), Math.fround(red[c]));
  // The colour change from frame 5 on.
  const blue = SHAPES_COLOURS[2].rgb;
  for (let c = 0; c < 3; c++) {
    t.equal(at(s, 4, c, 20, 10), Math.fround(red[c]));
    t.equal(at(s, 5, c, 20, 10), Math.fround(blue[c]));
  }
  t.end();
});

t.test('space-to-depth: exactly invertible, pixel_unshuffle order', (t) => {
  const rng = new Rng(5);
  const x = new Tensor('float32', [2, 3, 8, 12], rng.fillNormal(new Float32Array(2 * 3 * 8 * 12)));
  const z = spaceToDepth(x, 4);
  t.same(z.shape, [2, 48, 2, 3]);
  t.same(depthToSpace(z, 4).data, x.data, 'depthToSpace(spaceToDepth(x)) = x, bit for bit');
  // Pixel (4 y + i, 4 x + j) of colour c is channel 16 c + 4 i + j at (y, x).
  for (const [f, c, y, xx, i, j] of [[0, 0, 0, 0, 0, 0], [1, 2, 1, 2, 3, 1], [0, 1, 1, 0, 2, 3]]) {
    t.equal(at(z, f, 16 * c + 4 * i + j, y, xx), at(x, f, c, 4 * y + i, 4 * xx + j));
  }
  const w = spaceToDepth(new Tensor('float32', [1, 1, 4, 4], Float32Array.from({ length: 16 }, (_, k) => k)), 2);
  t.same(Array.from(w.data), [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15], 'a 2 x 2 block by hand');
  const rgb = renderScene(shapeScene(11));
  const lat = rgbToLatents(rgb);
  t.same(lat.shape, [21, 48, 8, 8]);
  const back = latentsToRgb(lat);
  let worst = 0;
  for (let k = 0; k < rgb.data.length; k++) worst = Math.max(worst, Math.abs(back.data[k] - rgb.data[k]));
  t.ok(worst < 1e-7, `pixels through latents and back (2 p - 1 rounding only): ${worst}`);
  t.throws(() => spaceToDepth(new Tensor('float32', [1, 1, 6, 6], new Float32Array(36)), 4), { name: 'RangeError' });
  t.end();
});
