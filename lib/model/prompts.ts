import { Tensor } from '../tensor/tensor.js';
import { describe } from '../util/validate.js';

/** Prompts used when none are given (the embedded default hashes them to contexts). */
export const DEFAULT_PROMPTS: readonly string[] = Object.freeze([
  'a red fox running through fresh snow at dawn',
  'waves breaking on a rocky shore, slow motion',
  'a city street at night in the rain, neon reflections',
  'a hot air balloon rising over green hills',
  'a cat chasing a butterfly in a sunny garden',
  'a sailing boat crossing a calm lake at sunset',
  'autumn leaves falling in a quiet forest',
  'a train passing through a snowy mountain valley',
]);

/**
 * A prompt given as text-encoder features instead of text, for example the umT5-XXL output
 * [tokens, 4096] that Self-Forcing conditions on (zero rows past the prompt's tokens, or only its
 * tokens: the model zero-pads to textLen either way). `prompt` names it in results.
 */
export interface PromptFeatures {
  prompt: string;
  /** [tokens <= textLen, textDim], float32, float16 or bfloat16. */
  context: Tensor;
}

/** What the pipeline takes as a prompt: text (hashed to a context, see encodePrompt) or features. */
export type Prompt = string | PromptFeatures;

/** The name of a prompt in results and checkpoints. */
export function promptLabel(p: Prompt): string {
  return typeof p === 'string' ? p : p.prompt;
}

/** Checks a non-empty list of prompts (text or features). */
export function expectPrompts(value: unknown, name: string, options: { allowEmpty?: boolean } = {}): Prompt[] {
  const ok = (p: unknown) => typeof p === 'string' || (typeof p === 'object' && p !== null && typeof (p as PromptFeatures).prompt === 'string' && (p as PromptFeatures).context instanceof Tensor);
  if (!Array.isArray(value) || (!options.allowEmpty && value.length === 0) || !value.every(ok)) {
    throw new TypeError(`Expected ${options.allowEmpty ? 'an' : 'a non-empty'} array of prompts (strings or { prompt, context } features) for ${name} but received ${describe(value)}`);
  }
  return value as Prompt[];
}
