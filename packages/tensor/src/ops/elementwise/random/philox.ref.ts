// TypeScript Philox-4x32-10 (BigInt products, independent of the WGSL 16-bit-half arithmetic) and
// the float conversions the kernels apply, for tests.

const M0 = 0xd2511f53n;
const M1 = 0xcd9e8d57n;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

function mulhilo(a: bigint, b: number): [number, number] {
  const p = a * BigInt(b >>> 0);
  return [Number(p >> 32n), Number(p & 0xffffffffn)];
}

/** One Philox-4x32-10 block: 4 words from a 128-bit counter and a 64-bit key. */
export function philox4x32(counter: readonly [number, number, number, number], key: readonly [number, number]): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0) as [number, number, number, number];
  let [k0, k1] = key.map((v) => v >>> 0) as [number, number];
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const [hi0, lo0] = mulhilo(M0, c0);
    const [hi1, lo1] = mulhilo(M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** `n` words of the stream with key (seed, 0), starting at block `firstBlock`. */
export function philoxWords(n: number, seed: number, firstBlock: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let t = 0; t * 4 < n; t++) {
    const b = firstBlock + t;
    const w = philox4x32([b % 2 ** 32, Math.floor(b / 2 ** 32), 0, 0], [seed % 2 ** 32, Math.floor(seed / 2 ** 32)]);
    for (let l = 0; l < 4 && t * 4 + l < n; l++) out[t * 4 + l] = w[l] ?? 0;
  }
  return out;
}

export const uniformOf = (w: number): number => (w >>> 8) * 2 ** -24;

/** Box-Muller as the kernel does it, with f32 rounding of the angle. */
export function normalsOf(words: Uint32Array): Float64Array {
  const out = new Float64Array(words.length);
  const f = Math.fround;
  for (let j = 0; j < words.length; j += 2) {
    const r = Math.sqrt(-2 * Math.log(((((words[j] ?? 0) >>> 8) + 1) * 2 ** -24)));
    const a = f(f(f(6.2831855) * uniformOf(words[j + 1] ?? 0)) - f(3.1415927));
    out[j] = r * Math.cos(a);
    if (j + 1 < words.length) out[j + 1] = r * Math.sin(a);
  }
  return out;
}
