// Small dense linear algebra in float64 for combining adapters: thin QR (Householder) and the SVD
// of a small square matrix (one-sided Jacobi). Sizes are LoRA ranks, so plain loops suffice.

/** Row-major matrix. */
export interface Mat {
  rows: number;
  cols: number;
  data: Float64Array;
}

export const mat = (rows: number, cols: number, data?: ArrayLike<number>): Mat => ({ rows, cols, data: data ? Float64Array.from(data) : new Float64Array(rows * cols) });

export function matmul(a: Mat, b: Mat): Mat {
  const out = mat(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let k = 0; k < a.cols; k++) {
      const x = a.data[i * a.cols + k] ?? 0;
      if (x === 0) continue;
      for (let j = 0; j < b.cols; j++) out.data[i * b.cols + j] = (out.data[i * b.cols + j] ?? 0) + x * (b.data[k * b.cols + j] ?? 0);
    }
  return out;
}

export function transpose(a: Mat): Mat {
  const out = mat(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = a.data[i * a.cols + j] ?? 0;
  return out;
}

/** Thin QR of a tall matrix (rows >= cols) by Householder reflections: Q [rows, cols], R [cols, cols]. */
export function qr(a: Mat): { q: Mat; r: Mat } {
  const m = a.rows;
  const n = a.cols;
  const r = mat(m, n, a.data);
  const vs: Float64Array[] = [];
  for (let k = 0; k < n; k++) {
    const v = new Float64Array(m);
    let norm = 0;
    for (let i = k; i < m; i++) norm += (r.data[i * n + k] ?? 0) ** 2;
    norm = Math.sqrt(norm);
    const x0 = r.data[k * n + k] ?? 0;
    const alpha = x0 >= 0 ? -norm : norm;
    for (let i = k; i < m; i++) v[i] = r.data[i * n + k] ?? 0;
    v[k] = x0 - alpha;
    let vnorm = 0;
    for (let i = k; i < m; i++) vnorm += (v[i] ?? 0) ** 2;
    if (vnorm > 0) {
      for (let j = k; j < n; j++) {
        let dot = 0;
        for (let i = k; i < m; i++) dot += (v[i] ?? 0) * (r.data[i * n + j] ?? 0);
        const f = (2 * dot) / vnorm;
        for (let i = k; i < m; i++) r.data[i * n + j] = (r.data[i * n + j] ?? 0) - f * (v[i] ?? 0);
      }
    }
    vs.push(v);
  }
  // Q = H_0 ... H_{n-1} applied to the first n columns of the identity.
  const q = mat(m, n);
  for (let j = 0; j < n; j++) q.data[j * n + j] = 1;
  for (let k = n - 1; k >= 0; k--) {
    const v = vs[k] ?? new Float64Array(m);
    let vnorm = 0;
    for (let i = k; i < m; i++) vnorm += (v[i] ?? 0) ** 2;
    if (vnorm === 0) continue;
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let i = k; i < m; i++) dot += (v[i] ?? 0) * (q.data[i * n + j] ?? 0);
      const f = (2 * dot) / vnorm;
      for (let i = k; i < m; i++) q.data[i * n + j] = (q.data[i * n + j] ?? 0) - f * (v[i] ?? 0);
    }
  }
  const rr = mat(n, n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) rr.data[i * n + j] = r.data[i * n + j] ?? 0;
  return { q, r: rr };
}

/** SVD of a small matrix by one-sided Jacobi: a = U diag(s) V^T, singular values descending. */
export function svd(a: Mat): { u: Mat; s: Float64Array; v: Mat } {
  const m = a.rows;
  const n = a.cols;
  const u = mat(m, n, a.data);
  const v = mat(n, n);
  for (let i = 0; i < n; i++) v.data[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n - 1; p++)
      for (let q = p + 1; q < n; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < m; i++) {
          const up = u.data[i * n + p] ?? 0;
          const uq = u.data[i * n + q] ?? 0;
          alpha += up * up;
          beta += uq * uq;
          gamma += up * uq;
        }
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const up = u.data[i * n + p] ?? 0;
          const uq = u.data[i * n + q] ?? 0;
          u.data[i * n + p] = c * up - s * uq;
          u.data[i * n + q] = s * up + c * uq;
        }
        for (let i = 0; i < n; i++) {
          const vp = v.data[i * n + p] ?? 0;
          const vq = v.data[i * n + q] ?? 0;
          v.data[i * n + p] = c * vp - s * vq;
          v.data[i * n + q] = s * vp + c * vq;
        }
      }
    if (off < 1e-15) break;
  }
  const sv = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let norm = 0;
    for (let i = 0; i < m; i++) norm += (u.data[i * n + j] ?? 0) ** 2;
    const sigma = Math.sqrt(norm);
    sv[j] = sigma;
    if (sigma > 0) for (let i = 0; i < m; i++) u.data[i * n + j] = (u.data[i * n + j] ?? 0) / sigma;
  }
  // Sort descending.
  const order = Array.from(sv.keys()).sort((x, y) => (sv[y] ?? 0) - (sv[x] ?? 0));
  const us = mat(m, n);
  const vs = mat(n, n);
  const ss = new Float64Array(n);
  order.forEach((src, dst) => {
    ss[dst] = sv[src] ?? 0;
    for (let i = 0; i < m; i++) us.data[i * n + dst] = u.data[i * n + src] ?? 0;
    for (let i = 0; i < n; i++) vs.data[i * n + dst] = v.data[i * n + src] ?? 0;
  });
  return { u: us, s: ss, v: vs };
}
