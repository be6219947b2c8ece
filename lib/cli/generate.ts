import { type Command, InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import { prepareOutputFolder } from '../io/paths.js';
import path from 'node:path';
import { EMBEDDED_DEFAULT } from '../model/config.js';
import { CausalDit } from '../model/dit.js';
import { loadModel, namedConfig } from '../model/io.js';
import { loadEmbeddedModel } from '../model/embedded.js';
import { DEFAULT_PROMPTS, promptLabel, type Prompt } from '../model/prompts.js';
import type { DitConfig } from '../model/config.js';
import { readTextFeatures } from '../io/text_features.js';
import { loadQuantizedModel } from '../checkpoint/checkpoint.js';
import { ChunkScheduler } from '../schedule/scheduler.js';
import { writeVideos, type VideoEntry } from '../io/videos.js';
import { channelRanges, frameStrip, latentsToFrames, writeGif, writePng } from '../io/images.js';
import { progress } from './progress.js';
import { ATTENTION_PRECISIONS, type AttentionPrecision } from '../model/ops/attention.js';
import { KV_CACHE_DTYPES, type KvCacheDtype } from '../model/ops/kv-cache.js';

export function intOption(name: string, min: number) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** A parser for an option that takes one of `allowed`. */
export function oneOfOption<T extends string>(name: string, allowed: readonly T[]) {
  return (value: string) => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}`);
    return value as T;
  };
}

/** --attention and --kv-cache, shared by the commands that generate videos. */
export const attentionOption = oneOfOption('--attention', ATTENTION_PRECISIONS);
export const kvCacheOption = oneOfOption('--kv-cache', KV_CACHE_DTYPES);

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * The model of a command: a file; else the embedded default with its trained weights (no --config,
 * or --config embedded-default); else a built-in configuration with seeded synthetic weights (for
 * example embedded-testbed or self-forcing-1.3b).
 */
export async function modelFromOptions(o: { model?: string; config?: string; weightsSeed?: number }): Promise<CausalDit> {
  if (o.model) return loadModel(o.model, o.config);
  const name = o.config ?? EMBEDDED_DEFAULT.name;
  if (name === EMBEDDED_DEFAULT.name && o.weightsSeed === undefined) return loadEmbeddedModel();
  return CausalDit.synthetic(namedConfig(name), { seed: o.weightsSeed ?? 0 });
}

export async function promptsFromOptions(o: { prompt?: string[]; prompts?: string }): Promise<string[]> {
  const list = [...(o.prompt ?? [])];
  if (o.prompts) {
    const text = await readFile(o.prompts, 'utf8');
    const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
    // An empty file is a mistake (a wrong path, /dev/null), not a request for the default prompts.
    if (lines.length === 0) throw new RangeError(`--prompts ${o.prompts} holds no prompts (one per line)`);
    list.push(...lines);
  }
  return list.length ? list : [...DEFAULT_PROMPTS];
}

export const FEATURES_HELP = 'prompts as text-encoder features: a safetensors file with one [tokens, dim] tensor per prompt, or one [n, tokens, dim] tensor and a "prompts" JSON list in its metadata';

/** The prompts of a command: text (--prompt, --prompts; `fallback` or the defaults when neither) or features (--features), checked against the model. */
export async function promptInputs(
  o: { prompt?: string[]; prompts?: string; features?: string },
  config: Pick<DitConfig, 'textDim' | 'textLen'>,
  fallback?: () => string[],
): Promise<{ prompts: Prompt[]; features: { file: string; digest: string } | null }> {
  if (o.features) {
    if (o.prompt || o.prompts) throw new RangeError('give --features or --prompt/--prompts, not both');
    const f = await readTextFeatures(o.features, config);
    return { prompts: f.prompts, features: { file: path.basename(o.features), digest: f.digest } };
  }
  return { prompts: !o.prompt && !o.prompts && fallback ? fallback() : await promptsFromOptions(o), features: null };
}

/** Writes a frame strip (PNG) and an animation (GIF) per video, on the scale of `reference` when given. */
export async function writeFrames(dir: string, videos: VideoEntry[], references?: VideoEntry[]): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < videos.length; i++) {
    const ranges = channelRanges(references?.[i]?.latents ?? videos[i].latents);
    const frames = latentsToFrames(videos[i].latents, { ranges, scale: 8 });
    const rows = references?.[i] ? [latentsToFrames(references[i].latents, { ranges, scale: 8 }), frames] : [frames];
    const strip = frameStrip(rows);
    const png = path.join(dir, `video-${i}.png`);
    const gif = path.join(dir, `video-${i}.gif`);
    await writePng(png, strip.frames[0], strip.width, strip.height);
    await writeGif(gif, frames, 125);
    files.push(png, gif);
  }
  return files;
}

/** `qarvd generate`: videos from prompts and seeds, as latents (safetensors) and pictures. */
export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('generate videos with a model (default: the embedded default) from prompts and seeds')
    .option('--model <file>', 'model file (safetensors with Wan names); default: synthetic weights')
    .option('--config <name>', 'configuration: embedded-default (trained weights), embedded-testbed or self-forcing-1.3b (seeded synthetic weights), or for files without one')
    .option('--quantized <file>', 'a quantized checkpoint (from qarvd quantize or demo) instead of a float model')
    .option('--prompt <text>', 'a prompt (repeatable)', collect)
    .option('--prompts <file>', 'a file with one prompt per line')
    .option('--features <file>', FEATURES_HELP)
    .option('--seed <n>', 'seed of the first video; video i uses seed + i', intOption('--seed', 0), 0)
    .option('--chunks <n>', 'chunks per video (default: the configuration\'s)', intOption('--chunks', 1))
    .option('--attention <precision>', 'attention precision: fp32, bf16 (bfloat16 products) or int8 (int8 Q.K^T with smoothed keys, P.V in bf16)', attentionOption, 'fp32')
    .option('--kv-cache <storage>', 'KV cache storage: fp32, bf16 (half the bytes) or int8 (about a quarter)', kvCacheOption, 'fp32')
    .option('--out <dir>', 'output folder', 'out/generate')
    .option('--no-frames', 'skip the PNG/GIF pictures')
    .option('--quiet', 'no progress output')
    .action(async (o: { model?: string; config?: string; quantized?: string; prompt?: string[]; prompts?: string; features?: string; seed: number; chunks?: number; attention: AttentionPrecision; kvCache: KvCacheDtype; out: string; frames: boolean; quiet?: boolean }) => {
      if (o.quantized && o.model) throw new RangeError('give --model or --quantized, not both');
      // The output folder first: a bad one fails before any work.
      await prepareOutputFolder(o.out, '--out');
      const loaded = o.quantized ? await loadQuantizedModel(o.quantized) : null;
      const model = loaded ? loaded.model : await modelFromOptions(o);
      // A quantized checkpoint may switch layers per chunk: its scheduler policy drives generation.
      const scheduler = new ChunkScheduler(model, loaded ? loaded.policy : () => null);
      const { prompts, features } = await promptInputs(o, model.config);
      const bar = progress('generate', { quiet: o.quiet });
      const videos: VideoEntry[] = [];
      const started = performance.now();
      for (let i = 0; i < prompts.length; i++) {
        const latents = await scheduler.generate({
          prompt: prompts[i],
          seed: o.seed + i,
          chunks: o.chunks,
          attention: o.attention,
          kvCache: o.kvCache,
          onProgress: (done, total) => bar.update(i * total + done, prompts.length * total, `video ${i + 1}/${prompts.length}`),
        });
        videos.push({ prompt: promptLabel(prompts[i]), seed: o.seed + i, latents });
      }
      bar.stop();
      const seconds = (performance.now() - started) / 1000;
      const file = path.join(o.out, 'videos.safetensors');
      await writeVideos(file, { videos, info: { model: model.config.name, quantized: o.quantized ?? null, features, attention: o.attention, kvCache: o.kvCache, seconds } });
      const pictures = o.frames ? await writeFrames(o.out, videos) : [];
      console.log(JSON.stringify({ videos: file, pictures, count: videos.length, attention: o.attention, kvCache: o.kvCache, seconds: Number(seconds.toFixed(3)) }, null, 2));
    });
}
