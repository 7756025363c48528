// The "already exists" error of merge and quantize names the command-line flag (--overwrite),
// also when the output directory appears while the output is being written.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT, errorLine, exitCodeFor } from '../errors.js';
import { merge } from './merge.js';
import { quantize } from './quantize.js';
import { train } from './train.js';
import { alpacaJsonl, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';

/** Creates `dir` at the first progress output, as another process writing there would. */
function createDuringWrite(dir: string): void {
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  vi.spyOn(process.stderr, 'write').mockImplementation(() => {
    if (!existsSync(dir)) mkdirSync(dir);
    return true;
  });
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('peft-ts --overwrite in messages', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('merge and quantize name --overwrite, not the library option', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-overwrite-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(2, 3));
    const run = join(work, 'run');
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await train(['--model', model, '--data', data, '--output', run, '--lora', '--max-steps', '1', '--batch-size', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64'])).toBe(0);
    vi.restoreAllMocks();

    const cases: [string, () => Promise<number>][] = [
      [join(work, 'merged'), () => merge([model, join(run, 'adapter'), join(work, 'merged')])],
      [join(work, 'q'), () => quantize([model, join(work, 'q')])],
    ];
    for (const [outDir, command] of cases) {
      // Exists before: refused up front.
      mkdirSync(outDir);
      let e = await rejection(command());
      expect(errorLine(e)).toBe(`peft-ts: <out-dir>: ${outDir}: expected a new directory, got one that exists; pass --overwrite to replace it`);
      // Appears while writing: refused at the end, in the same words.
      rmSync(outDir, { recursive: true });
      createDuringWrite(outDir);
      e = await rejection(command());
      vi.restoreAllMocks();
      expect(errorLine(e)).toBe(`peft-ts: <out-dir>: ${outDir}: expected a new directory, got one that appeared while writing; pass --overwrite to replace it`);
      expect(errorLine(e)).not.toContain('overwrite: true');
      expect(exitCodeFor(e)).toBe(EXIT.input);
      // What the user had there is left alone, and no temporary is left behind.
      expect(readdirSync(outDir)).toEqual([]);
      expect(readdirSync(work).filter((n) => n.includes('.tmp-'))).toEqual([]);
    }
  });
});
