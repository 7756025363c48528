// Dawn's two adapter notices are dropped from the CLI's stderr and nothing else is: checked on
// the line filter with the stream cut at every position, and on the built CLI as a person runs
// it (a signal sent to the command's pid, progress bars on a terminal).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NoticeFilter, isDawnNotice, shouldFilter } from './dawn-notices.js';
import { alpacaJsonl, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from './testing/tiny-model.js';

const UNIFORM = 'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.\n';
const STORAGE = 'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 500000 to 16 to fit dynamic offset allocation limit.\n';
const CLI = resolve(import.meta.dirname, '../dist/cli.js');

function filterAll(chunks: string[]): string {
  const f = new NoticeFilter();
  return chunks.map((c) => f.push(c)).join('') + f.end();
}

describe('NoticeFilter', () => {
  const others = [
    'train: 4 steps\n',
    'Warning: maxDynamicUniformBuffersPerPipelineLayout is low\n',
    'Warning: something else from Dawn\n',
    '\r[####      ] 2/4 1.2 step/s\r[########  ] 3/4',
  ];
  const stream = [UNIFORM, STORAGE, others[0], others[1], UNIFORM, others[2], others[3]].join('');
  const expected = [others[0], others[1], others[2], others[3]].join('');

  it('drops exactly the two notices, however the stream is cut', () => {
    expect(filterAll([stream])).toBe(expected);
    for (let i = 0; i <= stream.length; i++) expect(filterAll([stream.slice(0, i), stream.slice(i)])).toBe(expected);
    expect(filterAll([...stream])).toBe(expected);
  });

  it('forwards an unfinished line at once unless it may still be a notice', () => {
    const f = new NoticeFilter();
    expect(f.push('\r[##  ] 1/4')).toBe('\r[##  ] 1/4');
    expect(f.push('Warning: maxDyn')).toBe('');
    expect(f.push('amicFoo\n')).toBe('Warning: maxDynamicFoo\n');
    expect(f.push('Warn')).toBe('');
    expect(f.push('ed\n')).toBe('Warned\n');
    expect(f.push(UNIFORM.slice(0, 40))).toBe('');
    expect(f.end()).toBe(UNIFORM.slice(0, 40));
  });

  it('knows the notices', () => {
    expect(isDawnNotice(UNIFORM)).toBe(true);
    expect(isDawnNotice(STORAGE.replace('\n', '\r\n'))).toBe(true);
    expect(isDawnNotice(`x${UNIFORM}`)).toBe(false);
    expect(isDawnNotice(UNIFORM.replace('16', 'sixteen'))).toBe(false);
  });

  it('runs only GPU commands in a child, not help, not on Windows, and not when asked to show the notices', () => {
    expect(shouldFilter(['train', '--model', 'm'], {})).toBe(true);
    expect(shouldFilter(['info'], {})).toBe(true);
    expect(shouldFilter(['estimate', '--model', 'm'], {})).toBe(false);
    expect(shouldFilter(['train', '--help'], {})).toBe(false);
    expect(shouldFilter(['train', '--', '--help'], {})).toBe(true);
    expect(shouldFilter([], {})).toBe(false);
    expect(shouldFilter(['train'], { PEFT_TS_STDERR_FILTERED: '1' })).toBe(false);
    expect(shouldFilter(['train'], { PEFT_TS_DAWN_NOTICES: '1' })).toBe(false);
    expect(shouldFilter(['train'], {}, 'linux')).toBe(true);
    expect(shouldFilter(['train'], {}, 'darwin')).toBe(true);
    expect(shouldFilter(['train'], {}, 'win32')).toBe(false);
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args` and collects its output; `onStderr` may act on what it sees (send a signal). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, onStderr?: (text: string, pid: number) => void): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr.setEncoding('utf8').on('data', (t: string) => {
      stderr += t;
      onStderr?.(stderr, child.pid ?? 0);
    });
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('the built CLI', () => {
  it('is built (pnpm build)', () => {
    expect(existsSync(CLI), `${CLI} is missing: run pnpm build first`).toBe(true);
  });

  it('prints no Dawn notice, and prints them all when PEFT_TS_DAWN_NOTICES=1', async () => {
    const shown = await run(process.execPath, [CLI, 'info'], { PEFT_TS_DAWN_NOTICES: '1' });
    expect(shown.code).toBe(0);
    const filtered = await run(process.execPath, [CLI, 'info']);
    expect(filtered.code).toBe(0);
    expect(filtered.stdout).toBe(shown.stdout);
    expect(filtered.stdout).toContain('adapter: ');
    expect(filtered.stderr).not.toMatch(/artificially reduced/);
    // Dawn prints them on this adapter (every Vulkan adapter reports more than 16), so the
    // filter has something to remove; without it the same lines are there.
    if (shown.stdout.includes('(software)')) expect(shown.stderr).toMatch(/maxDynamicUniformBuffersPerPipelineLayout artificially reduced/);
    expect(shown.stderr.split('\n').filter((l) => l && !isDawnNotice(`${l}\n`))).toEqual(filtered.stderr.split('\n').filter((l) => l));
  }, 60_000);

  it('SIGINT sent to the command stops training after the step with a checkpoint (exit 130)', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-notice-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(6, 3));
    const out = join(work, 'out');
    let sent = false;
    const args = [CLI, 'train', '--model', model, '--data', data, '--output', out, '--max-steps', '4', '--lora', '--batch-size', '1', '--grad-accum', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64'];
    const r = await run(process.execPath, args, {}, (text, pid) => {
      if (!sent && /^train: /m.test(text)) {
        sent = true;
        process.kill(pid, 'SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(r.stderr).not.toMatch(/artificially reduced/);
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('stopped by SIGINT after step 1');
    expect(existsSync(join(out, 'checkpoint-1', 'adapter_model.safetensors'))).toBe(true);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; step: number })
      .filter((l) => l.type === 'train')
      .map((l) => l.step);
    expect(steps).toEqual([1]);
  }, 120_000);

  it('on a terminal, progress bars still draw (redrawn with \\r) and no notice shows', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-tty-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(6, 3));
    const cmd = [process.execPath, CLI, 'train', '--model', model, '--data', data, '--output', join(work, 'out'), '--max-steps', '3', '--lora', '--batch-size', '1', '--validation-split', '0', '--max-length', '64'];
    const quoted = cmd.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    // util-linux `script` gives the command a pseudo-terminal, as an interactive shell would.
    const r = await run('script', ['-qec', quoted, '/dev/null'], { COLUMNS: '100' });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/artificially reduced/);
    // A bar redraw is a carriage return straight before the bar; plain lines end in \r\n on a pty.
    expect(r.stdout).toMatch(/[^\n]\rtrain [23]\/3 \[#/);
  }, 120_000);
});
