// Float64 reference for the embedding lookup and its scatter-add gradient.

export function embeddingRef(ids: ArrayLike<number>, weight: ArrayLike<number>, dim: number): Float64Array {
  const vocab = weight.length / dim;
  const out = new Float64Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t] ?? -1;
    for (let c = 0; c < dim; c++) out[t * dim + c] = id >= 0 && id < vocab ? (weight[id * dim + c] ?? NaN) : NaN;
  }
  return out;
}

export function embeddingGradRef(ids: ArrayLike<number>, g: ArrayLike<number>, vocab: number, dim: number, paddingIdx = -1): Float64Array {
  const out = new Float64Array(vocab * dim);
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t] ?? -1;
    if (id < 0 || id >= vocab || id === paddingIdx) continue;
    for (let c = 0; c < dim; c++) out[id * dim + c] = (out[id * dim + c] ?? 0) + (g[t * dim + c] ?? 0);
  }
  return out;
}
