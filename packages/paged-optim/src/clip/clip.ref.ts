// Reference of torch.nn.utils.clip_grad_norm_ (2-norm) in float64: the norm of the per-tensor
// norms, and the clip factor max_norm / (total + 1e-6) clamped to 1.
export function clipRef(grads: readonly ArrayLike<number>[], maxNorm: number): { total: number; coef: number; clipped: Float64Array[] } {
  let total = 0;
  for (const g of grads) {
    let s = 0;
    for (const x of Array.from(g)) s += x ** 2;
    total += s;
  }
  total = Math.sqrt(total);
  const coef = Math.min(maxNorm / (total + 1e-6), 1);
  return { total, coef, clipped: grads.map((g) => Float64Array.from(g, (x) => x * coef)) };
}
