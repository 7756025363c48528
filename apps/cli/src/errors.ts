// Errors to exit codes and the one line a user sees: usage errors exit 2, bad input (a file, a
// path, a config) 3, GPU problems 4, the memory budget 5, anything else is a bug (1, with a trace).
import { PeftError } from '@peft-ts/errors';
import { describeErrno } from '@peft-ts/trainer/node';
import { UsageError } from './args.js';

/** Exit codes: 0 ok, 1 unexpected failure, 2 usage, 3 bad input (file, config), 4 GPU problem, 5 memory budget. */
export const EXIT = { ok: 0, failure: 1, usage: 2, input: 3, device: 4, memory: 5 } as const;

/** The "Exit codes:" section every command's --help ends with. */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  unexpected failure (a bug: the trace is printed)
  2  usage error: an unknown or missing flag or argument, a flag value out of range
  3  bad input: a path that does not exist, a file or directory that is not what was expected
  4  GPU problem: no WebGPU adapter, a lost device
  5  the memory budget does not fit
`;

/** A command's help with the exit codes section (once). */
export function withExitCodes(help: string): string {
  return help.includes('Exit codes:') ? help : `${help.trimEnd()}\n\n${EXIT_CODES_HELP}`;
}

/**
 * Runs a library write of a new directory, naming the command-line flag in its "already exists"
 * error: the libraries say `overwrite: true` (their option), the command line says --overwrite.
 * The directory was checked before; this is one that appeared while the output was written.
 */
export async function overwriteByFlag<T>(label: string, path: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (PeftError.isInstance(error) && error.code === 'OUTPUT_EXISTS' && !error.message.includes('--overwrite')) {
      throw new PeftError('OUTPUT_EXISTS', `${label}: ${path}: expected a new directory, got one that appeared while writing; pass --overwrite to replace it`, { cause: error });
    }
    throw error;
  }
}

/** An operating-system I/O error (ENOENT, EACCES, ENOSPC...) that reached the top. */
function ioError(error: unknown): NodeJS.ErrnoException | null {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return error instanceof Error && typeof code === 'string' && /^E[A-Z]+$/.test(code) && !PeftError.isInstance(error) ? error : null;
}

/** The one line printed for an error that is not a bug: its message, or for an I/O error the path and what went wrong. */
export function errorLine(error: unknown): string {
  const io = ioError(error);
  if (io) return `peft-ts: ${io.path ?? '(a file)'}: ${describeErrno(io.code ?? 'EIO')}${io.syscall ? ` during ${io.syscall}` : ''}`;
  const message = (error as Error).message;
  return `${message.startsWith('peft-ts') ? '' : 'peft-ts: '}${message}`;
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (ioError(error)) return EXIT.input;
  if (PeftError.isInstance(error)) {
    if (error.code === 'DEVICE') return EXIT.device;
    if (error.code === 'OUT_OF_MEMORY_BUDGET') return EXIT.memory;
    return EXIT.input;
  }
  return EXIT.failure;
}
