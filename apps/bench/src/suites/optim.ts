// Optimizer benchmark suite: time per AdamW step for 10M and 100M parameters (100k in quick mode)
// with f32 state resident on the GPU, f32 state paged through a quarter-size GPU budget, and 8-bit
// state, plus the bandwidth each achieves.
import { AdamW, type AdamWOptions } from '@peft-ts/paged-optim';
import { randn, type Runtime, type Tensor } from '@peft-ts/tensor';
import { stats, type BenchResult, type SuiteOptions } from './types.js';

/** Parameters are split into this many tensors, so each step is a multi-tensor update. */
const TENSORS = 16;

interface Variant {
  name: string;
  /** GPU bytes moved per parameter per step (reads + writes of p, g and state). */
  bytesPerParam: number;
  options(stateBytes: number): AdamWOptions;
}

const VARIANTS: Variant[] = [
  { name: 'f32 resident', bytesPerParam: 28, options: () => ({}) },
  // A quarter of the f32 state fits on the GPU; the rest streams from host memory every step.
  { name: 'f32 paged (budget 1/4)', bytesPerParam: 28, options: (stateBytes) => ({ paging: { budgetBytes: Math.floor(stateBytes / 4) } }) },
  { name: '8-bit resident', bytesPerParam: 16, options: () => ({ bits: 8 }) },
];

function human(n: number): string {
  return n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`;
}

/** Milliseconds per step, each step timed to its end on the GPU. */
async function timeSteps(rt: Runtime, opt: AdamW, steps: number): Promise<number[]> {
  await rt.sync();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    await opt.step();
    // Resident steps only record work; wait for the GPU to finish it.
    await rt.sync();
    times.push(performance.now() - start);
  }
  return times;
}

export async function runOptimBench(rt: Runtime, opts: SuiteOptions): Promise<BenchResult[]> {
  const sizes = opts.quick ? [100_000] : rt.gpu.info.isSoftware ? [1_000_000, 10_000_000] : [10_000_000, 100_000_000];
  const steps = opts.quick ? 3 : 5;
  const results: BenchResult[] = [];
  for (const total of sizes) {
    const per = Math.ceil(total / TENSORS);
    for (const variant of VARIANTS) {
      const params: Tensor[] = [];
      for (let i = 0; i < TENSORS; i++) {
        const p = randn(rt, [per], { seed: 1 + i }).keep();
        p.requiresGrad = true;
        p.grad = randn(rt, [per], { seed: 1000 + i }).keep();
        params.push(p);
      }
      const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0.01, ...variant.options(8 * per * TENSORS) });
      try {
        // Warm-up: pipelines, state allocation, the first host chunks.
        await opt.step();
        await opt.step();
        const t = stats(await timeSteps(rt, opt, steps));
        const ms = t.median;
        const params_ = per * TENSORS;
        const gbps = (variant.bytesPerParam * params_) / (ms / 1000) / 1e9;
        const sb = opt.stateBytes();
        const host = sb.host > 0 ? `, ${(sb.host / 2 ** 20).toFixed(0)} MiB streamed from host each step` : '';
        results.push({
          suite: 'optim',
          name: `AdamW ${variant.name}, ${human(total)} params`,
          value: ms,
          min: t.min,
          max: t.max,
          iterations: steps,
          better: 'lower',
          unit: 'ms/step',
          detail: `${gbps.toFixed(1)} GB/s on-GPU traffic, optimizer GPU memory ${(sb.gpu / 2 ** 20).toFixed(1)} MiB${host}`,
        });
      } finally {
        opt.dispose();
        for (const p of params) p.dispose();
      }
    }
  }
  return results;
}
