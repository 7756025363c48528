// NF4 benchmarks: GPU quantization and dequantization throughput, and the fused 4-bit matmul
// against the f16 matmul of the same shape (the QLoRA forward's main cost).
import { fromArray, linear, type Runtime, type Tensor } from '@peft-ts/tensor';
import { dequantize4bitGpu, disposeQuantized4bit, linear4bit, quantize4bitGpu, type Quantized4bitTensor } from '@peft-ts/nf4-quant/gpu';
import { stats, timeSamples, type BenchResult, type SuiteOptions, type Timing } from './types.js';

const SUITE = 'nf4';

/** Seconds per call of `fn` (which records GPU work), sampled as throughput: median, min and max. */
async function timeIt(rt: Runtime, fn: () => void, samples: number): Promise<Timing> {
  const t = await timeSamples(rt, fn, { samples, minSampleMs: 50 });
  return { ...t, median: t.median / 1000, min: t.min / 1000, max: t.max / 1000 };
}

/** A higher-is-better rate from per-call seconds: `amount` per second over `scale`. */
function rate(name: string, unit: string, t: Timing, amount: number, scale: number, detail: string): BenchResult {
  return { suite: SUITE, name, unit, better: 'higher', value: amount / t.median / scale, min: amount / t.max / scale, max: amount / t.min / scale, iterations: t.samples, detail };
}

/** Deterministic weight-like values (|w| ~ 0.02) without a host RNG per element. */
function weights(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * 0.035;
  }
  return out;
}

async function quantized(rt: Runtime, rows: number, cols: number, seed: number): Promise<{ q: Quantized4bitTensor; dense16: Tensor }> {
  const dense16 = fromArray(rt, weights(rows * cols, seed), [rows, cols], 'f16', { tag: 'weights' });
  const q = await quantize4bitGpu(dense16, { type: 'nf4', blocksize: 64, doubleQuant: true });
  return { q, dense16 };
}

/**
 * Quantize and dequantize throughput on a [4096, 4096] weight, and fused 4-bit matmul TFLOP/s for
 * x [2048, 4096] times W^T with W [4096, 4096] and [11008, 4096], each beside @peft-ts/tensor's
 * f16 `linear` of the same shape. `quick`: tiny shapes, for a smoke run on a software adapter.
 */
export async function runNf4Bench(rt: Runtime, opts: SuiteOptions): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const iterations = opts.quick ? 3 : 5;
  const small = opts.quick || rt.gpu.info.isSoftware;
  const square = small ? 1024 : 4096;

  // Quantize: f16 weight in, NF4 + double quant out (one absmax read-back per call).
  {
    const dense16 = fromArray(rt, weights(square * square, 1), [square, square], 'f16', { tag: 'weights' });
    await quantize4bitGpu(dense16, { doubleQuant: true }).then(disposeQuantized4bit);
    const times: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const start = performance.now();
      disposeQuantized4bit(await quantize4bitGpu(dense16, { doubleQuant: true }));
      await rt.sync();
      times.push((performance.now() - start) / 1000);
    }
    const t = { ...stats(times), samples: times.length, repeats: 1 };
    results.push(rate(`quantize f16 [${square}, ${square}] -> nf4+dq`, 'Gparam/s', t, square * square, 1e9, `${(t.median * 1e3).toFixed(3)} ms`));
    dense16.dispose();
  }

  // Dequantize to f16: read 0.516 B/param (packed + qabsmax + nested), write 2 B/param.
  {
    const { q, dense16 } = await quantized(rt, square, square, 2);
    dense16.dispose();
    const n = square * square;
    const bytes = n / 2 + n / 64 + Math.ceil(n / 16384) * 4 + n * 2;
    const seconds = await timeIt(rt, () => dequantize4bitGpu(q, { dtype: 'f16' }).dispose(), iterations);
    results.push(rate(`dequantize nf4+dq [${square}, ${square}] -> f16`, 'GB/s', seconds, bytes, 1e9, `${(seconds.median * 1e3).toFixed(3)} ms`));
    disposeQuantized4bit(q);
  }

  // Fused 4-bit linear vs f16 linear, same shapes, f32 activations for the 4-bit path (the
  // QLoRA forward) and f16 activations for the dense one (its fastest form).
  const M = small ? 256 : 2048;
  const K = small ? 256 : 4096;
  for (const N of small ? [256, 688] : [4096, 11008]) {
    const { q, dense16 } = await quantized(rt, N, K, 3 + N);
    const xs = weights(M * K, 4);
    const x32 = fromArray(rt, xs, [M, K], 'f32');
    const x16 = fromArray(rt, xs, [M, K], 'f16');
    const flops = 2 * M * N * K;
    const shape = `[${M}, ${K}] x [${N}, ${K}]^T`;
    const t4 = await timeIt(rt, () => linear4bit(x32, q).dispose(), iterations);
    const fu = small ? 'GFLOP/s' : 'TFLOP/s';
    const fs = small ? 1e9 : 1e12;
    results.push(rate(`nf4 linear ${shape}`, fu, t4, flops, fs, `${(t4.median * 1e3).toFixed(3)} ms, f32 activations`));
    if (rt.has('shader-f16')) {
      const t4h = await timeIt(rt, () => linear4bit(x16, q, null, { computeDtype: 'f16' }).dispose(), iterations);
      results.push(rate(`fused nf4 linear ${shape}, f16 compute`, fu, t4h, flops, fs, `${(t4h.median * 1e3).toFixed(3)} ms, f16 activations`));
    }
    const t16 = await timeIt(rt, () => linear(x16, dense16).dispose(), iterations);
    results.push(
      rate(`f16 linear ${shape}`, fu, t16, flops, fs, `${(t16.median * 1e3).toFixed(3)} ms; nf4 takes ${(t4.median / t16.median).toFixed(2)}x its time with ${((N * K * 0.516) / (N * K * 2) * 100).toFixed(0)}% of its weight bytes`),
    );
    for (const t of [x32, x16, dense16]) t.dispose();
    disposeQuantized4bit(q);
  }

  // One token (generation): the few-rows kernel streams the 4-bit weight once.
  {
    const [N1, K1] = small ? [2752, 1024] : [11008, 4096];
    const { q, dense16 } = await quantized(rt, N1, K1, 5);
    const x32 = fromArray(rt, weights(K1, 6), [1, K1], 'f32');
    const x16 = fromArray(rt, weights(K1, 6), [1, K1], 'f16');
    const weightBytes = N1 * K1 * (0.5 + 1 / 64) + Math.ceil((N1 * K1) / 16384) * 4;
    const t4 = await timeIt(rt, () => linear4bit(x32, q).dispose(), iterations);
    const t16 = await timeIt(rt, () => linear(x16, dense16).dispose(), iterations);
    const shape = `[1, ${K1}] x [${N1}, ${K1}]^T`;
    results.push(rate(`fused nf4 linear ${shape}`, 'GB/s', t4, weightBytes, 1e9, `${(t4.median * 1e6).toFixed(1)} us, 4-bit weight bytes per second`));
    results.push(rate(`f16 linear ${shape}`, 'GB/s', t16, N1 * K1 * 2, 1e9, `${(t16.median * 1e6).toFixed(1)} us, f16 weight bytes per second`));
    for (const t of [x32, x16, dense16]) t.dispose();
    disposeQuantized4bit(q);
  }
  return results;
}
