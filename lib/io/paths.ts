// Output paths, checked before any work is done so that a bad one fails fast with a message. Folders
// are created one level at a time: Node 20's recursive mkdir never returns on some paths (such as
// /proc/x, where mkdir reports ENOENT for a parent that exists).
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code}: ${err.message.replace(/^[A-Z]+: /, '')}` : String((e as Error)?.message ?? e);
}

/** Throws unless `dir` is a folder where a file can be created (tried with a probe file, then removed). */
async function expectWritableFolder(dir: string, name: string): Promise<void> {
  let s;
  try {
    s = await stat(dir);
  } catch (e) {
    throw new Error(`${name}: ${dir} does not exist (${reason(e)})`);
  }
  if (!s.isDirectory()) throw new Error(`${name}: ${dir} is not a folder`);
  const probe = path.join(dir, `.qarvd-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const h = await open(probe, 'wx');
    await h.close();
  } catch (e) {
    throw new Error(`${name}: cannot write in ${dir} (${reason(e)})`);
  }
  await rm(probe, { force: true });
}

/**
 * Creates the output folder `dir` (and missing parents) and checks that files can be written in it;
 * an Error naming `name` (the option, e.g. '--out') otherwise. Returns the folder's absolute path.
 */
export async function prepareOutputFolder(dir: string, name: string): Promise<string> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`Expected a folder path for ${name} but received ${typeof dir === 'string' ? 'an empty string' : typeof dir}`);
  if (dir.includes('\0')) throw new TypeError(`Expected a folder path for ${name} but it contains a NUL character`);
  const target = path.resolve(dir);
  // The missing components, from the nearest existing ancestor down.
  const missing: string[] = [];
  let at = target;
  for (;;) {
    try {
      const s = await stat(at);
      if (!s.isDirectory()) throw new Error(`${name}: ${at} exists and is not a folder`);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') {
        if ((e as NodeJS.ErrnoException).code === undefined) throw e;
        throw new Error(`${name}: cannot use ${at} (${reason(e)})`);
      }
      const parent = path.dirname(at);
      if (parent === at) throw new Error(`${name}: ${target} has no existing ancestor`);
      missing.push(at);
      at = parent;
    }
  }
  for (const p of missing.reverse()) {
    try {
      await mkdir(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(p).catch(() => null))?.isDirectory()) continue;
      throw new Error(`${name}: cannot create the folder ${p} (${reason(e)})`);
    }
  }
  await expectWritableFolder(target, name);
  return target;
}

/**
 * Checks, before any work, that `file` can be written: its folder exists and takes new files, and
 * the path is not a folder. An Error naming `name` (the option, e.g. '--out') otherwise.
 */
export async function checkOutputFile(file: string, name: string): Promise<void> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a file path for ${name} but received ${typeof file === 'string' ? 'an empty string' : typeof file}`);
  if (file.includes('\0')) throw new TypeError(`Expected a file path for ${name} but it contains a NUL character`);
  const target = path.resolve(file);
  const s = await stat(target).catch(() => null);
  if (s?.isDirectory()) throw new Error(`${name}: ${target} is a folder, not a file`);
  await expectWritableFolder(path.dirname(target), name);
}
