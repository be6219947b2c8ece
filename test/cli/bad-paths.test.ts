// Bad output paths fail fast with a message naming the option, before any work; empty or short
// prompt sources are errors rather than a silent fallback to the default prompts. (`generate --out
// /proc/x` used to never return: Node 20's recursive mkdir loops on such a path.)
import t, { type Test } from 'tap';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-bad-paths-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const aFile = path.join(dir, 'a-file');
writeFileSync(aFile, 'x');

async function fails(t: Test, args: string[], message: RegExp, seconds = 20) {
  const started = performance.now();
  const r = await run(args);
  const took = (performance.now() - started) / 1000;
  t.equal(r.code, 1, `${args.join(' ')}: exit code 1`);
  t.match(r.err, message, `${args.join(' ')}: ${r.err.trim().split('\n').pop()}`);
  t.ok(took < seconds, `${args.join(' ')}: failed in ${took.toFixed(2)} s`);
}

t.test('output folders that cannot be made fail fast', async (t) => {
  for (const out of ['/proc/x', '/proc/self/x/y', '/dev/null/x', '/sys/x', aFile, path.join(aFile, 'below')]) {
    await fails(t, ['generate', '--out', out, '--quiet'], /^qarvd: --out: /m);
  }
  await fails(t, ['demo', '--out', '/proc/x', '--quiet'], /^qarvd: --out: .*\/proc\/x/m);
  await fails(t, ['demo', '--out', '/dev/null/x', '--quiet'], /^qarvd: --out: /m);
});

t.test('output files are checked before the work', async (t) => {
  // The calibration would take seconds; the bad path is refused first.
  await fails(t, ['quantize', '--out', '/proc/x/q.safetensors', '--quiet'], /^qarvd: --out: cannot write in \/proc\/x|^qarvd: --out: .*\/proc\/x/m, 5);
  await fails(t, ['quantize', '--stats-out', '/proc/stats.json', '--quiet'], /^qarvd: --stats-out: /m, 5);
  await fails(t, ['quantize', '--out', dir, '--quiet'], /^qarvd: --out: .* is a folder/m, 5);
  await fails(t, ['merge', aFile, aFile, '--out', '/proc/merged.json'], /^qarvd: --out: /m, 5);
  await fails(t, ['sensitivity', '--out', '/dev/null/x.json', '--quiet'], /^qarvd: --out: /m, 5);
  t.same(readdirSync(dir), ['a-file'], 'nothing was written');
});

t.test('prompt sources that hold fewer prompts than asked for are errors', async (t) => {
  await fails(t, ['generate', '--prompts', '/dev/null', '--out', path.join(dir, 'g'), '--quiet'], /--prompts \/dev\/null holds no prompts/);
  const blank = path.join(dir, 'blank.txt');
  writeFileSync(blank, '\n  \n\n');
  await fails(t, ['generate', '--prompts', blank, '--out', path.join(dir, 'g'), '--quiet'], /holds no prompts/);
  await fails(t, ['quantize', '--calibration-prompts', '1000', '--out', path.join(dir, 'q.safetensors'), '--quiet'], /--calibration-prompts 1000 asks for more than the \d+ default prompts/);
});
