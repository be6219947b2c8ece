import t from 'tap';
import { createRequire } from 'node:module';
import { PNG } from 'pngjs';
import { Tensor, channelRanges, encodeGif, encodePng, frameStrip, latentsToFrames } from '../../lib/index.js';

const require = createRequire(import.meta.url);
const { GifReader } = require('omggif') as { GifReader: new (b: Uint8Array) => { width: number; height: number; numFrames(): number } };

// 2 frames, 3 channels, 1 x 2 pixels; channel c of frame f at pixel j holds f + c + j.
const latents = new Tensor('float32', [2, 3, 1, 2], Float32Array.from({ length: 12 }, (_, n) => {
  const f = Math.floor(n / 6), c = Math.floor(n / 2) % 3, j = n % 2;
  return f + c + j;
}));

t.test('latents map to RGB by a fixed linear rule', (t) => {
  t.same(channelRanges(latents), [[0, 2], [1, 3], [2, 4]]);
  const { width, height, frames } = latentsToFrames(latents, { scale: 1 });
  t.equal(width, 2);
  t.equal(height, 1);
  // Frame 0, pixel 0: channel values 0, 1, 2 -> the minimum of each range -> 0, 0, 0.
  t.same([...frames[0].subarray(0, 4)], [0, 0, 0, 255]);
  // Frame 0, pixel 1: 1, 2, 3 -> half-way -> round(127.5) = 128.
  t.same([...frames[0].subarray(4, 8)], [128, 128, 128, 255]);
  // Frame 1, pixel 1: 2, 3, 4 -> the maximum -> 255.
  t.same([...frames[1].subarray(4, 8)], [255, 255, 255, 255]);
  // Fixed ranges clamp, and upscaling repeats pixels.
  const big = latentsToFrames(latents, { ranges: [[0, 1], [0, 1], [0, 1]], scale: 3 });
  t.equal(big.width, 6);
  t.equal(big.height, 3);
  t.same([...big.frames[1].subarray(0, 4)], [255, 255, 255, 255]);
  t.same([...big.frames[0].subarray(8, 12)], [0, 255, 255, 255], 'pixel 0 repeated three times');
  t.end();
});

t.test('PNG and GIF decode back with independent readers', (t) => {
  const video = latentsToFrames(latents, { scale: 2 });
  const strip = frameStrip([video, video], 1);
  t.equal(strip.width, 2 * 4 + 1);
  t.equal(strip.height, 2 * 2 + 1);
  const png = PNG.sync.read(Buffer.from(encodePng(strip.frames[0], strip.width, strip.height)));
  t.equal(png.width, strip.width);
  t.same([...png.data.subarray(0, 16)], [...strip.frames[0].subarray(0, 16)]);
  const gif = new GifReader(encodeGif(video, 100));
  t.equal(gif.numFrames(), 2);
  t.equal(gif.width, 4);
  t.end();
});

t.test('bad input', (t) => {
  t.throws(() => latentsToFrames(latents.reshape([2, 6])), { name: 'RangeError', message: /latents/ });
  t.throws(() => latentsToFrames(latents, { channels: [0, 5] }), { name: 'RangeError', message: /channels\[1\]/ });
  t.throws(() => latentsToFrames(latents, { scale: 0 }), { name: 'RangeError', message: /scale/ });
  t.throws(() => latentsToFrames(latents, { ranges: [[0, NaN], [0, 1], [0, 1]] }), { name: 'RangeError', message: /ranges/ });
  t.throws(() => encodePng(new Uint8Array(3), 1, 1), { name: 'RangeError', message: /RGBA/ });
  t.throws(() => frameStrip([]), { name: 'RangeError', message: /videos/ });
  t.end();
});
