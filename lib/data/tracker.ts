// A tracker for the moving-shapes videos: finds the object in decoded RGB frames (pixels far from
// the plain background), its colour (nearest palette colour of its core pixels), its centroid and
// its fill of its bounding box (disc or square), and checks a caption against what it found. It is
// the evidence that the embedded default learned what its captions say: a person looking at the
// frames would accept the same checks.
import { Tensor } from '../tensor/tensor.js';
import { describe } from '../util/validate.js';
import { SHAPES_BACKGROUND, SHAPES_COLOURS, SHAPES_DIRECTIONS, SHAPES_KINDS } from './shapes.js';

/** What the tracker saw in one frame (null fields when no object was found). */
export interface FrameTrack {
  /** Pixels counted as object (RGB distance to the background above TRACKER.objectDistance). */
  pixels: number;
  /** Centroid (x, y) in pixels of the object pixels (pixel i spans [i, i + 1]); null when fewer than TRACKER.minPixels. */
  centre: [number, number] | null;
  /** Index into SHAPES_COLOURS of the palette colour nearest the mean of the core pixels; null when none. */
  colour: number | null;
  /** Object pixels over the area of their bounding box: about 0.79 for a disc, 1 for a square. */
  fill: number | null;
}

/** Thresholds of the tracker (RGB distances in [0, 1] units, pixel counts, pixels of motion). */
export const TRACKER = Object.freeze({
  /** A pixel belongs to the object when its RGB distance to the background exceeds this. */
  objectDistance: 0.3,
  /** Core pixels (the colour is read from them) are farther from the background than this. */
  coreDistance: 0.6,
  /** Fewer object pixels than this: no object in the frame. */
  minPixels: 6,
  /** Fill above this is a square, below a disc. */
  squareFill: 0.89,
  /** Frames read for the colour at the start and at the end of a video. */
  colourFrames: 6,
  /** A straight motion moves at least this far along its direction, first 3 frames to last 3. */
  minTravel: 6,
  /** ... and at least this many times farther along than across. */
  alongOverAcross: 2,
  /** A bounce: the centroid goes at least this far out and back along x or y. */
  bounce: 3,
  /** The object must be found in at least this share of the frames. */
  minFound: 0.8,
});

/** What a caption of the moving-shapes data says. */
export interface Caption {
  colour: number;
  shape: number;
  motion: 'left' | 'right' | 'up' | 'down' | 'bouncing';
  /** The colour it turns into, when the caption says "turning <colour>". */
  turning: number | null;
}

/** Reads a caption of the moving-shapes data ("a red disc moving left turning blue"); null if it is not one. */
export function parseCaption(caption: string): Caption | null {
  const m = /^a (\w+) (\w+) (bouncing|moving (left|right|up|down))(?: turning (\w+))?$/.exec(caption.trim().toLowerCase());
  if (!m) return null;
  const colour = SHAPES_COLOURS.findIndex((c) => c.name === m[1]);
  const shape = SHAPES_KINDS.indexOf(m[2] as 'disc' | 'square');
  const turning = m[5] === undefined ? null : SHAPES_COLOURS.findIndex((c) => c.name === m[5]);
  if (colour < 0 || shape < 0 || turning === -1) return null;
  return { colour, shape, motion: (m[4] ?? 'bouncing') as Caption['motion'], turning };
}

/**
 * Tracks the object in RGB frames [F, 3, H, W] (values in [0, 1]; decoded latents may overshoot and
 * are clamped).
 *
 * @example
 * const track = trackFrames(latentsToRgb(video));
 */
export function trackFrames(rgb: Tensor): FrameTrack[] {
  if (!(rgb instanceof Tensor) || rgb.dtype !== 'float32' || rgb.rank !== 4 || rgb.shape[1] !== 3) {
    throw new TypeError(`Expected a float32 Tensor [frames, 3, h, w] of RGB frames for rgb but received ${describe(rgb)}`);
  }
  const [F, , H, W] = rgb.shape;
  const d = rgb.data as Float32Array;
  const bg = SHAPES_BACKGROUND;
  const out: FrameTrack[] = [];
  for (let f = 0; f < F; f++) {
    let n = 0, sx = 0, sy = 0, core = 0;
    let minX = W, maxX = -1, minY = H, maxY = -1;
    const sum = [0, 0, 0];
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const p = [0, 1, 2].map((c) => Math.min(1, Math.max(0, d[((f * 3 + c) * H + y) * W + x])));
        const dist = Math.hypot(p[0] - bg[0], p[1] - bg[1], p[2] - bg[2]);
        if (dist <= TRACKER.objectDistance) continue;
        n++;
        sx += x + 0.5;
        sy += y + 0.5;
        minX = Math.min(minX, x); maxX = Math.max(maxX, x);
        minY = Math.min(minY, y); maxY = Math.max(maxY, y);
        if (dist > TRACKER.coreDistance) {
          core++;
          for (let c = 0; c < 3; c++) sum[c] += p[c];
        }
      }
    }
    if (n < TRACKER.minPixels) {
      out.push({ pixels: n, centre: null, colour: null, fill: null });
      continue;
    }
    let colour: number | null = null;
    if (core > 0) {
      const mean = sum.map((s) => s / core);
      let best = Infinity;
      SHAPES_COLOURS.forEach((c, i) => {
        const e = Math.hypot(mean[0] - c.rgb[0], mean[1] - c.rgb[1], mean[2] - c.rgb[2]);
        if (e < best) { best = e; colour = i; }
      });
    }
    out.push({ pixels: n, centre: [sx / n, sy / n], colour, fill: n / ((maxX - minX + 1) * (maxY - minY + 1)) });
  }
  return out;
}

/** The verdict of {@link checkCaption}: each part, and whether colour and motion both agree. */
export interface CaptionCheck {
  /** Colour(s) as captioned at the start (and at the end, after "turning"). */
  colour: boolean;
  /** The centroid's motion as captioned (direction, or a bounce). */
  motion: boolean;
  /** The shape as captioned (disc or square, from the fill). */
  shape: boolean;
  /** The object was found in enough frames. */
  found: boolean;
  /** found && colour && motion: the caption's object and its motion are in the video. */
  agrees: boolean;
  /** What was measured: start and end colours, displacement (x, y) first 3 to last 3 frames, mean fill. */
  measured: { startColour: string | null; endColour: string | null; displacement: [number, number] | null; fill: number | null };
}

/**
 * Checks a track against a caption: the majority colour of the first TRACKER.colourFrames frames
 * is the caption's colour, and that of the last ones is the colour it turns into (or the same one);
 * a straight motion moves at least TRACKER.minTravel pixels in its direction (mean centroid of the
 * first 3 frames to the last 3) and TRACKER.alongOverAcross times farther than across; a bouncing
 * object goes out and back by TRACKER.bounce pixels along x or y. The shape (fill of the bounding
 * box) is reported but not part of `agrees`.
 *
 * @example
 * checkCaption(trackFrames(latentsToRgb(video)), 'a red disc moving left').agrees;
 */
export function checkCaption(track: FrameTrack[], caption: string | Caption): CaptionCheck {
  const cap = typeof caption === 'string' ? parseCaption(caption) : caption;
  if (!cap) throw new RangeError(`Expected a caption of the moving-shapes data (such as 'a red disc moving left') but received ${describe(caption)}`);
  const F = track.length;
  const found = track.filter((t) => t.centre).length >= TRACKER.minFound * F;
  const majority = (frames: FrameTrack[]) => {
    const counts = new Map<number, number>();
    for (const t of frames) if (t.colour !== null) counts.set(t.colour, (counts.get(t.colour) ?? 0) + 1);
    let best: number | null = null, n = 0;
    for (const [c, k] of counts) if (k > n) { best = c; n = k; }
    return best;
  };
  const k = Math.min(TRACKER.colourFrames, F);
  const start = majority(track.slice(0, k));
  const end = majority(track.slice(F - k));
  const colour = start === cap.colour && end === (cap.turning ?? cap.colour);
  const centres = track.map((t) => t.centre).filter((c): c is [number, number] => c !== null);
  let motion = false;
  let displacement: [number, number] | null = null;
  if (centres.length >= 6) {
    const mean = (cs: [number, number][]) => [0, 1].map((a) => cs.reduce((s, c) => s + c[a], 0) / cs.length);
    const a = mean(centres.slice(0, 3)), b = mean(centres.slice(-3));
    displacement = [b[0] - a[0], b[1] - a[1]];
    if (cap.motion === 'bouncing') {
      motion = [0, 1].some((axis) => {
        const s = centres.map((c) => c[axis]);
        const first = s[0], last = s[s.length - 1];
        const hi = Math.max(...s), lo = Math.min(...s);
        return (hi - first >= TRACKER.bounce && hi - last >= TRACKER.bounce) || (first - lo >= TRACKER.bounce && last - lo >= TRACKER.bounce);
      });
    } else {
      const dir = SHAPES_DIRECTIONS.find((d) => d.name === cap.motion)!;
      const along = displacement[0] * dir.dx + displacement[1] * dir.dy;
      const across = Math.abs(displacement[0] * dir.dy - displacement[1] * dir.dx);
      motion = along >= TRACKER.minTravel && along >= TRACKER.alongOverAcross * across;
    }
  }
  const fills = track.map((t) => t.fill).filter((v): v is number => v !== null);
  const fill = fills.length ? fills.reduce((s, v) => s + v, 0) / fills.length : null;
  const shape = fill !== null && (fill > TRACKER.squareFill ? 1 : 0) === cap.shape;
  const name = (c: number | null) => (c === null ? null : SHAPES_COLOURS[c].name);
  return { colour, motion, shape, found, agrees: found && colour && motion, measured: { startColour: name(start), endColour: name(end), displacement, fill } };
}
