// Child of test/reliability/env.test.ts: loads the library under the environment it was given and
// prints the thread count and ISA the addon settled on, and that a call works.
import { pathToFileURL } from 'node:url';

// Run by its test with the library's path; run alone (say by `tap test/reliability`), it skips.
if (!process.argv[2]) {
  console.log('1..0 # SKIP a child process of a test in test/reliability, run by that test');
  process.exit(0);
}

const [index] = process.argv.slice(2);
const lib = await import(pathToFileURL(index).href);
const { cpu } = lib.backends();
const y = lib.matmulSync(new lib.Tensor('float32', [1, 2], new Float32Array([1, 2])), new lib.Tensor('float32', [1, 2], new Float32Array([3, 4])));
process.stdout.write(JSON.stringify({ threads: cpu.threads, isa: cpu.isa, detected: cpu.detectedIsa, y: Array.from(y.data) }) + '\n');
