// Writing a whole output directory atomically: everything goes into a temporary sibling that is
// renamed into place at the end, so a failed or interrupted run leaves no half-written model.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { PeftError } from '@peft-ts/errors';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function checkOutputDir(outDir: string, overwrite: boolean): Promise<void> {
  if (!overwrite && (await exists(outDir))) {
    throw new PeftError('OUTPUT_EXISTS', `${outDir}: output directory already exists (pass overwrite: true to replace it)`);
  }
}

/** Runs `fill` on a fresh temporary directory beside `outDir`, then moves it to `outDir`. */
export async function writeDirAtomically<T>(outDir: string, overwrite: boolean, fill: (dir: string) => Promise<T>): Promise<T> {
  const target = resolve(outDir);
  await checkOutputDir(target, overwrite);
  await mkdir(dirname(target), { recursive: true });
  const tag = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const temp = join(dirname(target), `.${basename(target)}.tmp-${tag}`);
  await mkdir(temp);
  let result: T;
  try {
    result = await fill(temp);
    await checkOutputDir(target, overwrite);
    if (await exists(target)) {
      // A directory cannot be renamed over a non-empty one: move the old one aside first.
      const old = join(dirname(target), `.${basename(target)}.old-${tag}`);
      await rename(target, old);
      await rename(temp, target);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(temp, target);
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
  return result;
}
