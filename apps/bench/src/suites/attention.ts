// Attention benchmark: forward and forward+backward wall time of causal self-attention at
// Llama-style shapes (Hq 32, Hkv 8, D 128), or tiny shapes for a smoke run on a software adapter.
import { attention, backward, fromArray, noGrad, tidy, type Runtime, type Tensor } from '@peft-ts/tensor';
import { timeSamples, type BenchResult, type SuiteOptions } from './types.js';

interface Case {
  B: number;
  T: number;
  HQ: number;
  HKV: number;
  D: number;
}

/** Seeded uniform values in [-1, 1) (mulberry32), so runs see the same data. */
function randomData(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** FLOPs of the causal forward (QK^T and PV over the lower triangle). */
function forwardFlops(c: Case): number {
  return 2 * 2 * c.B * c.HQ * c.D * ((c.T * (c.T + 1)) / 2);
}

async function benchCase(rt: Runtime, c: Case, samples: number): Promise<BenchResult[]> {
  const shape = `B=${c.B} T=${c.T} Hq=${c.HQ} Hkv=${c.HKV} D=${c.D}`;
  const q = fromArray(rt, randomData(c.B * c.T * c.HQ * c.D, 1), [c.B, c.T, c.HQ, c.D], 'f32', { requiresGrad: true });
  const k = fromArray(rt, randomData(c.B * c.T * c.HKV * c.D, 2), [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
  const v = fromArray(rt, randomData(c.B * c.T * c.HKV * c.D, 3), [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
  const dOut = fromArray(rt, randomData(c.B * c.T * c.HQ * c.D, 4), [c.B, c.T, c.HQ, c.D]);
  const clearGrads = (): void => {
    for (const t of [q, k, v] as Tensor[]) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  try {
    const o = { samples, minSampleMs: 50, warmup: 2 };
    const fwd = await timeSamples(rt, () => tidy(() => noGrad(() => attention(q, k, v)).dispose()), o);
    const both = await timeSamples(
      rt,
      () => {
        tidy(() => backward(attention(q, k, v), dOut));
        clearGrads();
      },
      o,
    );
    const flops = forwardFlops(c);
    const timed = (t: typeof fwd) => ({ value: t.median, min: t.min, max: t.max, iterations: t.samples, unit: 'ms', better: 'lower' as const });
    return [
      { suite: 'attention', name: `forward T=${c.T}`, ...timed(fwd), detail: `${shape}, causal f32, ${(flops / fwd.median / 1e6).toPrecision(3)} GFLOP/s, ${fwd.repeats} run(s) per sample` },
      {
        suite: 'attention',
        name: `forward+backward T=${c.T}`,
        ...timed(both),
        // The backward does 5 matmul-sized products against the forward's 2 (FlashAttention-2 accounting).
        detail: `${shape}, causal f32, ${((3.5 * flops) / both.median / 1e6).toPrecision(3)} GFLOP/s, ${both.repeats} run(s) per sample`,
      },
    ];
  } finally {
    clearGrads();
    for (const t of [q, k, v, dOut]) t.dispose();
  }
}

/** Forward and forward+backward time (ms) at T 512 and 2048 on a GPU; a software adapter runs a small model's shapes. */
export async function runAttentionBench(rt: Runtime, opts: SuiteOptions): Promise<BenchResult[]> {
  const cases: Case[] = rt.gpu.info.isSoftware
    ? [
        { B: 2, T: 128, HQ: 4, HKV: 4, D: 64 },
        { B: 1, T: 512, HQ: 8, HKV: 2, D: 64 },
      ]
    : [
        { B: 1, T: 512, HQ: 32, HKV: 8, D: 128 },
        { B: 1, T: 2048, HQ: 32, HKV: 8, D: 128 },
      ];
  const results: BenchResult[] = [];
  for (const c of cases) results.push(...(await benchCase(rt, c, opts.quick ? 3 : 5)));
  return results;
}
