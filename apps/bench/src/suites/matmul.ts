// Matmul benchmark suite: TFLOP/s of each kernel path the device has, at 4096^3 and at the
// projection shapes of a 7B-class model, with the weight plain and in PyTorch's [out, in] layout.
import { fromArray, matmul, matmulKernels, type MatmulKernel, type Runtime, type Tensor } from '@peft-ts/tensor';
import type { BenchResult } from './types.js';


interface Shape {
  name: string;
  M: number;
  K: number;
  N: number;
  transB: boolean;
}

const FULL: Shape[] = [
  { name: '4096^3', M: 4096, K: 4096, N: 4096, transB: false },
  { name: '4096^3 transB', M: 4096, K: 4096, N: 4096, transB: true },
  { name: '2048x4096 @ 4096x4096', M: 2048, K: 4096, N: 4096, transB: false },
  { name: '2048x4096 @ (4096x4096)^T', M: 2048, K: 4096, N: 4096, transB: true },
  { name: '2048x4096 @ 4096x11008', M: 2048, K: 4096, N: 11008, transB: false },
  { name: '2048x4096 @ (11008x4096)^T', M: 2048, K: 4096, N: 11008, transB: true },
];

/** Odd little shapes: a smoke run that finishes on a software adapter. */
const QUICK: Shape[] = [
  { name: '64x96 @ 96x80', M: 64, K: 96, N: 80, transB: false },
  { name: '64x96 @ (80x96)^T', M: 64, K: 96, N: 80, transB: true },
];

interface Path {
  kernel: Exclude<MatmulKernel, 'auto'>;
  dtype: 'f32' | 'f16';
}

const PATHS: Path[] = [
  { kernel: 'tiled', dtype: 'f32' },
  { kernel: 'tiled-f16', dtype: 'f16' },
  { kernel: 'subgroup-matrix', dtype: 'f16' },
];

/** Deterministic values in [-1, 1): f32, or raw f16 words with exponents kept small. */
function hostData(n: number, seed: number, dtype: 'f32' | 'f16'): Float32Array | Uint16Array {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  if (dtype === 'f32') return Float32Array.from({ length: n }, () => next() / 2 ** 31 - 1);
  // sign | exponent 11..14 (values 2^-4..1) | random mantissa.
  return Uint16Array.from({ length: n }, () => {
    const r = next();
    return (r & 0x8000) | ((11 + ((r >>> 10) & 3)) << 10) | (r & 0x3ff);
  });
}

async function timeIt(rt: Runtime, run: () => Tensor, iterations: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < iterations; i++) run().dispose();
  await rt.sync();
  return (performance.now() - start) / iterations;
}

/** TFLOP/s (2·M·N·K per product) for each available kernel path and shape. */
export async function runMatmulBench(rt: Runtime, opts: { quick: boolean }): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const available = matmulKernels(rt);
  const shapes = opts.quick ? QUICK : FULL;
  for (const path of PATHS.filter((p) => available.includes(p.kernel))) {
    for (const shape of shapes) {
      const { M, K, N, transB } = shape;
      const a = fromArray(rt, hostData(M * K, 1, path.dtype), [M, K], path.dtype);
      const b = fromArray(rt, hostData(K * N, 2, path.dtype), transB ? [N, K] : [K, N], path.dtype);
      const run = (): Tensor => matmul(a, b, { transB, kernel: path.kernel });
      // Warm-up compiles the pipeline and settles clocks; one timed product sizes the real run.
      await timeIt(rt, run, 2);
      const once = await timeIt(rt, run, 1);
      const iterations = opts.quick ? 2 : Math.max(3, Math.min(50, Math.ceil(500 / Math.max(once, 1e-3))));
      const ms = await timeIt(rt, run, iterations);
      const tflops = (2 * M * N * K) / (ms / 1000) / 1e12;
      results.push({
        suite: 'matmul',
        name: `${path.kernel} ${path.dtype} ${shape.name}`,
        value: tflops,
        unit: 'TFLOP/s',
        detail: `M ${M}, K ${K}, N ${N}${transB ? ', b stored [N, K]' : ''}; ${iterations} iterations, ${ms.toFixed(3)} ms each`,
      });
      a.dispose();
      b.dispose();
    }
  }
  return results;
}
