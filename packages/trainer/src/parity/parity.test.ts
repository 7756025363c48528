// Training parity with PEFT + torch.optim.AdamW: from the fixtures' adapter_init and batch, six
// steps reproduce the losses, the first step's LoRA gradients and the final adapter.
import { describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import type { Tensor } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel } from '@peft-ts/models/node';
import { LoraModel } from '@peft-ts/lora/node';
import { createOptimizer, Trainer, type TrainBatch } from '../index.js';
import { outputDirStore } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

/** max |a - e| / max |e|: relative error at the scale of the tensor. */
function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(expected[i] ?? 0));
    maxDiff = Math.max(maxDiff, Math.abs((actual[i] ?? NaN) - (expected[i] ?? 0)));
  }
  return actual.length === expected.length ? maxDiff / Math.max(maxRef, 1e-30) : Infinity;
}

async function parity(arch: string) {
  const rt = await testRuntime();
  const dir = join(fixtures, arch, 'train');
  const model = await loadModel(rt, join(fixtures, arch, 'model'));
  const lora = new LoraModel(model);
  await lora.loadAdapter(join(dir, 'adapter_init'));
  const f = await SafetensorsFile.open(join(dir, 'batch.safetensors'));
  const [batchSize = 0, seqLen = 0] = f.info('input_ids').shape;
  const batch: TrainBatch = {
    inputIds: (await f.read('input_ids')).data as Int32Array,
    attentionMask: (await f.read('attention_mask')).data as Int32Array,
    labels: (await f.read('labels')).data as Int32Array,
    batchSize,
    seqLen,
  };
  await f.close();
  const losses: number[] = [];
  let grads0: Map<string, Float32Array> | null = null;
  const outputDir = await mkdtemp(join(tmpdir(), `peft-parity-${arch}-`));
  const trainer = new Trainer({
    model,
    lora,
    train: { numBatches: () => 1, batchAt: () => batch },
    createOptimizer: (params: Map<string, Tensor>) => {
      const inner = createOptimizer(rt, [...params.values()], { name: 'adamw', lr: 5e-3, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 });
      return {
        ...inner,
        step: async (lr: number) => {
          if (!grads0) {
            grads0 = new Map();
            for (const [k, p] of params) grads0.set(k, (await p.grad?.toArray()) as Float32Array);
          }
          await inner.step(lr);
        },
      };
    },
    output: outputDirStore(outputDir),
    lr: 5e-3,
    schedule: 'constant',
    maxSteps: 6,
    maxGradNorm: 0,
    progress: false,
    callbacks: { onStepEnd: (log) => void losses.push(log.loss) },
  });
  const summary = await trainer.train();
  const expected = JSON.parse(readFileSync(join(dir, 'parity.json'), 'utf8')) as { losses: number[] };
  return { losses, expectedLosses: expected.losses, grads0: grads0 as Map<string, Float32Array> | null, adapterDir: summary.adapterDir, dir, model };
}

describe('training parity with PEFT and torch AdamW', () => {
  for (const arch of ['llama', 'phi3']) {
    it(`${arch}: 6 AdamW steps reproduce the losses, step-0 gradients and final adapter within 1e-4 relative`, async () => {
      const r = await parity(arch);
      expect(r.losses).toHaveLength(6);
      r.losses.forEach((l, i) => expect(Math.abs(l - (r.expectedLosses[i] ?? NaN)) / Math.abs(r.expectedLosses[i] ?? 1), `loss ${i}`).toBeLessThan(1e-4));
      const g = await SafetensorsFile.open(join(r.dir, 'grads_step0.safetensors'));
      for (const name of g.names()) expect(relError(r.grads0?.get(name) ?? [], await g.readF32(name)), name).toBeLessThan(1e-4);
      await g.close();
      const ours = await SafetensorsFile.open(join(r.adapterDir, 'adapter_model.safetensors'));
      const theirs = await SafetensorsFile.open(join(r.dir, 'adapter_final', 'adapter_model.safetensors'));
      expect(ours.names().sort()).toEqual(theirs.names().sort());
      for (const name of theirs.names()) expect(relError(await ours.readF32(name), await theirs.readF32(name)), name).toBeLessThan(1e-4);
      await ours.close();
      await theirs.close();
      r.model.dispose();
    });
  }
});
