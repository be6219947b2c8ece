// The package as a user gets it: `npm pack` ships the prebuilt binary, and installing the tarball
// into a fresh project with npm's default settings (dependency install scripts do not run) gives a
// module that loads and works from ESM and from CommonJS.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_loglevel: 'error' } });

t.test('npm pack ships a prebuilt binary that installs and runs without install scripts', async (t) => {
  // Build the release binary into prebuilds/ (reuses the existing build: only a copy and strip).
  run(process.execPath, [path.join(root, 'scripts/prebuild.mjs'), ...(existsSync('/usr/local/cuda') ? [] : ['--cpu-only'])], root);
  t.ok(existsSync(path.join(root, 'prebuilds/linux-x64/node.napi.node')), 'prebuilds/linux-x64/node.napi.node exists');

  const work = mkdtempSync(path.join(tmpdir(), 'qarvd-pack-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root)) as { filename: string; files: { path: string }[] }[];
  const files = packed[0].files.map((f) => f.path);
  t.ok(files.includes('prebuilds/linux-x64/node.napi.node'), 'tarball contains the binary');
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'tarball contains the compiled library and types');
  t.notOk(files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), 'tarball leaves tests out');
  t.ok(files.includes('models/embedded-default.safetensors') && files.includes('models/embedded-default.json'), 'tarball contains the trained embedded default');

  const project = path.join(work, 'app');
  run('mkdir', ['-p', project], work);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  run('npm', ['install', '--no-audit', '--no-fund', path.join(work, packed[0].filename)], project);
  t.notOk(existsSync(path.join(project, 'node_modules/qarvd/build')), 'nothing was compiled at install');

  writeFileSync(
    path.join(project, 'esm.mjs'),
    `import { backends, Tensor } from 'qarvd';
const b = backends();
const x = new Tensor('float32', [2, 2], new Float32Array([1, 2, 3, 4]));
console.log(JSON.stringify({ isa: b.cpu.isa, cuda: b.cuda.compiled, size: x.size }));`,
  );
  const esm = JSON.parse(run(process.execPath, ['esm.mjs'], project));
  t.equal(esm.size, 4);
  t.type(esm.isa, 'string');

  writeFileSync(
    path.join(project, 'embedded.mjs'),
    `import { loadEmbeddedModel, generate } from 'qarvd';
const model = await loadEmbeddedModel();
const video = await generate(model, { prompt: 'a red disc moving left', seed: 0, chunks: 1 });
console.log(JSON.stringify(video.shape));`,
  );
  t.equal(run(process.execPath, ['embedded.mjs'], project).trim(), '[3,48,8,8]', 'the trained embedded default loads from the installed package');

  writeFileSync(path.join(project, 'cjs.cjs'), `const q = require('qarvd'); console.log(typeof q.backends);`);
  t.equal(run(process.execPath, ['--no-warnings', 'cjs.cjs'], project).trim(), 'function', 'CommonJS require works');

  t.match(run(path.join(project, 'node_modules/.bin/qarvd'), ['info'], project), /CPU +\w+ path/, 'the qarvd command is installed');

  // Types resolve for TypeScript users.
  const dts = readdirSync(path.join(project, 'node_modules/qarvd/dist')).filter((f) => f.endsWith('.d.ts'));
  t.ok(dts.includes('index.d.ts'));

  // Without a fitting binary the import fails with one actionable message.
  rmSync(path.join(project, 'node_modules/qarvd/prebuilds'), { recursive: true });
  let message = '';
  try {
    run(process.execPath, ['esm.mjs'], project);
  } catch (e) {
    message = String((e as { stderr?: string }).stderr);
  }
  t.match(message, /could not load the native addon for linux-x64/);
  t.match(message, /cmake-js compile/, 'the error says how to build from source');
});
