import t from 'tap';
import { run as capture } from '../helpers/cli.js';
import { backends } from '../../lib/index.js';

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
