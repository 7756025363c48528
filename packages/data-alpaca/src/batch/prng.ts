// A small seeded PRNG (mulberry32) and what is built on it: a seed mixer and Fisher-Yates
// shuffles, so every shuffle and split in this package is reproducible from (seed, stream).

/** mulberry32: 32-bit state, period 2^32, good enough for shuffling data. Returns [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The finalizer of splitmix32: scrambles nearby inputs (seed 1 vs 2, epoch 3 vs 4) into
// unrelated states, which mulberry32's own seeding does not do.
function mix32(value: number): number {
  let z = (value + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** A generator for one (seed, stream) pair; streams separate uses such as epochs and splits. */
export function seededRandom(seed: number, ...stream: number[]): () => number {
  let state = mix32(seed >>> 0);
  for (const s of stream) state = mix32((state ^ mix32(s >>> 0)) >>> 0);
  return mulberry32(state);
}

/** Shuffles in place with Fisher-Yates and returns the same array. */
export function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
  return items;
}

/** 0..n-1 in an order fixed by (seed, stream). */
export function permutation(n: number, seed: number, ...stream: number[]): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return shuffleInPlace(order, seededRandom(seed, ...stream));
}
