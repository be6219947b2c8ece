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
