// Sets of generated videos (latents) in one safetensors file: tensors "videos.<i>" [frames,
// channels, h, w] and, in the metadata, what made each one (prompt, seed) and the model.
import { readSafetensors, writeSafetensors } from './safetensors.js';
import { Tensor } from '../tensor/tensor.js';

export const VIDEOS_METADATA_KEY = 'qarvd.videos';

export interface VideoEntry {
  prompt: string;
  seed: number;
  latents: Tensor<'float32'>;
}

export interface VideoSet {
  videos: VideoEntry[];
  /** Free-form facts about how the set was made (model name, quantization, timings). */
  info: Record<string, unknown>;
}

/** Writes a set of videos atomically. */
export async function writeVideos(file: string, set: VideoSet): Promise<void> {
  const tensors: Record<string, Tensor> = {};
  set.videos.forEach((v, i) => (tensors[`videos.${i}`] = v.latents));
  const meta = { videos: set.videos.map((v) => ({ prompt: v.prompt, seed: v.seed })), info: set.info };
  await writeSafetensors(file, tensors, { [VIDEOS_METADATA_KEY]: JSON.stringify(meta) });
}

/** Reads a set of videos written by writeVideos; anything else is a clear error. */
export async function readVideos(file: string): Promise<VideoSet> {
  const { tensors, metadata } = await readSafetensors(file);
  const raw = metadata[VIDEOS_METADATA_KEY];
  if (!raw) throw new RangeError(`${file} is not a qarvd video set (no ${VIDEOS_METADATA_KEY} metadata)`);
  let meta: { videos: { prompt: string; seed: number }[]; info?: Record<string, unknown> };
  try {
    meta = JSON.parse(raw);
  } catch {
    throw new RangeError(`${file}: the ${VIDEOS_METADATA_KEY} metadata is not JSON`);
  }
  if (!Array.isArray(meta.videos)) throw new RangeError(`${file}: the ${VIDEOS_METADATA_KEY} metadata has no videos list`);
  const videos = meta.videos.map((v, i) => {
    const t = tensors[`videos.${i}`];
    if (!t || t.dtype !== 'float32' || t.rank !== 4) throw new RangeError(`${file}: videos.${i} is missing or not float32 [frames, channels, h, w]`);
    return { prompt: String(v.prompt), seed: Number(v.seed), latents: t as Tensor<'float32'> };
  });
  return { videos, info: meta.info ?? {} };
}
