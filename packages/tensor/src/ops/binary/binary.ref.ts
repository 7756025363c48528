// Float64 reference for broadcast elementwise binary ops.
import type { Shape } from '../../core/tensor.js';
import { broadcastShapes, broadcastStrides } from '../shape-utils.js';

export function binaryRef(op: 'add' | 'sub' | 'mul' | 'div', a: ArrayLike<number>, sa: Shape, b: ArrayLike<number>, sb: Shape): Float64Array {
  const shape = broadcastShapes(op, sa, sb);
  const ta = broadcastStrides(sa, shape);
  const tb = broadcastStrides(sb, shape);
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let ia = 0;
    let ib = 0;
    for (let k = shape.length - 1; k >= 0; k--) {
      const d = shape[k] ?? 1;
      const c = rem % d;
      rem = Math.floor(rem / d);
      ia += c * (ta[k] ?? 0);
      ib += c * (tb[k] ?? 0);
    }
    const x = a[ia] ?? 0;
    const y = b[ib] ?? 0;
    out[i] = op === 'add' ? x + y : op === 'sub' ? x - y : op === 'mul' ? x * y : x / y;
  }
  return out;
}
