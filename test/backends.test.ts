import t from 'tap';
import { backends, setIsa, setThreads } from '../lib/index.js';

t.test('backends reports CPU features, the active path and CUDA', (t) => {
  const b = backends();
  t.type(b.cpu.avx2, 'boolean');
  t.ok(b.cpu.threads >= 1);
  // The active path never exceeds what the CPU supports.
  const order = ['scalar', 'avx2', 'avx512', 'avx512vnni', 'amx'];
  t.ok(order.indexOf(b.cpu.isa) <= order.indexOf(b.cpu.detectedIsa));
  if (b.cpu.avx2) t.not(b.cpu.detectedIsa, 'scalar');
  t.type(b.cuda.compiled, 'boolean');
  t.ok(Array.isArray(b.cuda.devices));
  if (b.cuda.devices.length === 0) t.type(b.cuda.status, 'string');
  t.end();
});

t.test('setIsa caps the code path and restores it', (t) => {
  const detected = backends().cpu.detectedIsa;
  t.equal(setIsa('scalar'), 'scalar');
  t.equal(backends().cpu.isa, 'scalar');
  t.equal(setIsa('amx'), detected);
  t.throws(() => setIsa('sse' as never), RangeError);
  t.end();
});

t.test('setThreads changes the pool size', (t) => {
  const before = backends().cpu.threads;
  t.equal(setThreads(1), 1);
  t.equal(setThreads(before), before);
  t.throws(() => setThreads(0), RangeError);
  t.throws(() => setThreads(1.5), TypeError);
  t.end();
});
