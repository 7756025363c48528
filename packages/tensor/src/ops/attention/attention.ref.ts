// Float64 reference for attention: naive scores, mask, softmax and weighted sum on plain arrays,
// plus the analytic backward, to check the tiled kernels against.

export interface AttentionRefConfig {
  B: number;
  T: number;
  HQ: number;
  HKV: number;
  D: number;
  causal?: boolean;
  /** [B, T], non-zero = real token. */
  mask?: ArrayLike<number>;
  /** [B, T] segment ids. */
  segments?: ArrayLike<number>;
  window?: number;
  scale?: number;
}

/** Whether key j is visible to query i of batch row b. */
export function refVisible(cfg: AttentionRefConfig, b: number, i: number, j: number): boolean {
  const { T } = cfg;
  if ((cfg.causal ?? true) && j > i) return false;
  if (cfg.window !== undefined && i - cfg.window >= j) return false;
  if (cfg.mask && ((cfg.mask[b * T + i] ?? 0) === 0 || (cfg.mask[b * T + j] ?? 0) === 0)) return false;
  if (cfg.segments && cfg.segments[b * T + i] !== cfg.segments[b * T + j]) return false;
  return true;
}

const qAt = (c: AttentionRefConfig, b: number, i: number, h: number, d: number): number => ((b * c.T + i) * c.HQ + h) * c.D + d;
const kAt = (c: AttentionRefConfig, b: number, j: number, g: number, d: number): number => ((b * c.T + j) * c.HKV + g) * c.D + d;

/** Softmax probabilities P[b][h][i][j] (zeros on rows that see no key), as one flat array. */
function probs(cfg: AttentionRefConfig, q: ArrayLike<number>, k: ArrayLike<number>): Float64Array {
  const { B, T, HQ, HKV, D } = cfg;
  const scale = cfg.scale ?? 1 / Math.sqrt(D);
  const group = HQ / HKV;
  const P = new Float64Array(B * HQ * T * T);
  const s = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < HQ; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          if (!refVisible(cfg, b, i, j)) {
            s[j] = -Infinity;
            continue;
          }
          let dot = 0;
          for (let d = 0; d < D; d++) dot += (q[qAt(cfg, b, i, h, d)] ?? 0) * (k[kAt(cfg, b, j, g, d)] ?? 0);
          s[j] = dot * scale;
          max = Math.max(max, dot * scale);
        }
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < T; j++) sum += Math.exp((s[j] ?? 0) - max);
        const row = ((b * HQ + h) * T + i) * T;
        for (let j = 0; j < T; j++) P[row + j] = Math.exp((s[j] ?? 0) - max) / sum;
      }
    }
  return P;
}

/** Attention output [B, T, HQ, D] in float64. */
export function attentionRef(cfg: AttentionRefConfig, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>): Float64Array {
  const { B, T, HQ, HKV, D } = cfg;
  const group = HQ / HKV;
  const P = probs(cfg, q, k);
  const out = new Float64Array(B * T * HQ * D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < HQ; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const row = ((b * HQ + h) * T + i) * T;
        for (let j = 0; j < T; j++) {
          const p = P[row + j] ?? 0;
          if (p === 0) continue;
          for (let d = 0; d < D; d++) out[qAt(cfg, b, i, h, d)] = (out[qAt(cfg, b, i, h, d)] ?? 0) + p * (v[kAt(cfg, b, j, g, d)] ?? 0);
        }
      }
    }
  return out;
}

/** Analytic gradients of sum(attention(q, k, v) * dOut) in float64. */
export function attentionBackwardRef(
  cfg: AttentionRefConfig,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dOut: ArrayLike<number>,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { B, T, HQ, HKV, D } = cfg;
  const scale = cfg.scale ?? 1 / Math.sqrt(D);
  const group = HQ / HKV;
  const P = probs(cfg, q, k);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const dP = new Float64Array(T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < HQ; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const row = ((b * HQ + h) * T + i) * T;
        let rowDot = 0;
        for (let j = 0; j < T; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += (dOut[qAt(cfg, b, i, h, d)] ?? 0) * (v[kAt(cfg, b, j, g, d)] ?? 0);
          dP[j] = s;
          rowDot += (P[row + j] ?? 0) * s;
        }
        for (let j = 0; j < T; j++) {
          const p = P[row + j] ?? 0;
          if (p === 0) continue;
          const ds = p * ((dP[j] ?? 0) - rowDot) * scale;
          for (let d = 0; d < D; d++) {
            const qi = qAt(cfg, b, i, h, d);
            const kj = kAt(cfg, b, j, g, d);
            dv[kj] = (dv[kj] ?? 0) + p * (dOut[qi] ?? 0);
            dq[qi] = (dq[qi] ?? 0) + ds * (k[kj] ?? 0);
            dk[kj] = (dk[kj] ?? 0) + ds * (q[qi] ?? 0);
          }
        }
      }
    }
  return { dq, dk, dv };
}
