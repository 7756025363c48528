// A NaN or infinite loss or gradient norm stops training: an error naming the step, no update
// applied, the last good checkpoint kept, no adapter written from the broken weights.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import type { Tensor } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel } from '@peft-ts/models/node';
import { LoraModel } from '@peft-ts/lora';
import { createOptimizer, NonFiniteError, Trainer, type BatchSource, type TrainBatch } from '../index.js';
import { outputDirStore } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

function batches(count: number): BatchSource {
  const make = (_epoch: number, index: number): TrainBatch => {
    const B = 1;
    const T = 10;
    const ids = Int32Array.from({ length: T }, (_, i) => 3 + ((i * 31 + index * 7) % 300));
    const labels = ids.map((id, i) => (i < 3 ? -100 : id));
    return { inputIds: ids, attentionMask: new Int32Array(T).fill(1), labels, batchSize: B, seqLen: T };
  };
  return { numBatches: () => count, batchAt: make };
}

describe('Trainer non-finite guard', () => {
  it('stops at the step whose loss is not finite, keeping the last checkpoint and writing no adapter', async () => {
    const rt = await testRuntime();
    const dir = await mkdtemp(join(tmpdir(), 'peft-train-nan-'));
    const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
    const lora = LoraModel.inject(model, { r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: ['q_proj', 'v_proj'], init_lora_weights: false }, 'default', { seed: 1 });
    // A learning rate no weight survives: the first update is finite, the next forward overflows.
    const lr = 1e30;
    const steps: number[] = [];
    const trainer = new Trainer({
      model,
      lora,
      train: batches(4),
      createOptimizer: (params: Map<string, Tensor>) => createOptimizer(rt, [...params.values()], { name: 'sgd', lr, weightDecay: 0 }),
      output: outputDirStore(dir),
      lr,
      schedule: 'constant',
      maxSteps: 4,
      maxGradNorm: 0,
      saveEvery: 1,
      progress: false,
      callbacks: { onStepEnd: (l) => void steps.push(l.step) },
    });
    const error = await trainer.train().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NonFiniteError);
    const e = error as NonFiniteError;
    expect(e.step).toBe(2);
    expect(e.message).toMatch(/^training stopped at step 2: the (loss|gradient norm) is (NaN|Infinity|-Infinity)/);
    expect(e.lastCheckpoint).toBe(join(dir, 'checkpoint-1'));
    expect(steps).toEqual([1]);
    expect(readdirSync(dir).filter((n) => n.startsWith('checkpoint-'))).toEqual(['checkpoint-1']);
    expect(existsSync(join(dir, 'adapter'))).toBe(false);
    const f = await SafetensorsFile.open(join(dir, 'checkpoint-1', 'adapter_model.safetensors'));
    for (const name of f.names()) expect(Array.from(await f.readF32(name)).every(Number.isFinite), name).toBe(true);
    await f.close();
    model.dispose();
  });
});
