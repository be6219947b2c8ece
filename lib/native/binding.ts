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

/** The names QARVD_ISA takes (as setIsa), each optionally followed by +emulated or +emulated-always. */
const ISA_NAMES = ['scalar', 'avx2', 'avxvnni', 'avx512', 'avx512vnni', 'amx'];

/**
 * The problems of the environment variables the addon reads when it loads (QARVD_NUM_THREADS: a
 * whole number from 1 to 1024, as setThreads takes; QARVD_ISA: an ISA name as setIsa takes, with an
 * optional +emulated or +emulated-always). The addon ignores a bad value and uses its default.
 */
export function checkEnvironment(env: NodeJS.ProcessEnv = process.env): string[] {
  const problems: string[] = [];
  const threads = env.QARVD_NUM_THREADS;
  if (threads !== undefined && threads !== '') {
    const n = Number(threads);
    if (!/^\s*\+?\d+$/.test(threads) || !Number.isInteger(n) || n < 1 || n > 1024) {
      problems.push(`QARVD_NUM_THREADS=${JSON.stringify(threads)} is not a whole number from 1 to 1024 (as setThreads takes); it is ignored and the core count is used`);
    }
  }
  const isa = env.QARVD_ISA;
  if (isa !== undefined && isa !== '') {
    const base = isa.replace(/\+emulated(-always)?$/, '');
    if (!ISA_NAMES.includes(base)) {
      problems.push(`QARVD_ISA=${JSON.stringify(isa)} is not one of ${ISA_NAMES.join(', ')} (optionally +emulated or +emulated-always); it is ignored and the best path of this CPU is used`);
    }
  }
  return problems;
}

/** The native module, typed by each caller with the interface of the functions it uses. */
export function native<T>(): T {
  if (!addon) {
    for (const p of checkEnvironment()) process.emitWarning(p, { code: 'QARVD_ENV' });
    addon = load();
  }
  return addon as T;
}
