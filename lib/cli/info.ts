import type { Command } from 'commander';
import { backends } from '../backends.js';

/** `qarvd info`: what this build and machine offer. */
export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show the CPU features, the code path in use, threads, and CUDA devices')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => {
      const b = backends();
      if (options.json) {
        console.log(JSON.stringify(b, null, 2));
        return;
      }
      const flags = Object.entries(b.cpu)
        .filter(([, v]) => v === true)
        .map(([k]) => k);
      console.log(`CPU     ${b.cpu.isa} path (best available: ${b.cpu.detectedIsa}), ${b.cpu.threads} threads`);
      console.log(`        features: ${flags.join(', ') || 'none beyond x86-64'}`);
      if (!b.cuda.compiled) {
        console.log('CUDA    not compiled into this build');
      } else if (b.cuda.devices.length === 0) {
        console.log(`CUDA    compiled (runtime ${b.cuda.runtimeVersion}); no device: ${b.cuda.status}`);
      } else {
        console.log(`CUDA    compiled (runtime ${b.cuda.runtimeVersion}, driver ${b.cuda.driverVersion})`);
        for (const d of b.cuda.devices) {
          console.log(`        [${d.index}] ${d.name}, sm_${d.computeCapability.replace('.', '')}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB, ${d.multiprocessors} SMs`);
        }
      }
    });
}
