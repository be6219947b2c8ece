// `npm install` hook. In a development checkout (a .git folder beside package.json) it builds the
// addon with cmake-js. In an installed package it does nothing when a prebuilt binary fits this
// machine (npm 11 does not even run it by default); otherwise it builds from source if cmake-js is
// at hand, or says how to.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const isCheckout = existsSync(path.join(root, '.git'));

function prebuiltFits() {
  try {
    require('node-gyp-build').path(root);
    return true;
  } catch {
    return false;
  }
}

function cmakeJs() {
  try {
    return require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    return null;
  }
}

if (!isCheckout && prebuiltFits()) process.exit(0);

const cli = cmakeJs();
if (!cli) {
  console.warn(
    `qarvd: no prebuilt binary for ${process.platform}-${process.arch} and cmake-js is not installed.\n` +
      'To build from source: npm install --no-save cmake-js node-addon-api && npx cmake-js compile',
  );
  process.exit(isCheckout ? 1 : 0);
}
const result = spawnSync(process.execPath, [cli, 'compile'], { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
