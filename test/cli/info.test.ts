import t from 'tap';
import { main } from '../../lib/cli/main.js';
import { backends } from '../../lib/index.js';

async function capture(args: string[]) {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  const write = process.stderr.write.bind(process.stderr), writeOut = process.stdout.write.bind(process.stdout);
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write;
  try {
    const code = await main(args);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
    process.stdout.write = writeOut;
  }
}

t.test('qarvd info prints the backends', async (t) => {
  const r = await capture(['info']);
  t.equal(r.code, 0);
  t.match(r.out, new RegExp(`CPU +${backends().cpu.isa} path`));
  t.match(r.out, /CUDA/);
  const j = await capture(['info', '--json']);
  t.same(JSON.parse(j.out), backends());
});

t.test('unknown commands and options fail with a message', async (t) => {
  const r = await capture(['bogus']);
  t.not(r.code, 0);
  t.match(r.err, /unknown command 'bogus'/);
  const o = await capture(['info', '--nope']);
  t.not(o.code, 0);
  t.match(o.err, /unknown option/);
  const h = await capture(['--help']);
  t.equal(h.code, 0);
  t.match(h.out, /info/);
});
