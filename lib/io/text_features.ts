// Prompts as text-encoder features from a safetensors file, for real models that condition on them
// (Self-Forcing: umT5-XXL features [512, 4096], zero past the prompt's tokens). Two layouts:
//   - one tensor per prompt, [tokens, dim], named by the prompt (in name order, or in the order of a
//     "prompts" JSON list in the metadata);
//   - one tensor [n, tokens, dim] with the n prompts as a JSON list under "prompts" in the metadata.
// float32, float16 and bfloat16 are read as they are (the model widens them).
import { createHash } from 'node:crypto';
import { openSafetensors } from './safetensors.js';
import { Tensor } from '../tensor/tensor.js';
import type { DitConfig } from '../model/config.js';
import type { PromptFeatures } from '../model/prompts.js';
import { describe } from '../util/validate.js';

/** The metadata key of the prompt list. */
export const PROMPTS_METADATA_KEY = 'prompts';

export interface TextFeatures {
  file: string;
  prompts: PromptFeatures[];
  /** SHA-256 of the prompts and their features (names, dtypes, shapes, bytes): what results record to say where they came from. */
  digest: string;
}

const FLOAT = ['float32', 'float16', 'bfloat16'];

/**
 * Reads prompts as features. With `config`, each context is checked against the model: width
 * textDim, at most textLen tokens.
 *
 * @example
 * const { prompts } = await readTextFeatures('t5_features.safetensors', model.config);
 * const video = await generate(model, { prompt: prompts[0], seed: 0 });
 */
export async function readTextFeatures(file: string, config?: Pick<DitConfig, 'textDim' | 'textLen'>): Promise<TextFeatures> {
  const f = await openSafetensors(file);
  try {
    const fail = (why: string): never => {
      throw new RangeError(`${file}: ${why}`);
    };
    let listed: string[] | undefined;
    if (f.metadata[PROMPTS_METADATA_KEY] !== undefined) {
      try {
        listed = JSON.parse(f.metadata[PROMPTS_METADATA_KEY]);
      } catch {
        fail(`the "${PROMPTS_METADATA_KEY}" metadata is not JSON`);
      }
      if (!Array.isArray(listed) || !listed.every((p) => typeof p === 'string')) fail(`the "${PROMPTS_METADATA_KEY}" metadata is not a JSON list of strings`);
    }
    if (f.entries.length === 0) fail('holds no features');
    const prompts: PromptFeatures[] = [];
    if (f.entries.length === 1 && f.entries[0].shape.length === 3) {
      const e = f.entries[0];
      const [n, tokens, dim] = e.shape;
      if (!listed) fail(`one [${e.shape.join(', ')}] tensor needs the ${n} prompts as a JSON list under "${PROMPTS_METADATA_KEY}" in the metadata`);
      if (listed!.length !== n) fail(`holds ${n} contexts but the "${PROMPTS_METADATA_KEY}" metadata lists ${listed!.length} prompts`);
      const all = await f.read(e.name);
      if (!FLOAT.includes(all.dtype)) fail(`${e.name} is ${all.dtype}; features are float32, float16 or bfloat16`);
      const per = tokens * dim;
      for (let i = 0; i < n; i++) prompts.push({ prompt: listed![i], context: new Tensor(all.dtype, [tokens, dim], all.data.subarray(i * per, (i + 1) * per)) });
    } else {
      const names = listed ?? f.entries.map((e) => e.name).sort();
      const have = new Set(f.entries.map((e) => e.name));
      for (const name of names) if (!have.has(name)) fail(`the "${PROMPTS_METADATA_KEY}" metadata lists ${describe(name)}, which has no tensor`);
      if (new Set(names).size !== names.length) fail(`the "${PROMPTS_METADATA_KEY}" metadata lists a prompt twice`);
      if (names.length !== have.size) fail(`${have.size - names.length} tensor(s) are not in the "${PROMPTS_METADATA_KEY}" metadata`);
      for (const name of names) {
        const t = await f.read(name);
        if (t.rank !== 2) fail(`expected one [tokens, dim] tensor per prompt (or one [n, tokens, dim] tensor) but ${describe(name)} is [${t.shape.join(', ')}]`);
        if (!FLOAT.includes(t.dtype)) fail(`${describe(name)} is ${t.dtype}; features are float32, float16 or bfloat16`);
        prompts.push({ prompt: name, context: t });
      }
    }
    if (config) {
      for (const p of prompts) {
        const [tokens, dim] = p.context.shape;
        if (dim !== config.textDim) fail(`the features of ${describe(p.prompt)} are ${dim} wide but the model's text encoder width (textDim) is ${config.textDim}`);
        if (tokens > config.textLen) fail(`the features of ${describe(p.prompt)} have ${tokens} tokens, more than the model's textLen (${config.textLen})`);
      }
    }
    const hash = createHash('sha256');
    for (const p of prompts) {
      hash.update(JSON.stringify([p.prompt, p.context.dtype, p.context.shape]));
      hash.update(new Uint8Array(p.context.data.buffer, p.context.data.byteOffset, p.context.data.byteLength));
    }
    return { file, prompts, digest: hash.digest('hex') };
  } finally {
    await f.close();
  }
}
