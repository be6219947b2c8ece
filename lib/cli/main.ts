// The `qarvd` command line. Each subcommand lives in its own module and registers itself on the
// program; this file only assembles them and turns errors into a message and a non-zero exit.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { registerInfo } from './info.js';
import { registerGenerate } from './generate.js';
import { registerEval } from './eval.js';
import { registerSensitivity } from './sensitivity.js';
import { registerQuantize } from './quantize.js';
import { registerMerge } from './merge.js';
import { registerBench } from './bench.js';
import { registerDemo } from './demo.js';
import { registerConvert } from './convert.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('qarvd')
    .description('Quantize autoregressive video diffusion models the Q-ARVD way')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerInfo(program);
  registerGenerate(program);
  registerEval(program);
  registerSensitivity(program);
  registerQuantize(program);
  registerMerge(program);
  registerBench(program);
  registerDemo(program);
  registerConvert(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode; // commander has printed the message
    console.error(`qarvd: ${(e as Error).message}`);
    return 1;
  }
}
