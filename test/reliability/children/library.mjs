// Shared by the child scripts of test/reliability: they are run by their tests with the library's
// index.js as the first argument; run alone (say by `tap test/reliability`), they skip.
import { pathToFileURL } from 'node:url';

/** The library the test named, its path, and the script's other arguments; exits with a skip without them. */
export async function loadChildLibrary() {
  const [index, ...args] = process.argv.slice(2);
  if (!index) {
    console.log('1..0 # SKIP a child process of a test in test/reliability, run by that test');
    process.exit(0);
  }
  return { lib: await import(pathToFileURL(index).href), index, args };
}
