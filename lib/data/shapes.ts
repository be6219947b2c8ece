// The moving-shapes videos the embedded default was trained on: one coloured disc or square on a
// plain dark background, moving at constant velocity or bouncing off the walls, sometimes changing
// colour, with a caption built from its parameters ("a red disc moving left", "a blue square
// bouncing turning green"). Frames are 32 x 32 RGB; latents are 2 p - 1 under a 4 x 4
// space-to-depth (48 channels of 8 x 8), so decoding a latent video needs no learned VAE.
//
// This file is the specification: training/shapes.py mirrors it for the training script, and
// test/data/shapes.test.ts checks the two agree (a fixture written by the Python side). Every
// pixel is computed in float64 with +, -, *, /, sqrt, floor and comparisons only, so both sides
// give the same numbers.
import { Rng } from '../model/random.js';
import { Tensor } from '../tensor/tensor.js';
import { describe, expectInteger } from '../util/validate.js';

/** Frame width and height in pixels. */
export const SHAPES_SIZE = 32;
/** Frames per video: 7 chunks of 3 latent frames. */
export const SHAPES_FRAMES = 21;
/** The space-to-depth block: latents are [frames, 3 * 16, 8, 8]. */
export const SPACE_TO_DEPTH = 4;
/** The plain background, RGB in [0, 1]. */
export const SHAPES_BACKGROUND: readonly [number, number, number] = Object.freeze([0.1, 0.1, 0.12]) as readonly [number, number, number];

/** The palette: name and RGB in [0, 1]. */
export const SHAPES_COLOURS: readonly { name: string; rgb: readonly [number, number, number] }[] = Object.freeze([
  { name: 'red', rgb: [0.95, 0.15, 0.15] },
  { name: 'green', rgb: [0.15, 0.85, 0.2] },
  { name: 'blue', rgb: [0.2, 0.35, 1.0] },
  { name: 'yellow', rgb: [0.95, 0.9, 0.1] },
  { name: 'cyan', rgb: [0.1, 0.85, 0.95] },
  { name: 'magenta', rgb: [0.9, 0.2, 0.9] },
] as const);
export const SHAPES_KINDS: readonly ('disc' | 'square')[] = Object.freeze(['disc', 'square'] as const);
/** Directions of the straight motions: name and unit step in (x, y), y downwards. */
export const SHAPES_DIRECTIONS: readonly { name: 'left' | 'right' | 'up' | 'down'; dx: number; dy: number }[] = Object.freeze([
  { name: 'left', dx: -1, dy: 0 },
  { name: 'right', dx: 1, dy: 0 },
  { name: 'up', dx: 0, dy: -1 },
  { name: 'down', dx: 0, dy: 1 },
] as const);

/** The frame a colour change happens at (the first of chunk 4). */
export const CHANGE_FRAME = 12;

/** Training videos use seeds below 2^31; held-out ones start here. */
export const HELD_OUT_SEED = 2 ** 31;

/** The parameters of one video, and its caption. */
export interface ShapeScene {
  seed: number;
  caption: string;
  /** Index into SHAPES_COLOURS of the colour at the start. */
  colour: number;
  /** 0 disc, 1 square. */
  shape: number;
  /** 0..3 a straight motion (SHAPES_DIRECTIONS), 4 bouncing. */
  motion: number;
  /** Radius of the disc; a square has half-side 0.886 radius (the same area). */
  radius: number;
  /** A colour change: from frame `frame` on, the object has colour `colour`. */
  change: { colour: number; frame: number } | null;
  /** Centre (x, y) in pixels of every frame (pixel i spans [i, i + 1]). */
  centres: [number, number][];
}

/** x reflected into [lo, hi]: a ball bouncing between two walls. */
function fold(x: number, lo: number, hi: number): number {
  const L = hi - lo;
  const y = x - lo - 2 * L * Math.floor((x - lo) / (2 * L));
  return lo + (y <= L ? y : 2 * L - y);
}

/**
 * The scene of video `seed`: drawn from `new Rng(seed)` in this order: colour, shape, motion (five
 * equally likely: left, right, up, down, bouncing), radius in [3.5, 4.5), a colour change with
 * probability 1/4 (to another colour, from frame CHANGE_FRAME on), then the motion. A straight
 * motion has a speed in [0.8, 1) pixels per frame and starts 1 to 2 pixels from the wall it leaves,
 * within 2 pixels of the middle across; a bouncing one moves right at 1.6..2 and down at 0.8..1.2
 * pixels per frame from near the top right, and meets the right wall within 6 frames.
 *
 * Everything the caption does not say varies only a little: Self-Forcing's sampler re-noises the
 * model's estimate of the clean chunk with fresh noise between steps, and without step distillation
 * that estimate is the mean over what the caption leaves open; where that is much (any start
 * position, either bounce direction) the mean is a faint smear, and the sampler fades it into the
 * background. (A first training run on widely varying scenes did that.)
 *
 * @example
 * shapeScene(3).caption; // 'a cyan square moving right'
 */
export function shapeScene(seed: number): ShapeScene {
  expectInteger(seed, 'seed', { min: 0, max: 2 ** 32 - 1 });
  const rng = new Rng(seed);
  const colour = rng.below(SHAPES_COLOURS.length);
  const shape = rng.below(SHAPES_KINDS.length);
  const motion = rng.below(5);
  const radius = 3.5 + rng.uniform() * 1.0;
  let change: ShapeScene['change'] = null;
  if (rng.uniform() < 0.25) {
    const to = (colour + 1 + rng.below(SHAPES_COLOURS.length - 1)) % SHAPES_COLOURS.length;
    change = { colour: to, frame: CHANGE_FRAME };
  }
  const lo = radius, hi = SHAPES_SIZE - radius;
  const centres: [number, number][] = [];
  if (motion < 4) {
    const { dx, dy } = SHAPES_DIRECTIONS[motion];
    const speed = 0.8 + rng.uniform() * 0.2;
    const offset = 1 + rng.uniform();
    const across = SHAPES_SIZE / 2 + (rng.uniform() - 0.5) * 4;
    const start = dx + dy > 0 ? lo + offset : hi - offset;
    for (let f = 0; f < SHAPES_FRAMES; f++) {
      const a = start + (dx + dy) * speed * f;
      centres.push(dx !== 0 ? [a, across] : [across, a]);
    }
  } else {
    const vx = 1.6 + rng.uniform() * 0.4;
    const vy = 0.8 + rng.uniform() * 0.4;
    const x0 = hi - (7 + rng.uniform() * 2);
    const y0 = lo + 3 + rng.uniform() * 2;
    for (let f = 0; f < SHAPES_FRAMES; f++) centres.push([fold(x0 + vx * f, lo, hi), fold(y0 + vy * f, lo, hi)]);
  }
  const words = ['a', SHAPES_COLOURS[colour].name, SHAPES_KINDS[shape]];
  if (motion === 4) words.push('bouncing');
  else words.push('moving', SHAPES_DIRECTIONS[motion].name);
  if (change) words.push('turning', SHAPES_COLOURS[change.colour].name);
  return { seed, caption: words.join(' '), colour, shape, motion, radius, change, centres };
}

/**
 * The RGB frames of a scene, [21, 3, 32, 32] in [0, 1] (float64 arithmetic, stored as float32):
 * each pixel mixes the object's colour over the background by the object's coverage of it, for a
 * disc clamp(radius + 0.5 - distance, 0, 1) from the pixel's centre, for a square the product of
 * clamp(half + 0.5 - |offset|, 0, 1) over x and y.
 *
 * @example
 * const rgb = renderScene(shapeScene(0)); // Tensor float32 [21, 3, 32, 32]
 */
export function renderScene(scene: ShapeScene): Tensor<'float32'> {
  const S = SHAPES_SIZE;
  const out = new Float32Array(SHAPES_FRAMES * 3 * S * S);
  const r = scene.radius, half = r * 0.886;
  for (let f = 0; f < SHAPES_FRAMES; f++) {
    const [cx, cy] = scene.centres[f];
    const ci = scene.change && f >= scene.change.frame ? scene.change.colour : scene.colour;
    const col = SHAPES_COLOURS[ci].rgb;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        const px = x + 0.5, py = y + 0.5;
        let alpha: number;
        if (scene.shape === 0) {
          const dx = px - cx, dy = py - cy;
          alpha = clamp01(r + 0.5 - Math.sqrt(dx * dx + dy * dy));
        } else {
          alpha = clamp01(half + 0.5 - Math.abs(py - cy)) * clamp01(half + 0.5 - Math.abs(px - cx));
        }
        for (let ch = 0; ch < 3; ch++) out[((f * 3 + ch) * S + y) * S + x] = SHAPES_BACKGROUND[ch] * (1 - alpha) + col[ch] * alpha;
      }
    }
  }
  return new Tensor('float32', [SHAPES_FRAMES, 3, S, S], out);
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/**
 * RGB frames [F, 3, H, W] in [0, 1] to latents [F, 3 b^2, H / b, W / b] (b = SPACE_TO_DEPTH):
 * latent channel c b^2 + b i + j at (y, x) is 2 p - 1 of pixel (b y + i, b x + j) of colour c
 * (PyTorch's pixel_unshuffle order). Exactly invertible by latentsToRgb up to the rounding of
 * 2 p - 1; spaceToDepth / depthToSpace alone move values and are exact.
 *
 * @example
 * const latents = rgbToLatents(renderScene(shapeScene(0))); // [21, 48, 8, 8]
 */
export function rgbToLatents(rgb: Tensor): Tensor<'float32'> {
  const t = spaceToDepth(rgb);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = 2 * d[i] - 1;
  return t;
}

/** Latents [F, 3 b^2, h, w] back to RGB frames [F, 3, b h, b w] in [0, 1] ((x + 1) / 2, not clamped). */
export function latentsToRgb(latents: Tensor): Tensor<'float32'> {
  const t = depthToSpace(latents);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = (d[i] + 1) / 2;
  return t;
}

/** [F, C, H, W] to [F, C b^2, H / b, W / b], moving values only (pixel_unshuffle). */
export function spaceToDepth(x: Tensor, block = SPACE_TO_DEPTH): Tensor<'float32'> {
  const [F, C, H, W] = expect4d(x, 'x');
  expectInteger(block, 'block', { min: 1 });
  if (H % block || W % block) throw new RangeError(`Expected the frame size ${H} x ${W} of x to be a multiple of block ${block}`);
  const h = H / block, w = W / block, b2 = block * block;
  const src = x.data as Float32Array;
  const out = new Float32Array(src.length);
  for (let f = 0; f < F; f++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < block; i++)
        for (let j = 0; j < block; j++)
          for (let y = 0; y < h; y++)
            for (let xx = 0; xx < w; xx++) out[(((f * C + c) * b2 + i * block + j) * h + y) * w + xx] = src[((f * C + c) * H + y * block + i) * W + xx * block + j];
  return new Tensor('float32', [F, C * b2, h, w], out);
}

/** The inverse of spaceToDepth (pixel_shuffle): [F, C b^2, h, w] to [F, C, b h, b w]. */
export function depthToSpace(x: Tensor, block = SPACE_TO_DEPTH): Tensor<'float32'> {
  const [F, Cb, h, w] = expect4d(x, 'x');
  expectInteger(block, 'block', { min: 1 });
  const b2 = block * block;
  if (Cb % b2) throw new RangeError(`Expected the channels (${Cb}) of x to be a multiple of block^2 = ${b2}`);
  const C = Cb / b2, H = h * block, W = w * block;
  const src = x.data as Float32Array;
  const out = new Float32Array(src.length);
  for (let f = 0; f < F; f++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < block; i++)
        for (let j = 0; j < block; j++)
          for (let y = 0; y < h; y++)
            for (let xx = 0; xx < w; xx++) out[((f * C + c) * H + y * block + i) * W + xx * block + j] = src[(((f * C + c) * b2 + i * block + j) * h + y) * w + xx];
  return new Tensor('float32', [F, C, H, W], out);
}

function expect4d(x: Tensor, name: string): number[] {
  if (!(x instanceof Tensor) || x.dtype !== 'float32' || x.rank !== 4) throw new TypeError(`Expected a float32 Tensor [frames, channels, h, w] for ${name} but received ${describe(x)}`);
  return x.shape as number[];
}

/**
 * Held-out prompts and their scenes: the captions of videos HELD_OUT_SEED + i (no training video
 * has these seeds; the captions themselves come from the same small vocabulary as training's).
 *
 * @example
 * heldOutScenes(4).map((s) => s.caption);
 */
export function heldOutScenes(count: number, offset = 0): ShapeScene[] {
  expectInteger(count, 'count', { min: 0 });
  expectInteger(offset, 'offset', { min: 0 });
  return Array.from({ length: count }, (_, i) => shapeScene(HELD_OUT_SEED + offset + i));
}
