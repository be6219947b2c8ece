// The trained embedded default: its weights ship with the package (models/, float16 safetensors
// with the configuration in the metadata), beside a JSON record of how they were trained.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { EMBEDDED_DEFAULT, type DitConfig } from './config.js';
import type { CausalDit } from './dit.js';
import { loadModel } from './io.js';

/** The file of the embedded default's weights (in the package, beside dist/). */
export const EMBEDDED_WEIGHTS_FILE: string = fileURLToPath(new URL('../../models/embedded-default.safetensors', import.meta.url));
/** Its training record (training/result.json of the run that made the weights). */
export const EMBEDDED_TRAINING_FILE: string = fileURLToPath(new URL('../../models/embedded-default.json', import.meta.url));

/** What training/train.py recorded about the run that produced the shipped weights. */
export interface EmbeddedTraining {
  steps: number;
  batch: number;
  seconds: number;
  threads: number;
  /** Flow-matching loss on held-out videos (seeds from 2^31, fixed noise and noise levels). */
  heldOut: { videos: number; firstSeed: number; untrained: number; trained: number };
  curve: { step: number; loss: number; smoothed: number; heldOut?: number; seconds: number }[];
}

/**
 * The embedded default with its trained weights (EMBEDDED_DEFAULT: a causal DiT trained on the
 * moving-shapes videos of lib/data/shapes.ts), read from the package.
 *
 * @example
 * const model = await loadEmbeddedModel();
 * const video = await generate(model, { prompt: 'a red disc moving left', seed: 0 }); // [21, 48, 8, 8]
 * const frames = latentsToRgb(video); // [21, 3, 32, 32]
 */
export async function loadEmbeddedModel(): Promise<CausalDit> {
  const model = await loadModel(EMBEDDED_WEIGHTS_FILE);
  const same = (Object.keys(EMBEDDED_DEFAULT) as (keyof DitConfig)[]).every((k) => JSON.stringify(model.config[k]) === JSON.stringify(EMBEDDED_DEFAULT[k]));
  if (!same || Object.keys(model.config).length !== Object.keys(EMBEDDED_DEFAULT).length) {
    throw new RangeError(`${EMBEDDED_WEIGHTS_FILE} does not hold the embedded default's configuration (${model.config.name}); reinstall the package`);
  }
  return model;
}

/** The shipped training record of the embedded default's weights. */
export async function embeddedTraining(): Promise<EmbeddedTraining> {
  return JSON.parse(await readFile(EMBEDDED_TRAINING_FILE, 'utf8')) as EmbeddedTraining;
}
