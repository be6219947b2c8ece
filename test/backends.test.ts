import t from 'tap';
import { ISAS, backends, measureInt8Peak, setIsa, setThreads } from '../lib/index.js';
import { isaPaths } from './helpers/isa.js';

t.test('backends reports CPU features, the active path and CUDA', (t) => {
  const b = backends();
  t.type(b.cpu.avx2, 'boolean');
  t.ok(b.cpu.threads >= 1);
  // The active path never exceeds what the CPU supports.
  t.ok(ISAS.indexOf(b.cpu.isa) <= ISAS.indexOf(b.cpu.detectedIsa));
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

t.test('emulation runs the paths the CPU lacks through their emulated builds', (t) => {
  const cpu = backends().cpu;
  t.ok(cpu.emulationCompiled, 'this build has the emulated kernels (SIMDe)');
  const native: Record<string, boolean> = {
    scalar: true,
    avx2: cpu.avx2,
    avxvnni: cpu.avxvnni,
    avx512: cpu.avx512,
    avx512vnni: cpu.avx512vnni,
    amx: cpu.amxUsable && cpu.avx512vnni,
  };
  try {
    for (const isa of ISAS) {
      t.equal(setIsa(isa, { emulate: true }), isa, `${isa}: the cap itself is the path in use`);
      const p = backends().cpu;
      t.equal(p.emulate, true);
      // Each family takes its best path at or below the cap; one the CPU lacks is emulated.
      for (const [family, path] of Object.entries(p.paths)) {
        const name = path.replace('+emulated', '');
        t.ok(ISAS.indexOf(name as never) <= ISAS.indexOf(isa), `${isa}: ${family} takes ${path}, at or below the cap`);
        t.equal(path.endsWith('+emulated'), !native[name], `${isa}: ${family} ${path} is emulated exactly when the CPU lacks it`);
      }
      setIsa(isa, { emulate: 'always' });
      for (const [family, path] of Object.entries(backends().cpu.paths)) {
        if (!['scalar', 'avx2'].includes(path)) t.ok(path.endsWith('+emulated'), `${isa} always: ${family} ${path} emulated`);
      }
      // Without emulation nothing is emulated, and no family runs a path the CPU lacks.
      setIsa(isa);
      for (const [family, path] of Object.entries(backends().cpu.paths)) {
        t.ok(native[path], `${isa} native: ${family} ${path} is a path the CPU has`);
      }
    }
  } finally {
    setIsa('amx');
  }
  t.equal(backends().cpu.emulate, false);
  t.throws(() => setIsa('avx2', { emulate: 'sometimes' as never }), TypeError);
  t.throws(() => setIsa('avx2', null as never), TypeError);
  t.end();
});

t.test('which kernel paths the test suite runs natively and which emulated', (t) => {
  // Printed for the record (the note of a session says which machine it had); every GEMM test runs
  // all of these.
  for (const family of ['gemmF32', 'gemmInt']) {
    const paths = isaPaths(family);
    t.ok(paths.length >= 2, `${family}: several paths`);
    t.comment(`${family}: ${paths.map((p) => p.name).join(', ')}`);
  }
  t.end();
});

t.test('measureInt8Peak measures the best native int8 instruction', async (t) => {
  const cpu = backends().cpu;
  const peak = await measureInt8Peak({ seconds: 0.05 });
  t.equal(peak.isa, cpu.amxUsable ? 'amx' : cpu.avx512vnni ? 'avx512vnni' : 'none');
  if (peak.isa === 'none') t.equal(peak.opsPerSecond, 0);
  else t.ok(peak.opsPerSecond > 1e9, `${(peak.opsPerSecond / 1e9).toFixed(0)} GOP/s`);
  await t.rejects(measureInt8Peak({ seconds: -1 }), RangeError);
});

t.test('setThreads changes the pool size', (t) => {
  const before = backends().cpu.threads;
  t.equal(setThreads(1), 1);
  t.equal(setThreads(before), before);
  t.throws(() => setThreads(0), RangeError);
  t.throws(() => setThreads(1.5), TypeError);
  t.end();
});
