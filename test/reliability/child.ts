// Runs a script of test/reliability/children in a separate Node process against this checkout's
// library (dist/ when fresh, else lib/ transpiled: see test/helpers/cli-bin.ts), so that a crash
// (SIGSEGV, SIGABRT) or a hang is a failed test instead of taking the test runner down.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { qarvdBin } from '../helpers/cli-bin.js';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** The library's entry (index.js) for child processes, and the environment they need. */
export async function libraryEntry(): Promise<{ index: string; env: Record<string, string> }> {
  const { script, env } = await qarvdBin();
  return { index: path.join(path.dirname(script), '..', 'index.js'), env };
}

export const childScript = (name: string) => path.join(path.dirname(fileURLToPath(import.meta.url)), 'children', name);

/** This process's environment without the test runner's hooks (loaders, coverage): the child runs plain JavaScript. */
function plainEnvironment(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === 'NODE_OPTIONS' || k === 'NODE_V8_COVERAGE' || k.startsWith('_TAPJS') || k.startsWith('TAP')) continue;
    out[k] = v;
  }
  return out;
}

/** Runs `node [nodeArgs] children/<name> <index.js> ...args`; kills it after `timeoutMs`. */
export async function runChild(name: string, args: string[] = [], options: { nodeArgs?: string[]; timeoutMs?: number; cwd?: string; env?: Record<string, string> } = {}): Promise<ChildResult> {
  const { index, env } = await libraryEntry();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), childScript(name), index, ...args], {
      cwd: options.cwd,
      env: { ...plainEnvironment(), ...env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** The last line of stdout parsed as JSON (what every child prints when it is done). */
export function lastJson<T>(r: ChildResult): T | undefined {
  const lines = r.stdout.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1]) as T;
  } catch {
    return undefined;
  }
}
