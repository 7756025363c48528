// The loop's guarantees: a run stopped and resumed from its checkpoint equals an uninterrupted
// one bit for bit (dropout RNG and data position included); early stopping keeps the best
// adapter; metrics.jsonl, loss.svg and summary.json are written.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import type { Tensor } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel } from '@peft-ts/models/node';
import { LoraModel } from '@peft-ts/lora';
import { createOptimizer, Trainer, type BatchSource, type TrainBatch, type TrainerOptions } from '../index.js';
import { outputDirStore } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

/** Deterministic batches: batch (epoch, i) is a function of its position only. */
function batches(count: number, seed: number): BatchSource {
  const make = (epoch: number, index: number): TrainBatch => {
    const B = 2;
    const T = 12;
    const ids = new Int32Array(B * T);
    const labels = new Int32Array(B * T);
    const mask = new Int32Array(B * T).fill(1);
    let x = (seed * 7919 + epoch * 104729 + index * 1299709) >>> 0;
    for (let i = 0; i < ids.length; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      ids[i] = 3 + (x % 300);
      labels[i] = i % T < 4 ? -100 : (ids[i] ?? 0);
    }
    return { inputIds: ids, attentionMask: mask, labels, batchSize: B, seqLen: T };
  };
  return { numBatches: () => count, batchAt: make };
}

async function setup(outputDir: string, extra: Partial<TrainerOptions> = {}) {
  const rt = await testRuntime();
  rt.manualSeed(5);
  const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
  const lora = LoraModel.inject(model, { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['q_proj', 'v_proj', 'down_proj'], init_lora_weights: false }, 'default', { seed: 3 });
  const trainer = new Trainer({
    model,
    lora,
    train: batches(3, 1),
    createOptimizer: (params: Map<string, Tensor>) => createOptimizer(rt, [...params.values()], { name: 'adamw', lr: 1e-3, weightDecay: 0.01 }),
    output: outputDirStore(outputDir),
    lr: 1e-3,
    schedule: 'cosine',
    warmupSteps: 1,
    maxSteps: 6,
    gradientAccumulation: 2,
    progress: false,
    ...extra,
  });
  return { trainer, model };
}

async function adapterBytes(dir: string): Promise<Map<string, Uint8Array>> {
  const f = await SafetensorsFile.open(join(dir, 'adapter_model.safetensors'));
  const out = new Map<string, Uint8Array>();
  for (const n of f.names()) out.set(n, await f.readBytes(n));
  await f.close();
  return out;
}

describe('Trainer', () => {
  it('resumes from a checkpoint bit-exactly: stopped + resumed equals uninterrupted', async () => {
    const straightDir = await mkdtemp(join(tmpdir(), 'peft-train-a-'));
    const lossesA: number[] = [];
    const a = await setup(straightDir, { callbacks: { onStepEnd: (l) => void lossesA.push(l.loss) } });
    await a.trainer.train();
    a.model.dispose();

    const resumedDir = await mkdtemp(join(tmpdir(), 'peft-train-b-'));
    const lossesB: number[] = [];
    const b1 = await setup(resumedDir, { saveEvery: 2, callbacks: { onStepEnd: (l) => (lossesB.push(l.loss), l.step === 3 ? 'stop' : undefined) } });
    const first = await b1.trainer.train();
    expect(first.stoppedEarly).toBe(true);
    expect(first.steps).toBe(3);
    expect(existsSync(join(resumedDir, 'checkpoint-3', 'trainer_state.json'))).toBe(true);
    expect(existsSync(join(resumedDir, 'checkpoint-3', 'optimizer'))).toBe(true);
    b1.model.dispose();
    const b2 = await setup(resumedDir, { saveEvery: 2, resumeFrom: 'latest', callbacks: { onStepEnd: (l) => void lossesB.push(l.loss) } });
    const second = await b2.trainer.train();
    expect(second.steps).toBe(6);
    b2.model.dispose();

    expect(lossesB).toEqual(lossesA);
    const wa = await adapterBytes(join(straightDir, 'adapter'));
    const wb = await adapterBytes(join(resumedDir, 'adapter'));
    expect([...wb.keys()]).toEqual([...wa.keys()]);
    for (const [k, v] of wa) expect(Buffer.compare(Buffer.from(wb.get(k) ?? []), Buffer.from(v)), k).toBe(0);
    // The resumed log is one run: six train lines, steps 1..6 once each.
    const lines = readFileSync(join(resumedDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step: number });
    expect(lines.filter((l) => l.type === 'train').map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('stops early on validation loss, keeps the best adapter, and writes metrics, curve and summary', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peft-train-es-'));
    const evals: number[] = [];
    // An improvement threshold no step can meet: after the first evaluation nothing counts as
    // better, so patience 2 ends the run two evaluations later.
    const { trainer, model } = await setup(dir, {
      validation: batches(2, 9),
      evalEvery: 1,
      evalOnStart: true,
      earlyStoppingPatience: 2,
      earlyStoppingThreshold: 100,
      callbacks: { onEvaluate: (e) => void evals.push(e.valLoss) },
    });
    const s = await trainer.train();
    expect(s.stoppedEarly).toBe(true);
    expect(s.steps).toBe(3);
    expect(evals).toHaveLength(4);
    expect(s.bestStep).toBe(1);
    expect(s.bestValLoss).toBe(evals[1]);
    expect(existsSync(join(dir, 'best-adapter', 'adapter_model.safetensors'))).toBe(true);
    const svg = readFileSync(join(dir, 'loss.svg'), 'utf8');
    expect(svg).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect((svg.match(/<polyline/g) ?? []).length).toBe(2);
    const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | string>);
    expect(metrics.filter((m) => m.type === 'eval').map((m) => m.valLoss)).toEqual(evals);
    expect(metrics.find((m) => m.type === 'train')).toMatchObject({ step: 1, lr: 0 });
    expect(metrics.filter((m) => m.type === 'eval').map((m) => m.step)).toEqual([0, 1, 2, 3]);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Record<string, unknown>;
    expect(summary).toMatchObject({ steps: s.steps, stoppedEarly: true });
    expect(s.peakGpuBytes).toBeGreaterThan(0);
    model.dispose();
  });

  it('refuses bad options by name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peft-train-bad-'));
    await expect(setup(dir, { gradientAccumulation: 0 })).rejects.toThrow(/trainer: gradientAccumulation: expected an integer >= 1, got 0/);
    await expect(setup(dir, { earlyStoppingPatience: 2 })).rejects.toThrow(/earlyStoppingPatience: expected a validation set/);
  });
});
