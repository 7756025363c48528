// Combining adapters into a new one, as PEFT's add_weighted_adapter does: 'linear' (equal ranks;
// A and B each summed with sqrt(weight * scale)), 'cat' (A_i * weight * scale stacked over B_i:
// the exact weighted sum of the updates) and 'svd' (that sum truncated to a target rank).
import { PeftError } from '@peft-ts/errors';
import type { LoraModel } from '@peft-ts/lora';
import { mat, matmul, qr, svd, transpose } from './linalg.js';

export type CombinationType = 'linear' | 'cat' | 'svd';

export interface CombineOptions {
  /** Target rank for 'svd' (default: the largest rank among the inputs). */
  svdRank?: number;
}

type Factors = { A: Float32Array; B: Float32Array; r: number; scale: number };

/** Adds adapter `newName` = the weighted combination of `adapters`, and makes it active. */
export async function addWeightedAdapter(
  lm: LoraModel,
  adapters: readonly string[],
  weights: readonly number[],
  newName: string,
  type: CombinationType,
  options: CombineOptions = {},
): Promise<void> {
  if (adapters.length === 0 || adapters.length !== weights.length) {
    throw new PeftError('BAD_COMBINATION', `addWeightedAdapter: ${adapters.length} adapters and ${weights.length} weights; need one weight per adapter`);
  }
  const all = await Promise.all(adapters.map((a) => lm.factors(a)));
  const ranks = new Set(all.flatMap((f) => [...f.values()].map((x) => x.r)));
  if (type === 'linear' && ranks.size > 1) {
    throw new PeftError('BAD_COMBINATION', `addWeightedAdapter linear: all adapters need the same rank, got ranks ${[...ranks].join(', ')} (use 'cat' or 'svd')`);
  }
  const modules = [...new Set(all.flatMap((f) => [...f.keys()]))];
  const newFactors = new Map<string, { A: Float32Array; B: Float32Array; r: number }>();
  let newRank = 0;
  for (const module of modules) {
    const parts = all.map((f, i) => ({ f: f.get(module), w: weights[i] ?? 0 })).filter((p): p is { f: Factors; w: number } => p.f !== undefined);
    const first = parts[0]?.f;
    if (!first) continue;
    const inF = first.A.length / first.r;
    const outF = first.B.length / first.r;
    let result: { A: Float32Array; B: Float32Array; r: number };
    if (type === 'linear') {
      const r = first.r;
      const A = new Float32Array(r * inF);
      const B = new Float32Array(outF * r);
      for (const { f, w } of parts) {
        if (w * f.scale < 0) throw new PeftError('BAD_COMBINATION', `addWeightedAdapter linear: weight ${w} is negative; sqrt(weight * scale) needs weight >= 0 (use 'cat' or 'svd')`);
        const k = Math.sqrt(w * f.scale);
        for (let i = 0; i < A.length; i++) A[i] = (A[i] ?? 0) + k * (f.A[i] ?? 0);
        for (let i = 0; i < B.length; i++) B[i] = (B[i] ?? 0) + k * (f.B[i] ?? 0);
      }
      result = { A, B, r };
    } else {
      // Stack: A_cat = [w_1 s_1 A_1; w_2 s_2 A_2; ...] [R, in], B_cat = [B_1 | B_2 | ...] [out, R].
      const R = parts.reduce((s, p) => s + p.f.r, 0);
      const A = new Float64Array(R * inF);
      const B = new Float64Array(outF * R);
      let at = 0;
      for (const { f, w } of parts) {
        for (let i = 0; i < f.A.length; i++) A[at * inF + i] = (f.A[i] ?? 0) * w * f.scale;
        for (let o = 0; o < outF; o++) for (let j = 0; j < f.r; j++) B[o * R + at + j] = f.B[o * f.r + j] ?? 0;
        at += f.r;
      }
      if (type === 'cat') result = { A: Float32Array.from(A), B: Float32Array.from(B), r: R };
      else result = truncate(mat(outF, R, B), mat(R, inF, A), options.svdRank ?? Math.max(...parts.map((p) => p.f.r)));
    }
    newRank = Math.max(newRank, result.r);
    newFactors.set(module, result);
  }
  const adapterRanks = all.map((f) => Math.max(0, ...[...f.values()].map((x) => x.r)));
  if (type === 'cat') newRank = adapterRanks.reduce((a, b) => a + b, 0);
  if (type === 'svd') newRank = options.svdRank ?? Math.max(...adapterRanks);
  // Every module gets the adapter's rank; missing components are zero (as PEFT fills them).
  for (const [module, f] of newFactors) newFactors.set(module, padRank(f, newRank));
  // The new adapter carries its scale inside the factors: lora_alpha = r, so scale = 1 (as PEFT does).
  const shortNames = [...new Set(modules.map((m) => m.slice(m.lastIndexOf('.') + 1)))];
  const anyConfig = lm.config(adapters[0]);
  lm.addAdapterFromFactors(newName, { ...anyConfig, r: newRank, lora_alpha: newRank, target_modules: shortNames, use_rslora: false, rank_pattern: {}, alpha_pattern: {} }, newFactors);
}

function padRank(f: { A: Float32Array; B: Float32Array; r: number }, r: number): { A: Float32Array; B: Float32Array; r: number } {
  if (f.r === r) return f;
  const inF = f.A.length / f.r;
  const outF = f.B.length / f.r;
  const A = new Float32Array(r * inF);
  A.set(f.A);
  const B = new Float32Array(outF * r);
  for (let o = 0; o < outF; o++) B.set(f.B.subarray(o * f.r, (o + 1) * f.r), o * r);
  return { A, B, r };
}

/** Best rank-k factors of B A (Eckart-Young) through QR of both factors and a small SVD. */
function truncate(B: ReturnType<typeof mat>, A: ReturnType<typeof mat>, k: number): { A: Float32Array; B: Float32Array; r: number } {
  const R = A.rows;
  const rank = Math.min(k, R, B.rows, A.cols);
  const qb = B.rows >= R ? qr(B) : { q: B, r: identity(R) };
  const qa = A.cols >= R ? qr(transpose(A)) : { q: transpose(A), r: identity(R) };
  const core = matmul(qb.r, transpose(qa.r));
  const { u, s, v } = svd(core);
  const left = matmul(qb.q, u); // [out, R]
  const right = matmul(qa.q, v); // [in, R]
  const outF = B.rows;
  const inF = A.cols;
  const newB = new Float32Array(outF * rank);
  const newA = new Float32Array(rank * inF);
  for (let o = 0; o < outF; o++) for (let j = 0; j < rank; j++) newB[o * rank + j] = (left.data[o * left.cols + j] ?? 0) * (s[j] ?? 0);
  for (let j = 0; j < rank; j++) for (let i = 0; i < inF; i++) newA[j * inF + i] = right.data[i * right.cols + j] ?? 0;
  return { A: newA, B: newB, r: rank };
}

function identity(n: number) {
  const m = mat(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}
