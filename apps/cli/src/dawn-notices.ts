// Dawn prints two notices from native code to file descriptor 2 whenever it sets up a Vulkan
// adapter ("maxDynamic…BuffersPerPipelineLayout artificially reduced from N to 16 to fit dynamic
// offset allocation limit."). They come from Dawn's own limit clamping while it enumerates
// adapters, before any limit can be requested, and no JavaScript API reaches that log. So the
// commands that use the GPU run in a child process whose stderr passes through this module, which
// drops exactly those two lines and forwards everything else as it arrives.
//
// The child runs in its own process group, so a terminal's Ctrl-C reaches only this process,
// which hands it on once: the trainer's "first Ctrl-C checkpoints, second exits" keeps working,
// and so does `kill -INT <pid>` aimed at the command a user started.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

/** The notices, each a whole line. Nothing else is ever dropped. */
const NOTICE =
  /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?\n?$/;
const NOTICE_START = 'Warning: maxDynamic';

/** Commands that open the GPU device. */
export const DEVICE_COMMANDS: ReadonlySet<string> = new Set(['demo', 'eval', 'export', 'generate', 'info', 'merge', 'sweep', 'train']);

/** Set in the child: it runs the command itself. Set to 1 by a user: Dawn's notices are shown as they are. */
export const CHILD_ENV = 'PEFT_TS_STDERR_FILTERED';
export const SHOW_NOTICES_ENV = 'PEFT_TS_DAWN_NOTICES';
/** The terminal width, when the parent's stderr is a terminal, so progress bars draw as they would. */
const TTY_ENV = 'PEFT_TS_STDERR_COLUMNS';

export function isDawnNotice(line: string): boolean {
  return NOTICE.test(line);
}

/**
 * Line filter over a text stream. Whole lines are forwarded unless they are a notice; an
 * unfinished line is forwarded at once (progress bars redraw with `\r` and no newline) unless it
 * may still turn out to be a notice, in which case it waits for its newline.
 */
export class NoticeFilter {
  private pending = '';

  push(chunk: string): string {
    let text = this.pending + chunk;
    this.pending = '';
    let out = '';
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const line = text.slice(0, nl + 1);
      text = text.slice(nl + 1);
      if (!isDawnNotice(line)) out += line;
    }
    if (text.length > 0 && (NOTICE_START.startsWith(text) || text.startsWith(NOTICE_START))) this.pending = text;
    else out += text;
    return out;
  }

  /** What is left when the stream ends. */
  end(): string {
    const rest = this.pending;
    this.pending = '';
    return isDawnNotice(rest) ? '' : rest;
  }
}

/** Whether this process should hand `argv` to a filtered child instead of running it. */
export function shouldFilter(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): boolean {
  if (env[CHILD_ENV] === '1' || env[SHOW_NOTICES_ENV] === '1') return false;
  // On Windows a detached child gets a console window of its own: the command runs as it is.
  if (platform === 'win32') return false;
  const [name, ...rest] = argv;
  if (name === undefined || !DEVICE_COMMANDS.has(name)) return false;
  const beforeDashes = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  return !beforeDashes.includes('--help') && !beforeDashes.includes('-h');
}

/**
 * In the child: makes stderr report the parent's terminal (so progress bars draw as on a TTY),
 * follows resizes, and stops like a SIGTERM when the parent goes away.
 */
export function adoptParentTerminal(): void {
  if (process.env[CHILD_ENV] !== '1') return;
  const columns = Number(process.env[TTY_ENV]);
  if (Number.isInteger(columns) && columns > 0) {
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    (process.stderr as { columns?: number }).columns = columns;
    process.on('message', (message: unknown) => {
      const c = (message as { columns?: unknown } | null)?.columns;
      if (typeof c === 'number' && c > 0) (process.stderr as { columns?: number }).columns = c;
    });
  }
  // The IPC channel only carries resizes and tells us when the parent is gone; it must not keep
  // the command alive once its work is done.
  process.channel?.unref();
  process.once('disconnect', () => {
    process.kill(process.pid, 'SIGTERM');
  });
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Runs this same CLI with `argv` in a child whose stderr loses Dawn's notices; resolves to its exit code. */
export function runFiltered(argv: readonly string[]): Promise<number> {
  const script = process.argv[1];
  if (script === undefined) throw new Error('peft-ts: cannot find its own entry script');
  const columns = process.stderr.isTTY ? String(process.stderr.columns || 80) : '';
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, script, ...argv], {
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
    detached: true,
    env: { ...process.env, [CHILD_ENV]: '1', [TTY_ENV]: columns },
  });
  const filter = new NoticeFilter();
  const stderr = child.stderr;
  if (!stderr) throw new Error('peft-ts: the child process has no stderr pipe');
  stderr.setEncoding('utf8');
  stderr.on('data', (chunk: string) => {
    const text = filter.push(chunk);
    if (text) process.stderr.write(text);
  });
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const handlers = FORWARDED.map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  // Ctrl-Z stops both; `fg` resumes both.
  const stop = (): void => {
    child.kill('SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  };
  const resume = (): void => {
    child.kill('SIGCONT');
  };
  process.on('SIGTSTP', stop);
  process.on('SIGCONT', resume);
  const resize = (): void => {
    if (child.connected) child.send({ columns: process.stderr.columns });
  };
  if (process.stderr.isTTY) process.stderr.on('resize', resize);
  const cleanup = (): void => {
    for (const [s, h] of handlers) process.off(s, h);
    process.off('SIGTSTP', stop);
    process.off('SIGCONT', resume);
    process.stderr.off('resize', resize);
  };
  return new Promise<number>((resolve, reject) => {
    child.once('error', (error) => {
      cleanup();
      reject(error);
    });
    // 'close' comes after the child's stderr has ended, so nothing it wrote is lost.
    child.once('close', (code, signal) => {
      cleanup();
      const rest = filter.end();
      if (rest) process.stderr.write(rest);
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}
