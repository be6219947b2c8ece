// Builds the release binary into prebuilds/<platform>-<arch>/node.napi.node, the layout prebuildify
// produces and node-gyp-build reads, so that `npm pack` ships it. CUDA is required for the release
// binary (pass --cpu-only to build without it); the CUDA runtime is linked statically.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const cpuOnly = process.argv.includes('--cpu-only');

const cli = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const args = [cli, 'compile', cpuOnly ? '--CDQARVD_CUDA=OFF' : '--CDQARVD_REQUIRE_CUDA=ON'];
const build = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const outDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(outDir, { recursive: true });
const target = path.join(outDir, 'node.napi.node');
copyFileSync(path.join(root, 'build', 'Release', 'qarvd.node'), target);
const strip = spawnSync('strip', ['--strip-unneeded', target], { stdio: 'inherit' });
if (strip.error) console.warn(`prebuild: strip unavailable (${strip.error.message}); the binary is unstripped`);
console.log(`prebuild: ${path.relative(root, target)}`);
