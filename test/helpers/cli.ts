import { main } from '../../lib/cli/main.js';

/** Runs the qarvd command line in this process, capturing its output and exit code. */
export async function run(args: string[]) {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  const writeErr = process.stderr.write.bind(process.stderr), writeOut = process.stdout.write.bind(process.stdout);
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  try {
    return { code: await main(args), out: out.join('\n'), err: err.join('\n') };
  } finally {
    Object.assign(console, { log, error });
    process.stderr.write = writeErr;
    process.stdout.write = writeOut;
  }
}
