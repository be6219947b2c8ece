// Latent frames as pictures, for looking at videos: a fixed mapping of three latent channels to RGB,
// PNG frame strips (pngjs) and GIF animations (gifenc), written atomically.
import { createRequire } from 'node:module';
import { PNG } from 'pngjs';
import { expectTensor, type Tensor } from '../tensor/tensor.js';
import { expectInteger, expectObject } from '../util/validate.js';
import { writeFileAtomic } from './safetensors.js';

const require = createRequire(import.meta.url);
// gifenc ships CommonJS without type declarations; these are the three functions we use.
const gifenc = require('gifenc') as {
  GIFEncoder(): { writeFrame(index: Uint8Array, w: number, h: number, o: object): void; finish(): void; bytes(): Uint8Array };
  quantize(rgba: Uint8Array, colors: number): number[][];
  applyPalette(rgba: Uint8Array, palette: number[][]): Uint8Array;
};

/** RGBA frames of one size. */
export interface RgbaFrames {
  width: number;
  height: number;
  /** One RGBA buffer (width * height * 4 bytes) per frame. */
  frames: Uint8Array[];
}

export interface LatentImageOptions {
  /** The latent channels shown as red, green and blue. Default [0, 1, 2] (a single channel is shown grey). */
  channels?: number[];
  /** Value range per shown channel mapped to 0..255; default: the min/max of these latents. Pass
   * `channelRanges(reference)` to draw two videos on the same scale. */
  ranges?: [number, number][];
  /** Integer upscaling (nearest neighbour), since latents are small. Default 4. */
  scale?: number;
}

/**
 * The [min, max] of each of `channels` over a whole video [frames, channels, h, w].
 *
 * @example
 * const ranges = channelRanges(fpLatents);
 * const fp = latentsToFrames(fpLatents, { ranges }), q = latentsToFrames(qLatents, { ranges });
 */
export function channelRanges(latents: Tensor, channels: number[] = [0, 1, 2]): [number, number][] {
  const x = checkLatents(latents);
  const [frames, c, h, w] = x.shape;
  const chosen = checkChannels(channels, c);
  return chosen.map((ch) => {
    let lo = Infinity, hi = -Infinity;
    for (let f = 0; f < frames; f++) {
      const o = (f * c + ch) * h * w;
      for (let i = 0; i < h * w; i++) {
        const v = x.data[o + i];
        if (Number.isFinite(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    return lo <= hi ? [lo, hi] : [0, 1];
  });
}

/**
 * Maps latents [frames, channels, h, w] to RGBA frames: channel value v in range [lo, hi] becomes
 * round(255 (v - lo) / (hi - lo)), clamped; non-finite values become 0. Each pixel is repeated
 * scale x scale times.
 *
 * @example
 * const { width, height, frames } = latentsToFrames(latents, { scale: 8 });
 */
export function latentsToFrames(latents: Tensor, options: LatentImageOptions = {}): RgbaFrames {
  const x = checkLatents(latents);
  expectObject(options, 'options');
  const [frames, c, h, w] = x.shape;
  const channels = checkChannels(options.channels ?? (c >= 3 ? [0, 1, 2] : [0]), c);
  const ranges = options.ranges ?? channelRanges(x, channels);
  if (!Array.isArray(ranges) || ranges.length !== channels.length || !ranges.every((r) => Array.isArray(r) && r.length === 2 && Number.isFinite(r[0]) && Number.isFinite(r[1]) && r[0] <= r[1])) {
    throw new RangeError(`Expected options.ranges to hold ${channels.length} finite [lo, hi] pairs`);
  }
  const scale = expectInteger(options.scale ?? 4, 'options.scale', { min: 1, max: 64 });
  const width = w * scale, height = h * scale;
  const out: Uint8Array[] = [];
  for (let f = 0; f < frames; f++) {
    const rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const px = [0, 0, 0];
        for (let k = 0; k < 3; k++) {
          const idx = Math.min(k, channels.length - 1);
          const [lo, hi] = ranges[idx];
          const v = x.data[((f * c + channels[idx]) * h + i) * w + j];
          const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
          px[k] = Number.isFinite(t) ? Math.round(255 * Math.min(1, Math.max(0, t))) : 0;
        }
        for (let di = 0; di < scale; di++) {
          for (let dj = 0; dj < scale; dj++) {
            const o = ((i * scale + di) * width + j * scale + dj) * 4;
            rgba[o] = px[0];
            rgba[o + 1] = px[1];
            rgba[o + 2] = px[2];
            rgba[o + 3] = 255;
          }
        }
      }
    }
    out.push(rgba);
  }
  return { width, height, frames: out };
}

/**
 * Lays videos out as one picture: each video a row, its frames side by side, with a `gap` of white
 * pixels between tiles (e.g. FP above, quantized below).
 */
export function frameStrip(videos: RgbaFrames[], gap = 2): RgbaFrames {
  if (!Array.isArray(videos) || videos.length === 0) throw new RangeError('Expected at least one video for videos');
  const { width, height } = videos[0];
  const cols = Math.max(...videos.map((v) => v.frames.length));
  if (videos.some((v) => v.width !== width || v.height !== height)) throw new RangeError('Expected every video in videos to have the same frame size');
  expectInteger(gap, 'gap', { min: 0, max: 64 });
  const W = cols * width + (cols - 1) * gap, H = videos.length * height + (videos.length - 1) * gap;
  const rgba = new Uint8Array(W * H * 4).fill(255);
  videos.forEach((v, r) =>
    v.frames.forEach((frame, col) => {
      for (let i = 0; i < height; i++) {
        const dst = ((r * (height + gap) + i) * W + col * (width + gap)) * 4;
        rgba.set(frame.subarray(i * width * 4, (i + 1) * width * 4), dst);
      }
    }),
  );
  return { width: W, height: H, frames: [rgba] };
}

/** PNG bytes of one RGBA image. */
export function encodePng(rgba: Uint8Array, width: number, height: number): Uint8Array {
  checkRgba(rgba, width, height);
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return PNG.sync.write(png);
}

/** GIF bytes of an animation (one 256-colour palette for all frames, looping forever). */
export function encodeGif(video: RgbaFrames, delayMs = 250): Uint8Array {
  const { width, height, frames } = video;
  if (!frames?.length) throw new RangeError('Expected at least one frame in video.frames');
  frames.forEach((f) => checkRgba(f, width, height));
  expectInteger(delayMs, 'delayMs', { min: 0, max: 65535 });
  // One palette from all frames keeps colours steady across the animation.
  const all = new Uint8Array(frames.length * frames[0].length);
  frames.forEach((f, i) => all.set(f, i * f.length));
  const palette = gifenc.quantize(all, 256);
  const gif = gifenc.GIFEncoder();
  frames.forEach((f, i) => gif.writeFrame(gifenc.applyPalette(f, palette), width, height, { palette: i === 0 ? palette : undefined, delay: delayMs, repeat: 0 }));
  gif.finish();
  return gif.bytes();
}

/** Writes a PNG atomically. */
export async function writePng(file: string, rgba: Uint8Array, width: number, height: number): Promise<void> {
  await writeFileAtomic(file, encodePng(rgba, width, height));
}

/** Writes a GIF animation atomically. */
export async function writeGif(file: string, video: RgbaFrames, delayMs = 250): Promise<void> {
  await writeFileAtomic(file, encodeGif(video, delayMs));
}

function checkLatents(latents: Tensor): Tensor<'float32'> {
  const x = expectTensor(latents, 'latents', ['float32']);
  if (x.rank !== 4) throw new RangeError(`Expected latents of shape [frames, channels, height, width] but received [${x.shape.join(', ')}]`);
  return x;
}

function checkChannels(channels: number[], available: number): number[] {
  if (!Array.isArray(channels) || channels.length < 1 || channels.length > 3) throw new RangeError('Expected 1 to 3 channel indices for options.channels');
  channels.forEach((ch, i) => expectInteger(ch, `options.channels[${i}]`, { min: 0, max: available - 1 }));
  return channels;
}

function checkRgba(rgba: Uint8Array, width: number, height: number): void {
  expectInteger(width, 'width', { min: 1 });
  expectInteger(height, 'height', { min: 1 });
  if (!(rgba instanceof Uint8Array) || rgba.length !== width * height * 4) {
    throw new RangeError(`Expected ${width * height * 4} bytes of RGBA for a ${width}x${height} image`);
  }
}
