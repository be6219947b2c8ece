// Progress for long commands: a bar on an interactive terminal, occasional lines otherwise (CI logs).
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number, label?: string): void;
  stop(): void;
}

export function progress(title: string, options: { quiet?: boolean } = {}): Progress {
  if (options.quiet) return { update() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${title} [{bar}] {percentage}% {value}/{total} {label}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total, label = '') {
        if (!started) {
          bar.start(total, 0, { label });
          started = true;
        }
        bar.setTotal(total);
        bar.update(done, { label });
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let lastTenth = -1;
  return {
    update(done, total, label = '') {
      const tenth = Math.floor((10 * done) / Math.max(total, 1));
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        process.stderr.write(`${title}: ${done}/${total} ${label}\n`);
      }
    },
    stop() {},
  };
}
