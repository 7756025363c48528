// Progress as the user sees it: without a terminal, a plain line every few seconds with the rate
// and ETA (not one per tensor); on a terminal, one bar redrawn in place; rates below 1 readable.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainSummary } from '@peft-ts/trainer';
import { formatRate, PLAIN_INTERVAL_S, progressBar } from './progress.js';
import { merge } from './commands/merge.js';
import { quantize } from './commands/quantize.js';
import { summaryLines, train } from './commands/train.js';
import { alpacaJsonl, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from './testing/tiny-model.js';

function stream(isTTY: boolean): { isTTY: boolean; columns: number; text: string; write(t: string): boolean } {
  return {
    isTTY,
    columns: 120,
    text: '',
    write(t: string) {
      this.text += t;
      return true;
    },
  };
}

describe('peft-ts progress', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('prints a plain line every few seconds with rate and ETA, and the last one', () => {
    let t = 0;
    const s = stream(false);
    const bar = progressBar('merge', 'tensors', { stream: s, now: () => t });
    for (let done = 1; done <= 13; done += 1) {
      t = done;
      bar.update(done, 13);
    }
    bar.finish();
    const lines = s.text.trimEnd().split('\n');
    expect(PLAIN_INTERVAL_S).toBe(5);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^merge 5\/13 1\.00 tensors\/s {2}elapsed 00:05 {2}eta 00:08$/);
    expect(lines[1]).toMatch(/^merge 10\/13 1\.00 tensors\/s {2}elapsed 00:10 {2}eta 00:03$/);
    expect(lines[2]).toMatch(/^merge 13\/13 1\.00 tensors\/s {2}elapsed 00:13 {2}eta 00:00$/);
  });

  it('draws one bar on a terminal', () => {
    let t = 0;
    const s = stream(true);
    const bar = progressBar('quantize', 'tensors', { stream: s, now: () => t });
    for (let done = 1; done <= 4; done += 1) {
      t = done / 2;
      bar.update(done, 4, { tensor: `w${done}` });
    }
    bar.finish();
    expect(s.text.split('\r')).toHaveLength(5);
    expect(s.text.split('\n')).toHaveLength(2);
    expect(s.text).toMatch(/\rquantize 4\/4 \[#+\] 2\.00 tensors\/s {2}elapsed 00:02 {2}eta 00:00 {2}tensor w4\s*\n$/);
  });

  it('merge and quantize without a terminal print progress once per interval, not per tensor', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-progress-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(2, 3));
    let err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err += String(chunk);
      return true;
    });
    const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    try {
      expect(await train(['--model', model, '--data', data, '--output', join(work, 'run'), '--lora', '--max-steps', '1', '--batch-size', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64'])).toBe(0);
      // A clock that stands still: every tensor is done within the first interval.
      vi.spyOn(performance, 'now').mockReturnValue(1000);
      err = '';
      expect(await merge([model, join(work, 'run', 'adapter'), join(work, 'merged')])).toBe(0);
      expect(err.split('\n').filter((l) => l.startsWith('merge '))).toEqual([expect.stringMatching(/^merge 12\/12 .*tensors\/s .*eta 00:00$/)]);
      err = '';
      expect(await quantize([model, join(work, 'q')])).toBe(0);
      expect(err.split('\n').filter((l) => l.startsWith('quantize '))).toEqual([expect.stringMatching(/^quantize 12\/12 .*tensors\/s .*eta 00:00 {2}tensor /)]);
    } finally {
      if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }
  });

  it('shows a rate below 1 token per second with two significant figures', () => {
    expect(formatRate(166 / 300)).toBe('0.55');
    expect(formatRate(0.004217)).toBe('0.0042');
    expect(formatRate(4.234)).toBe('4.2');
    expect(formatRate(42.3)).toBe('42');
    expect(formatRate(99.96)).toBe('100');
    expect(formatRate(1234.4)).toBe('1234');
    expect(formatRate(0)).toBe('0');
    const summary: TrainSummary = {
      steps: 2, epochsCompleted: 0, seconds: 300, tokens: 166, trainedTokens: 80, finalLoss: 10.5, bestValLoss: null, bestStep: null,
      stoppedEarly: false, interrupted: false, checkpointDir: null, peakGpuBytes: 1e6, adapterDir: '/o/adapter',
    };
    expect(summaryLines(summary, '/o')).toContain('trained 2 steps in 300.0 s (166 tokens, 0.55 tok/s)');
  });
});
