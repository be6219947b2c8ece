// Loads the native addon once. node-gyp-build looks in prebuilds/<platform>-<arch>/ (what `npm pack`
// ships) and then in build/Release (a local `npm run build:native`). If nothing loads, one error
// says what was tried and what to do.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
/** The package root: this file is lib/native/binding.ts or dist/native/binding.js. */
export const packageRoot = fileURLToPath(new URL('../..', import.meta.url));

function listNodeFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.node'))
    .map((f) => path.join(dir, f));
}

function load(): Record<string, unknown> {
  const override = process.env.QARVD_ADDON;
  try {
    if (override) return require(override);
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => Record<string, unknown>;
    return nodeGypBuild(packageRoot);
  } catch (cause) {
    const tried = [
      override ? `QARVD_ADDON=${override}` : null,
      ...listNodeFiles(path.join(packageRoot, 'prebuilds')),
      ...listNodeFiles(path.join(packageRoot, 'build', 'Release')),
    ].filter(Boolean);
    const message = [
      `qarvd: could not load the native addon for ${process.platform}-${process.arch} (Node ${process.versions.node}, N-API ${process.versions.napi}).`,
      tried.length ? `Tried: ${tried.join(', ')}.` : `No prebuilt binary in ${path.join(packageRoot, 'prebuilds')} and no local build in ${path.join(packageRoot, 'build', 'Release')}.`,
      `Cause: ${(cause as Error).message.split('\n')[0]}`,
      'Prebuilt binaries are shipped for linux-x64. Elsewhere, build from source in the package folder:',
      '  npm install --no-save cmake-js node-addon-api && npx cmake-js compile   (needs cmake and a C++17 compiler; nvcc optional)',
    ].join('\n');
    throw new Error(message, { cause });
  }
}

let addon: Record<string, unknown> | undefined;

/** The native module, typed by each caller with the interface of the functions it uses. */
export function native<T>(): T {
  addon ??= load();
  return addon as T;
}
