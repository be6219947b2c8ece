import t from 'tap';
import { SHAPES_BACKGROUND, SHAPES_COLOURS, latentsToRgb, renderScene, rgbToLatents, shapeScene } from '../../lib/data/shapes.js';
import { checkCaption, parseCaption, trackFrames } from '../../lib/data/tracker.js';
import { Tensor } from '../../lib/tensor/tensor.js';

/** Frames drawn by hand: a w x h block of one colour, its top-left corner at (x0 + vx f, y0 + vy f). */
function blockFrames(o: { frames: number; x0: number; y0: number; vx: number; vy: number; w: number; h: number; rgb: (f: number) => readonly number[] }): Tensor<'float32'> {
  const S = 32;
  const d = new Float32Array(o.frames * 3 * S * S);
  for (let f = 0; f < o.frames; f++) {
    for (let c = 0; c < 3; c++) d.fill(SHAPES_BACKGROUND[c], (f * 3 + c) * S * S, (f * 3 + c + 1) * S * S);
    const x0 = o.x0 + o.vx * f, y0 = o.y0 + o.vy * f;
    for (let y = y0; y < y0 + o.h; y++) for (let x = x0; x < x0 + o.w; x++) for (let c = 0; c < 3; c++) d[((f * 3 + c) * S + y) * S + x] = o.rgb(f)[c];
  }
  return new Tensor('float32', [o.frames, 3, S, S], d);
}

t.test('parseCaption', (t) => {
  t.same(parseCaption('a red disc moving left'), { colour: 0, shape: 0, motion: 'left', turning: null });
  t.same(parseCaption('a blue square bouncing turning yellow'), { colour: 2, shape: 1, motion: 'bouncing', turning: 3 });
  t.equal(parseCaption('a red fox running through snow'), null);
  t.equal(parseCaption('a purple disc moving left'), null);
  t.end();
});

t.test('a block moving right by one pixel a frame, drawn by hand', (t) => {
  const red = SHAPES_COLOURS[0].rgb;
  const rgb = blockFrames({ frames: 21, x0: 3, y0: 10, vx: 1, vy: 0, w: 5, h: 5, rgb: () => red });
  const track = trackFrames(rgb);
  t.equal(track.length, 21);
  // Pixels 3..7 (centres 3.5..7.5): centroid x 5.5; rows 10..14: y 12.5; moving +1 a frame.
  for (let f = 0; f < 21; f++) {
    t.same(track[f].centre, [5.5 + f, 12.5]);
    t.equal(track[f].pixels, 25);
    t.equal(track[f].colour, 0);
    t.equal(track[f].fill, 1);
  }
  const ok = checkCaption(track, 'a red square moving right');
  t.ok(ok.agrees && ok.shape);
  t.same(ok.measured.displacement, [18, 0], 'mean of the last 3 frames minus the first 3: 18 pixels right');
  t.notOk(checkCaption(track, 'a red square moving left').motion);
  t.notOk(checkCaption(track, 'a red square moving down').motion);
  t.notOk(checkCaption(track, 'a red square bouncing').motion, 'no turn: not bouncing');
  t.notOk(checkCaption(track, 'a green square moving right').colour);
  t.notOk(checkCaption(track, 'a red square moving right turning blue').colour, 'it never turns blue');
  t.notOk(checkCaption(track, 'a red disc moving right').shape, 'a full block is no disc');
  t.end();
});

t.test('a block that turns blue, and one that goes out and back', (t) => {
  const red = SHAPES_COLOURS[0].rgb, blue = SHAPES_COLOURS[2].rgb;
  const turning = trackFrames(blockFrames({ frames: 21, x0: 12, y0: 24, vx: 0, vy: -1, w: 4, h: 4, rgb: (f) => (f < 10 ? red : blue) }));
  const c = checkCaption(turning, 'a red square moving up turning blue');
  t.ok(c.colour && c.motion && c.agrees);
  t.notOk(checkCaption(turning, 'a red square moving up').colour, 'the end colour is not red');
  // Out and back along x: 2 pixels a frame for 10 frames right, then back.
  const S = 32;
  const frames = 21;
  const d = new Float32Array(frames * 3 * S * S);
  const xs: number[] = [];
  for (let f = 0; f < frames; f++) {
    const x0 = 4 + 2 * (f <= 10 ? f : 20 - f);
    xs.push(x0 + 2.5);
    for (let c2 = 0; c2 < 3; c2++) d.fill(SHAPES_BACKGROUND[c2], (f * 3 + c2) * S * S, (f * 3 + c2 + 1) * S * S);
    for (let y = 6; y < 11; y++) for (let x = x0; x < x0 + 5; x++) for (let c2 = 0; c2 < 3; c2++) d[((f * 3 + c2) * S + y) * S + x] = SHAPES_COLOURS[4].rgb[c2];
  }
  const back = trackFrames(new Tensor('float32', [frames, 3, S, S], d));
  t.same(back.map((b) => b.centre![0]), xs);
  t.ok(checkCaption(back, 'a cyan square bouncing').agrees);
  t.notOk(checkCaption(back, 'a cyan square moving right').motion, 'it ends where it started');
  t.end();
});

t.test('an empty video: nothing found, no agreement', (t) => {
  const track = trackFrames(blockFrames({ frames: 21, x0: 0, y0: 0, vx: 0, vy: 0, w: 0, h: 0, rgb: () => [0, 0, 0] }));
  t.ok(track.every((f) => f.centre === null && f.colour === null));
  const c = checkCaption(track, 'a red disc moving left');
  t.notOk(c.found || c.agrees);
  t.throws(() => checkCaption(track, 'a red fox'), { name: 'RangeError' });
  t.throws(() => trackFrames(new Tensor('float32', [1, 2, 4, 4], new Float32Array(32))), { name: 'TypeError' });
  t.end();
});

t.test('on the generator\'s own videos (through the latents): centroids as drawn, captions agree', (t) => {
  let agree = 0, shape = 0, n = 0;
  for (let seed = 100; seed < 160; seed++) {
    const s = shapeScene(seed);
    const track = trackFrames(latentsToRgb(rgbToLatents(renderScene(s))));
    // The centroid of a symmetric object is its centre (pixels at the edge count whole, so a
    // little off where the object is clipped by the pixel grid).
    let worst = 0;
    track.forEach((f, i) => {
      worst = Math.max(worst, Math.abs(f.centre![0] - s.centres[i][0]), Math.abs(f.centre![1] - s.centres[i][1]));
    });
    t.ok(worst < 0.5, `seed ${seed}: centroid within half a pixel of the drawn centre (${worst.toFixed(3)})`);
    const c = checkCaption(track, s.caption);
    agree += Number(c.agrees);
    shape += Number(c.shape);
    n++;
  }
  // A bouncing object that meets its wall in its first step may show no turn for a while; all
  // others must agree.
  t.ok(agree >= n - 2, `${agree}/${n} generated videos agree with their captions`);
  t.ok(shape >= n - 3, `${shape}/${n} shapes read right`);
  t.end();
});
