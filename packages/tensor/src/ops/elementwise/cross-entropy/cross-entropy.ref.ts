// Float64 references for cross-entropy (PyTorch semantics) and the causal-LM label shift.
export function crossEntropyRef(logits: ArrayLike<number>, labels: ArrayLike<number>, V: number, ignore = -100, reduction: 'mean' | 'sum' | 'none' = 'mean'): Float64Array {
  const N = labels.length;
  const per = new Float64Array(N);
  let total = 0;
  let count = 0;
  for (let r = 0; r < N; r++) {
    const label = labels[r] ?? ignore;
    if (label === ignore) continue;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v] ?? 0);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp((logits[r * V + v] ?? 0) - m);
    per[r] = m + Math.log(s) - (logits[r * V + label] ?? 0);
    total += per[r] ?? 0;
    count += 1;
  }
  if (reduction === 'none') return per;
  return Float64Array.of(reduction === 'sum' ? total : total / count);
}

/** labels[b, t + 1] at [b, t]; `ignore` in the last column. */
export function shiftLabelsRef(labels: ArrayLike<number>, B: number, T: number, ignore = -100): Int32Array {
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out[b * T + t] = t + 1 < T ? (labels[b * T + t + 1] ?? ignore) : ignore;
  return out;
}
