// The compile suite on the tiny Llama: a first step on a fresh device creates its pipelines, a
// later step at another sequence length creates none, and after precompiling the first step
// creates none either.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '@peft-ts/tensor';
import { runCompileBench } from './compile.js';
import type { BenchResult } from './types.js';

describe('compile suite', () => {
  let rt: Runtime;
  let results: BenchResult[];
  beforeAll(async () => {
    rt = await createRuntime();
    results = await runCompileBench(rt, { quick: true, cases: 'tiny llama' });
  }, 300_000);
  afterAll(() => rt.destroy());

  const value = (name: string): number => {
    const r = results.find((x) => x.name === `tiny llama lora ${name}`);
    if (!r) throw new Error(`no result "tiny llama lora ${name}" among ${results.map((x) => x.name).join(', ')}`);
    return r.value;
  };

  it('counts the pipelines of the first step, none at another length and none after precompiling', () => {
    expect(value('pipelines')).toBeGreaterThanOrEqual(20);
    expect(value('pipelines')).toBeLessThanOrEqual(40);
    expect(value('pipelines at seq 5')).toBe(0);
    expect(value('pipelines, precompiled')).toBe(0);
    expect(value('first step')).toBeGreaterThan(0);
    expect(value('build + first step, precompiled')).toBeGreaterThan(0);
    // The same seeded weights and tokens on both fresh devices (the suite checks the losses agree).
    expect(results.find((r) => r.name === 'tiny llama lora first step')?.detail).toMatch(/step-0 loss 5\.5\d{3}/);
  });
});
