// Float64 references for softmax and logSoftmax over the last axis.
export function softmaxRef(x: ArrayLike<number>, len: number, log = false): Float64Array {
  const out = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += len) {
    let m = -Infinity;
    for (let i = 0; i < len; i++) m = Math.max(m, x[base + i] ?? 0);
    let s = 0;
    for (let i = 0; i < len; i++) s += Math.exp((x[base + i] ?? 0) - m);
    const lse = m + Math.log(s);
    for (let i = 0; i < len; i++) {
      const v = (x[base + i] ?? 0) - lse;
      out[base + i] = log ? v : Math.exp(v);
    }
  }
  return out;
}
