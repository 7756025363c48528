// Float64 reference: causal attention of queries at the last Tq positions over cached keys.
export function decodeAttentionRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: { b: number; tq: number; hq: number; hkv: number; d: number; maxT: number; len: number; window?: number; mask?: ArrayLike<number> },
): Float64Array {
  const { b, tq, hq, hkv, d, maxT, len } = dims;
  const out = new Float64Array(b * tq * hq * d);
  const scale = 1 / Math.sqrt(d);
  for (let bi = 0; bi < b; bi++)
    for (let i = 0; i < tq; i++)
      for (let h = 0; h < hq; h++) {
        const kvh = Math.floor(h / (hq / hkv));
        const pos = len - tq + i;
        const scores: number[] = [];
        const idx: number[] = [];
        for (let j = 0; j <= pos; j++) {
          if (dims.window && j <= pos - dims.window) continue;
          if (dims.mask && (dims.mask[bi * maxT + j] ?? 0) === 0) continue;
          let s = 0;
          for (let x = 0; x < d; x++) s += (q[((bi * tq + i) * hq + h) * d + x] ?? 0) * (k[((bi * maxT + j) * hkv + kvh) * d + x] ?? 0);
          scores.push(s * scale);
          idx.push(j);
        }
        if (scores.length === 0) continue;
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const sum = e.reduce((a, c) => a + c, 0);
        for (let x = 0; x < d; x++) {
          let acc = 0;
          idx.forEach((j, n) => (acc += ((e[n] ?? 0) / sum) * (v[((bi * maxT + j) * hkv + kvh) * d + x] ?? 0)));
          out[((bi * tq + i) * hq + h) * d + x] = acc;
        }
      }
  return out;
}
