// The files and directories a run reads and writes, checked before any GPU work, and the
// operating system's I/O errors turned into one line that names the path.
import { constants, type Stats } from 'node:fs';
import { access, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { PeftError } from '@peft-ts/errors';

/** A path that is missing, of the wrong kind, or not usable as needed. */
export class PathError extends PeftError {
  readonly path: string;
  readonly expected: string;
  readonly got: string;

  constructor(args: { path: string; expected: string; got: string; label?: string; cause?: unknown }) {
    super('PATH', `${args.label ? `${args.label}: ` : ''}${args.path}: expected ${args.expected}, got ${args.got}`, { cause: args.cause });
    this.path = args.path;
    this.expected = args.expected;
    this.got = args.got;
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'nothing at that path',
  ENOTDIR: 'a path through a file, not a directory',
  EISDIR: 'a directory',
  EEXIST: 'something already there',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'a read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota exceeded',
  EMFILE: 'too many open files',
  EIO: 'an I/O error from the device',
  ENAMETOOLONG: 'a name too long',
};

/** The operating system's error code of an I/O failure, or undefined for any other error. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** A one-line description of an I/O error code ("no space left on the device (ENOSPC)"). */
export function describeErrno(code: string): string {
  return `${ERRNO_TEXT[code] ?? 'an I/O error'} (${code})`;
}

/**
 * Runs an I/O action on `path`; an operating-system error comes back as a PathError naming the
 * path (node names none for a failed write such as ENOSPC).
 */
export async function withPath<T>(path: string, expected: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    const code = errnoCode(error);
    if (code === undefined || error instanceof PeftError) throw error;
    throw new PathError({ path: (error as NodeJS.ErrnoException).path ?? path, expected, got: describeErrno(code), cause: error });
  }
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path);
  } catch (error) {
    const code = errnoCode(error);
    // A path through a file does not exist either; callers say which file is in the way.
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new PathError({ path, expected: 'a path that can be read', got: describeErrno(code ?? 'EIO'), cause: error });
  }
}

/** A directory that must exist and hold these files. */
export async function checkInputDir(path: string, what: string, files: readonly string[], label?: string): Promise<void> {
  const s = await statOrNull(path);
  const expected = `${what}${files.length ? ` (with ${files.join(', ')})` : ''}`;
  if (!s) throw new PathError({ path, expected, got: 'nothing at that path', ...(label ? { label } : {}) });
  if (!s.isDirectory()) throw new PathError({ path, expected, got: 'a file', ...(label ? { label } : {}) });
  for (const f of files) {
    const fs = await statOrNull(join(path, f));
    if (!fs?.isFile()) throw new PathError({ path: join(path, f), expected: `the ${f} of ${what}`, got: fs ? 'a directory' : 'nothing at that path', ...(label ? { label } : {}) });
  }
  await access(path, constants.R_OK).catch((error: unknown) => {
    throw new PathError({ path, expected: `${what} that can be read`, got: describeErrno(errnoCode(error) ?? 'EACCES'), ...(label ? { label } : {}) });
  });
}

/** A file that must exist and be readable. */
export async function checkInputFile(path: string, what: string, label?: string): Promise<void> {
  const s = await statOrNull(path);
  if (!s) throw new PathError({ path, expected: what, got: 'nothing at that path', ...(label ? { label } : {}) });
  if (!s.isFile()) throw new PathError({ path, expected: what, got: s.isDirectory() ? 'a directory' : 'something that is not a regular file', ...(label ? { label } : {}) });
  await access(path, constants.R_OK).catch((error: unknown) => {
    throw new PathError({ path, expected: `${what} that can be read`, got: describeErrno(errnoCode(error) ?? 'EACCES'), ...(label ? { label } : {}) });
  });
}

/** Names in a directory, or [] when it does not exist. */
export async function entriesOf(path: string): Promise<string[]> {
  const s = await statOrNull(path);
  return s?.isDirectory() ? readdir(path) : [];
}

/**
 * An output directory: it may exist (as a directory) or not; it, or the nearest existing
 * directory above it, must be writable. Returns whether it exists and is non-empty.
 */
export async function checkOutputDir(path: string, label?: string): Promise<{ exists: boolean; nonEmpty: boolean }> {
  const s = await statOrNull(path);
  const l = label ? { label } : {};
  if (s && !s.isDirectory()) throw new PathError({ path, expected: 'an output directory (or a path where one can be created)', got: 'a file', ...l });
  let probe = resolve(path);
  if (!s) {
    // Walk up to the first thing that exists: it must be a directory we can create inside.
    for (;;) {
      const parent = dirname(probe);
      const ps = await statOrNull(parent);
      if (ps) {
        if (!ps.isDirectory()) throw new PathError({ path, expected: 'an output directory path', got: `a path through the file ${parent}`, ...l });
        probe = parent;
        break;
      }
      if (parent === probe) break;
      probe = parent;
    }
  }
  try {
    await access(probe, constants.W_OK);
  } catch (error) {
    throw new PathError({ path: probe, expected: `a writable directory for ${path === probe ? 'the output' : `the output ${path}`}`, got: describeErrno(errnoCode(error) ?? 'EACCES'), ...l });
  }
  const nonEmpty = s ? (await readdir(path)).length > 0 : false;
  return { exists: s !== null, nonEmpty };
}

/** Whether a process with this id is running (a temporary of a live run is not stale). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

/**
 * Removes what an interrupted run (kill -9, power loss) of this output directory left behind:
 * `.checkpoint-N.tmp-<pid>-<tag>` (and `.adapter`, `.best-adapter`; `.old-` too) directories of
 * atomic writes and `metrics.jsonl.<pid>.tmp`-style files, whose process is gone. Returns the
 * names removed.
 */
export async function removeStaleTemporaries(outputDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await entriesOf(outputDir)) {
    // Only the names a run writes: a user's own file in the directory is never touched.
    const m = /^\.(?:checkpoint-\d+|adapter|best-adapter)\.(?:tmp|old)-(\d+)-[0-9a-f]+$/.exec(name) ?? /^(?:metrics\.jsonl|loss\.svg|summary\.json)\.(\d+)\.tmp$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    await rm(join(outputDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
