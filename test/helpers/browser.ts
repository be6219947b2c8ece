// Finds a Chromium for the browser tests: env CHROME_PATH, else the first of the usual names on PATH.
// Nothing is downloaded (puppeteer-core ships no browser); CI installs Debian's chromium.
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

export const INSTALL_HINT = 'install Chromium (Debian: apt-get install chromium) or set CHROME_PATH to a Chrome/Chromium executable';

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The browser's path, or why none was found. */
export function findBrowser(env: NodeJS.ProcessEnv = process.env): { path: string } | { path: undefined; why: string } {
  if (env.CHROME_PATH) {
    // An explicit choice is never second-guessed by a search of PATH.
    return executable(env.CHROME_PATH) ? { path: env.CHROME_PATH } : { path: undefined, why: `CHROME_PATH=${env.CHROME_PATH} is not an executable file` };
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const name of NAMES) {
      const file = path.join(dir, name);
      if (executable(file)) return { path: file };
    }
  }
  return { path: undefined, why: `no ${NAMES.join('/')} on PATH` };
}
