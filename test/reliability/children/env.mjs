// Child of test/reliability/env.test.ts: loads the library under the environment it was given and
// prints the thread count and ISA the addon settled on, and that a call works.
import { loadChildLibrary } from './library.mjs';

const { lib } = await loadChildLibrary();
const { cpu } = lib.backends();
const y = lib.matmulSync(new lib.Tensor('float32', [1, 2], new Float32Array([1, 2])), new lib.Tensor('float32', [1, 2], new Float32Array([3, 4])));
process.stdout.write(JSON.stringify({ threads: cpu.threads, isa: cpu.isa, detected: cpu.detectedIsa, y: Array.from(y.data) }) + '\n');
