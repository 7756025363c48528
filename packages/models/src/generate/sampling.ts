// Next-token selection on the host, with the logits processors applied in transformers' order:
// repetition penalty, temperature, top-k, top-p; then greedy argmax or seeded sampling.
import { PeftError } from '@peft-ts/errors';

export interface SamplingOptions {
  /** false (default): greedy. */
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  /** > 1 discourages tokens already in the sequence (CTRL-style, as transformers applies it). */
  repetitionPenalty?: number;
  seed?: number;
}

export function validateSampling(o: SamplingOptions): void {
  const bad = (field: string, expected: string, got: unknown) => {
    throw new PeftError('BAD_OPTION', `generate: ${field}: expected ${expected}, got ${String(got)}`);
  };
  if (o.temperature !== undefined && !(o.temperature > 0)) bad('temperature', 'a number > 0', o.temperature);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad('topK', 'an integer >= 0 (0 = off)', o.topK);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad('topP', 'a number in (0, 1]', o.topP);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0)) bad('repetitionPenalty', 'a number > 0', o.repetitionPenalty);
}

/** A seeded uniform [0, 1) generator (splitmix32): reproducible sampling across runs. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** The processed scores (-Infinity for removed tokens), before the final softmax. */
export function processLogits(logits: Float32Array, history: readonly number[], o: SamplingOptions): Float64Array {
  const scores = Float64Array.from(logits);
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1) {
    for (const id of new Set(history)) {
      const s = scores[id];
      if (s === undefined) continue;
      scores[id] = s < 0 ? s * penalty : s / penalty;
    }
  }
  if (!o.doSample) return scores;
  const temperature = o.temperature ?? 1;
  if (temperature !== 1) for (let i = 0; i < scores.length; i++) scores[i] = (scores[i] ?? 0) / temperature;
  const topK = o.topK ?? 0;
  if (topK > 0 && topK < scores.length) {
    const kth = [...scores].sort((a, b) => b - a)[topK - 1] ?? -Infinity;
    for (let i = 0; i < scores.length; i++) if ((scores[i] ?? 0) < kth) scores[i] = -Infinity;
  }
  const topP = o.topP ?? 1;
  if (topP < 1) {
    const order = Array.from(scores.keys()).sort((a, b) => (scores[a] ?? 0) - (scores[b] ?? 0));
    const probs = softmax(scores);
    let cum = 0;
    // Ascending order: drop the low tail whose mass is at most 1 - topP, always keeping the top token.
    for (let j = 0; j < order.length - 1; j++) {
      const i = order[j] ?? 0;
      cum += probs[i] ?? 0;
      if (cum <= 1 - topP) scores[i] = -Infinity;
      else break;
    }
  }
  return scores;
}

export function softmax(scores: Float64Array): Float64Array {
  let max = -Infinity;
  for (const s of scores) if (s > max) max = s;
  const out = new Float64Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    const e = Math.exp((scores[i] ?? -Infinity) - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) / sum;
  return out;
}

/** First index of the maximum (as torch.argmax on CPU). */
export function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i] ?? -Infinity;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** Picks the next token from one row of logits. */
export function selectToken(logits: Float32Array, history: readonly number[], o: SamplingOptions, random: () => number): number {
  const scores = processLogits(logits, history, o);
  if (!o.doSample) return argmax(scores);
  const probs = softmax(scores);
  const u = random();
  let cum = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i] ?? 0;
    if (p === 0) continue;
    last = i;
    cum += p;
    if (u < cum) return i;
  }
  return last;
}
