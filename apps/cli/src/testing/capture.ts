// Test helper: the CLI's output captured in-process (vitest spies on the process streams; the
// caller's afterEach restores them).
import { vi } from 'vitest';

/** Swallows stdout and collects stderr; `onText` sees each piece as it is written. */
export function captureStderr(onText: (text: string) => void = () => undefined): { text: () => string } {
  let buf = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    buf += text;
    onText(text);
    return true;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  return { text: () => buf };
}

/**
 * Collects stdout and stderr separately, and both interleaved as written (`text`): what a
 * terminal would show.
 */
export function captureOutput(): { stdout: () => string; stderr: () => string; text: () => string } {
  let out = '';
  let err = '';
  let all = '';
  const decode = (chunk: string | Uint8Array): string => (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    const text = decode(chunk);
    out += text;
    all += text;
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    const text = decode(chunk);
    err += text;
    all += text;
    return true;
  });
  return { stdout: () => out, stderr: () => err, text: () => all };
}
