// The qarvd command as a separate process, for tests that run shell scripts calling it (the Slurm
// and Kubernetes examples). dist/ when it is newer than every source file (CI builds it right before
// the tests); otherwise lib/ transpiled (no type check, a few seconds) into node_modules/.cache, so a
// test never runs stale code.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../lib/native/binding.js';

const sources = () => readdirSync(path.join(packageRoot, 'lib'), { recursive: true }).map(String).filter((f) => f.endsWith('.ts'));

/** The script to run with node, and the environment it needs. */
export async function qarvdBin(): Promise<{ script: string; env: Record<string, string> }> {
  const dist = path.join(packageRoot, 'dist', 'cli', 'bin.js');
  const files = sources();
  const fresh = files.every((f) => {
    const js = path.join(packageRoot, 'dist', f.replace(/\.ts$/, '.js'));
    return existsSync(js) && statSync(js).mtimeMs >= statSync(path.join(packageRoot, 'lib', f)).mtimeMs;
  });
  if (fresh) return { script: dist, env: {} };
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update(readFileSync(path.join(packageRoot, 'lib', f)));
  const root = path.join(packageRoot, 'node_modules', '.cache', 'qarvd-cli-test', hash.digest('hex').slice(0, 16));
  const script = path.join(root, 'lib', 'cli', 'bin.js');
  if (!existsSync(script)) {
    rmSync(path.dirname(root), { recursive: true, force: true }); // earlier versions of the sources
    const ts = (await import('typescript')).default;
    for (const f of files) {
      const out = ts.transpileModule(readFileSync(path.join(packageRoot, 'lib', f), 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      const dest = path.join(root, 'lib', f.replace(/\.ts$/, '.js'));
      mkdirSync(path.dirname(dest), { recursive: true });
      writeFileSync(dest, out);
    }
    copyFileSync(path.join(packageRoot, 'package.json'), path.join(root, 'package.json'));
  }
  // The transpiled copy lives elsewhere: point it at this checkout's addon.
  const addon = [path.join(packageRoot, 'build', 'Release', 'qarvd.node'), path.join(packageRoot, 'prebuilds', 'linux-x64', 'node.napi.node')].find(existsSync);
  return { script, env: addon ? { QARVD_ADDON: addon } : {} };
}
