/** Prompts used when none are given (the embedded default hashes them to contexts). */
export const DEFAULT_PROMPTS: readonly string[] = Object.freeze([
  'a red fox running through fresh snow at dawn',
  'waves breaking on a rocky shore, slow motion',
  'a city street at night in the rain, neon reflections',
  'a hot air balloon rising over green hills',
]);
