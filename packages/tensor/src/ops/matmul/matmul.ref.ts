// Float64 reference for matmul: transposes, broadcast batch dims, 1-D operands and a bias.
import type { Shape } from '../../core/tensor.js';
import { broadcastShapes, broadcastStrides } from '../shape-utils.js';

export interface MatmulRefOptions {
  transA?: boolean;
  transB?: boolean;
  bias?: ArrayLike<number>;
}

export function matmulRef(a: ArrayLike<number>, sa: Shape, b: ArrayLike<number>, sb: Shape, options: MatmulRefOptions = {}): { data: Float64Array; shape: number[] } {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const aShape = sa.length === 1 ? [1, sa[0] ?? 0] : [...sa];
  const bShape = sb.length === 1 ? [sb[0] ?? 0, 1] : [...sb];
  const ra = aShape[aShape.length - 2] ?? 0;
  const ca = aShape[aShape.length - 1] ?? 0;
  const rb = bShape[bShape.length - 2] ?? 0;
  const cb = bShape[bShape.length - 1] ?? 0;
  const M = transA ? ca : ra;
  const K = transA ? ra : ca;
  const N = transB ? rb : cb;
  if ((transB ? cb : rb) !== K) throw new Error(`matmulRef: inner dims differ: [${sa.join(', ')}] x [${sb.join(', ')}]`);
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const batch = broadcastShapes('matmulRef', aBatch, bBatch);
  const as = broadcastStrides(aBatch, batch).map((s) => s * ra * ca);
  const bs = broadcastStrides(bBatch, batch).map((s) => s * rb * cb);
  const count = batch.reduce((x, y) => x * y, 1);
  const out = new Float64Array(count * M * N);
  for (let z = 0; z < count; z++) {
    let rem = z;
    let ao = 0;
    let bo = 0;
    for (let d = batch.length - 1; d >= 0; d--) {
      const c = rem % (batch[d] ?? 1);
      rem = Math.floor(rem / (batch[d] ?? 1));
      ao += c * (as[d] ?? 0);
      bo += c * (bs[d] ?? 0);
    }
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = options.bias ? (options.bias[n] ?? 0) : 0;
        for (let k = 0; k < K; k++) {
          const x = a[ao + (transA ? k * M + m : m * K + k)] ?? 0;
          const y = b[bo + (transB ? n * K + k : k * N + n)] ?? 0;
          acc += x * y;
        }
        out[(z * M + m) * N + n] = acc;
      }
    }
  }
  const shape = [...batch];
  if (sa.length !== 1) shape.push(M);
  if (sb.length !== 1) shape.push(N);
  return { data: out, shape };
}
