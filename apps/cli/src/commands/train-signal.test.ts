// Ctrl-C or SIGTERM during `peft-ts train`: the step in progress finishes, a resumable
// checkpoint is written and the resume command printed; that command completes the run. A
// second signal exits at once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resumeCommand, train } from './train.js';
import { alpacaJsonl, LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { captureStderr } from '../testing/capture.js';

const QUICK = ['--lora', '--batch-size', '1', '--grad-accum', '1', '--validation-split', '0', '--optimizer', 'adamw', '--max-length', '64'];

/** Captures stderr; `onText` sees each write (to send a signal at a given moment). */

function trainSteps(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; step: number })
    .filter((l) => l.type === 'train')
    .map((l) => l.step);
}

describe('peft-ts train: signals', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('SIGINT finishes the step, writes a checkpoint, prints the resume command; resuming completes the run', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-sig-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'my data.jsonl');
    await writeFile(data, alpacaJsonl(6, 3));
    const out = join(work, 'out');
    const args = ['--model', model, '--data', data, '--output', out, '--max-steps', '4', ...QUICK];
    let sent = false;
    // The signal arrives as training starts (the line before the first step).
    const err = captureStderr((text) => {
      if (!sent && text.startsWith('train: ')) {
        sent = true;
        process.emit('SIGINT', 'SIGINT');
      }
    });
    expect(await train(args)).toBe(130);
    vi.restoreAllMocks();
    expect(sent).toBe(true);
    expect(trainSteps(out)).toEqual([1]);
    expect(existsSync(join(out, 'checkpoint-1', 'trainer_state.json'))).toBe(true);
    expect(existsSync(join(out, 'checkpoint-1', 'adapter_model.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'adapter'))).toBe(false);
    const command = resumeCommand(args);
    expect(err.text()).toContain(`stopped by SIGINT after step 1; checkpoint ${join(out, 'checkpoint-1')}`);
    expect(err.text()).toContain(`resume with: ${command}`);
    expect(command).toContain(`--data '${data}'`);
    expect(command.endsWith(' --resume latest')).toBe(true);
    expect(process.listenerCount('SIGINT')).toBe(0);

    // The printed command (without its 'peft-ts train' and quoting) finishes the run.
    captureStderr();
    expect(await train([...args, '--resume', 'latest'])).toBe(0);
    vi.restoreAllMocks();
    expect(trainSteps(out)).toEqual([1, 2, 3, 4]);
    expect(existsSync(join(out, 'adapter', 'adapter_model.safetensors'))).toBe(true);
  });

  it('a second signal exits at once', async () => {
    const work = await mkdtemp(join(tmpdir(), 'peft-cli-sig2-'));
    const model = await writeTinyLlama({ vocabSize: 32000, maxPositions: 64, tokenizerDir: LLAMA2_TOKENIZER_DIR });
    const data = join(work, 'd.jsonl');
    await writeFile(data, alpacaJsonl(4, 3));
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    let sent = false;
    captureStderr((text) => {
      if (!sent && text.startsWith('train: ')) {
        sent = true;
        process.emit('SIGTERM', 'SIGTERM');
        process.emit('SIGTERM', 'SIGTERM');
      }
    });
    const code = await train(['--model', model, '--data', data, '--output', join(work, 'out'), '--max-steps', '3', ...QUICK]);
    expect(exit).toHaveBeenCalledWith(143);
    expect(code).toBe(143);
  });
});
