// Loss and perplexity of a model (with or without its adapter) on token batches, computed as the
// Trainer's evaluation computes it: one mean over every counted token of every batch.
import { add, causalLmLoss, fromArray, noGrad, tidy, type Tensor } from '@peft-ts/tensor';
import type { CausalLM } from '@peft-ts/models';
import type { LoraModel } from '@peft-ts/lora';
import type { BatchSource, TrainBatch } from '../train/types.js';

export interface EvaluationResult {
  /** Mean cross-entropy per counted token (natural log). */
  loss: number;
  perplexity: number;
  /** Tokens whose label counted (after the causal shift). */
  tokens: number;
  batches: number;
}

export interface EvaluateOptions {
  /** Adapters are switched to inference (no dropout) for the evaluation and back afterwards. */
  lora?: LoraModel;
  /** Called after each batch with (done, total). */
  onBatch?: (done: number, total: number) => void;
}

/** Labels that carry loss once shifted: position 0 of a row is never predicted. */
export function countedTokens(batch: TrainBatch): number {
  let n = 0;
  for (let b = 0; b < batch.batchSize; b++) for (let t = 1; t < batch.seqLen; t++) if (batch.labels[b * batch.seqLen + t] !== -100) n += 1;
  return n;
}

/** The model's logits for one batch ([batch, seq, vocab]), attention as training uses it. */
export function batchLogits(model: CausalLM, batch: TrainBatch): Tensor {
  const rt = model.rt;
  const shape = [batch.batchSize, batch.seqLen];
  const ids = fromArray(rt, batch.inputIds, shape, 'i32');
  const mask = fromArray(rt, batch.attentionMask, shape, 'i32');
  const positions = batch.positionIds ? fromArray(rt, batch.positionIds, shape, 'i32') : undefined;
  const packed = batch.sequenceIds?.some((s) => s > 1) ?? false;
  const segments = packed && batch.sequenceIds ? fromArray(rt, batch.sequenceIds, shape, 'i32') : undefined;
  return model.forward(ids, { attentionMask: mask, ...(positions ? { positionIds: positions } : {}), ...(segments ? { segmentIds: segments } : {}) });
}

/**
 * Mean loss over all counted tokens of the batches (epoch 0 of a source, in order). Each batch's
 * summed loss is divided by the total count up front, as in the Trainer, so the sum is the mean.
 */
export async function evaluateLoss(model: CausalLM, batches: BatchSource | readonly TrainBatch[], options: EvaluateOptions = {}): Promise<EvaluationResult> {
  const list: TrainBatch[] = Array.isArray(batches) ? [...(batches as readonly TrainBatch[])] : [];
  if (!Array.isArray(batches)) {
    const source = batches as BatchSource;
    for (let i = 0; i < source.numBatches(0); i++) list.push(source.batchAt(0, i));
  }
  const total = list.reduce((s, b) => s + countedTokens(b), 0);
  if (total === 0) return { loss: Number.NaN, perplexity: Number.NaN, tokens: 0, batches: list.length };
  const lora = options.lora;
  lora?.train(false);
  try {
    let sum: Tensor | null = null;
    for (const [i, b] of list.entries()) {
      const l = noGrad(() => tidy(() => causalLmLoss(batchLogits(model, b), fromArray(model.rt, b.labels, [b.batchSize, b.seqLen], 'i32'), { numItemsInBatch: total })));
      if (sum === null) sum = l;
      else {
        const prev: Tensor = sum;
        sum = noGrad(() => add(prev, l));
        prev.dispose();
        l.dispose();
      }
      options.onBatch?.(i + 1, list.length);
    }
    const loss = sum ? await sum.item() : Number.NaN;
    sum?.dispose();
    return { loss, perplexity: Math.exp(loss), tokens: total, batches: list.length };
  } finally {
    lora?.train(true);
  }
}
