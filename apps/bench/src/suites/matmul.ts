// Matmul benchmark suite: TFLOP/s of each kernel path the device has, at 4096^3 and at the
// projection shapes of a 7B-class model, with the weight plain and in PyTorch's [out, in] layout.
import { fromArray, matmul, matmulKernels, type MatmulKernel, type Runtime } from '@peft-ts/tensor';
import { timeSamples, type BenchResult, type SuiteOptions } from './types.js';


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

/**
 * A software adapter (a CPU) reaches a few tens of GFLOP/s: square products and the shapes of a
 * small model's LM head, forward ([T, d] x [V, d]^T) and input gradient ([T, V] x [V, d]).
 */
const SOFTWARE: Shape[] = [
  { name: '512^3', M: 512, K: 512, N: 512, transB: false },
  { name: '1024^3', M: 1024, K: 1024, N: 1024, transB: false },
  { name: '1024^3 transB', M: 1024, K: 1024, N: 1024, transB: true },
  { name: 'LM head 256x256 @ (8192x256)^T', M: 256, K: 256, N: 8192, transB: true },
  { name: 'LM head grad 256x8192 @ 8192x256', M: 256, K: 8192, N: 256, transB: false },
];

interface Path {
  kernel: Exclude<MatmulKernel, 'auto'>;
  dtype: 'f32' | 'f16';
}

const PATHS: Path[] = [
  { kernel: 'tiled', dtype: 'f32' },
  { kernel: 'subgroup-broadcast', dtype: 'f32' },
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

/** TFLOP/s (2·M·N·K per product) for each available kernel path and shape. */
export async function runMatmulBench(rt: Runtime, opts: SuiteOptions): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const available = matmulKernels(rt);
  const software = rt.gpu.info.isSoftware;
  const shapes = software ? (opts.quick ? SOFTWARE.slice(0, 2) : SOFTWARE) : FULL;
  // The subgroup-broadcast kernel is built for software adapters; a GPU has better paths.
  for (const path of PATHS.filter((p) => available.includes(p.kernel) && (software || p.kernel !== 'subgroup-broadcast'))) {
    for (const shape of shapes) {
      const { M, K, N, transB } = shape;
      const a = fromArray(rt, hostData(M * K, 1, path.dtype), [M, K], path.dtype);
      const b = fromArray(rt, hostData(K * N, 2, path.dtype), transB ? [N, K] : [K, N], path.dtype);
      const run = (): void => matmul(a, b, { transB, kernel: path.kernel }).dispose();
      const t = await timeSamples(rt, run, { samples: opts.quick ? 3 : 5, minSampleMs: 50 });
      const flop = 2 * M * N * K;
      const unit = software ? 'GFLOP/s' : 'TFLOP/s';
      const scale = software ? 1e9 : 1e12;
      const rate = (ms: number): number => flop / (ms / 1000) / scale;
      results.push({
        suite: 'matmul',
        name: `${path.kernel} ${path.dtype} ${shape.name}`,
        value: rate(t.median),
        unit,
        better: 'higher',
        iterations: t.samples,
        min: rate(t.max),
        max: rate(t.min),
        detail: `M ${M}, K ${K}, N ${N}${transB ? ', b stored [N, K]' : ''}; ${t.samples} samples of ${t.repeats} run(s), ${t.median.toFixed(3)} ms per run`,
      });
      a.dispose();
      b.dispose();
    }
  }
  return results;
}
