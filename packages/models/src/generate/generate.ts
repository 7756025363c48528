// Autoregressive generation with a KV cache: the prompt is run once, then one token per step,
// with greedy or seeded sampling, EOS ids and stop strings, and tokens streamed as they come.
import { PeftError } from '@peft-ts/errors';
import { fromArray, KvCache, noGrad, tidy } from '@peft-ts/tensor';
import type { CausalLM } from '../model/causal-lm.js';
import { seededRandom, selectToken, validateSampling, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  /** Default 20. */
  maxNewTokens?: number;
  /** Default: the config's eos_token_id(s). */
  eosTokenIds?: readonly number[];
  /** Stop once the decoded continuation contains one of these (needs `decode`). */
  stopStrings?: readonly string[];
  decode?: (ids: readonly number[]) => string;
  /** Left-padding id for batched prompts of different lengths (default: config pad id or 0). */
  padTokenId?: number;
  /** Streaming: called for every new token as soon as it is chosen. */
  onToken?: (event: { row: number; token: number; step: number }) => void;
}

export type FinishReason = 'eos' | 'stop_string' | 'length';

export interface GenerateResult {
  /** New tokens per prompt (the EOS token included when it ended the row). */
  tokens: number[][];
  finishReasons: FinishReason[];
}

export async function generate(model: CausalLM, prompts: readonly (readonly number[])[], options: GenerateOptions = {}): Promise<GenerateResult> {
  validateSampling(options);
  if (prompts.length === 0 || prompts.some((p) => p.length === 0)) {
    throw new PeftError('BAD_PROMPT', 'generate: every prompt needs at least one token');
  }
  if (options.stopStrings?.length && !options.decode) {
    throw new PeftError('BAD_OPTION', 'generate: stopStrings needs a decode function to turn tokens into text');
  }
  const c = model.config;
  const rt = model.rt;
  const maxNew = options.maxNewTokens ?? 20;
  const eos = new Set(options.eosTokenIds ?? c.eosTokenIds);
  const pad = options.padTokenId ?? c.padTokenId ?? 0;
  const b = prompts.length;
  const promptLen = Math.max(...prompts.map((p) => p.length));
  const maxT = promptLen + maxNew;
  if (c.arch === 'gpt2' && maxT > c.maxPositions) {
    throw new PeftError('TOO_LONG', `generate: prompt (${promptLen}) + maxNewTokens (${maxNew}) exceeds n_positions ${c.maxPositions} of ${c.className}`);
  }
  model.reservePositions(maxT);
  const random = seededRandom(options.seed ?? 0);

  // Left padding, as transformers does for decoder-only generation.
  const ids = new Int32Array(b * promptLen).fill(pad);
  const mask = new Int32Array(b * maxT).fill(1);
  const positions = new Int32Array(b * promptLen);
  const nextPosition = new Array<number>(b).fill(0);
  prompts.forEach((p, row) => {
    const offset = promptLen - p.length;
    for (let j = 0; j < promptLen; j++) {
      if (j < offset) {
        mask[row * maxT + j] = 0;
        positions[row * promptLen + j] = 1;
      } else {
        ids[row * promptLen + j] = p[j - offset] ?? pad;
        positions[row * promptLen + j] = j - offset;
      }
    }
    nextPosition[row] = p.length;
  });

  const caches = Array.from({ length: c.numLayers }, () => new KvCache(rt, b, maxT, c.numKvHeads, c.headDim));
  const histories = prompts.map((p) => [...p]);
  const tokens: number[][] = prompts.map(() => []);
  const finish: (FinishReason | null)[] = prompts.map(() => null);
  const cacheMask = fromArray(rt, mask, [b, maxT], 'i32').keep();
  try {
    let stepIds = ids;
    let stepPositions = positions;
    let stepLen = promptLen;
    for (let step = 0; step < maxNew; step++) {
      const logitsT = noGrad(() =>
        tidy(() => {
          const idT = fromArray(rt, stepIds, [b, stepLen], 'i32');
          const posT = fromArray(rt, stepPositions, [b, stepLen], 'i32');
          return model.forward(idT, { positionIds: posT, kvCache: caches, cacheMask });
        }),
      );
      const logits = (await logitsT.toArray()) as Float32Array;
      logitsT.dispose();
      const vocab = c.vocabSize;
      const next = new Int32Array(b);
      for (let row = 0; row < b; row++) {
        if (finish[row]) {
          next[row] = pad;
          continue;
        }
        const at = (row * stepLen + stepLen - 1) * vocab;
        const rowLogits = logits.subarray(at, at + vocab);
        const token = selectToken(rowLogits, histories[row] ?? [], options, random);
        next[row] = token;
        histories[row]?.push(token);
        tokens[row]?.push(token);
        options.onToken?.({ row, token, step });
        if (eos.has(token)) finish[row] = 'eos';
        else if (options.stopStrings?.length && options.decode) {
          const text = options.decode(tokens[row] ?? []);
          if (options.stopStrings.some((s) => text.includes(s))) finish[row] = 'stop_string';
        }
      }
      if (finish.every((f) => f !== null)) break;
      stepIds = next;
      stepPositions = Int32Array.from(nextPosition.map((p, row) => (nextPosition[row] = p + 1) - 1));
      stepLen = 1;
    }
  } finally {
    for (const cache of caches) cache.dispose();
    cacheMask.dispose();
  }
  return { tokens, finishReasons: finish.map((f) => f ?? 'length') };
}

/** Convenience for tests and the CLI: greedy continuation of one prompt. */
export async function greedy(model: CausalLM, prompt: readonly number[], maxNewTokens: number): Promise<number[]> {
  const r = await generate(model, [prompt], { maxNewTokens });
  return r.tokens[0] ?? [];
}

