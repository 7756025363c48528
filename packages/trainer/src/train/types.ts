// The trainer's contracts: where batches come from, what an optimizer must do, and the hooks.
import type { FileTree, WritableTree } from '@peft-ts/safetensors';
import type { Tensor } from '@peft-ts/tensor';

/** One batch of token rows, as @peft-ts/data-alpaca builds them (Int32Array, row-major [batchSize, seqLen]). */
export interface TrainBatch {
  inputIds: Int32Array;
  attentionMask: Int32Array;
  labels: Int32Array;
  positionIds?: Int32Array;
  /** Packed rows: attention stays within one id (0 = padding). */
  sequenceIds?: Int32Array;
  batchSize: number;
  seqLen: number;
}

/** Batches addressed by (epoch, index), so a run can resume at any position deterministically. */
export interface BatchSource {
  numBatches(epoch: number): number;
  batchAt(epoch: number, index: number): TrainBatch;
}

/** What the trainer needs from an optimizer (AdamW from @peft-ts/paged-optim fits). */
export interface TrainOptimizer {
  /** One update with this learning rate, from the parameters' current `.grad`. */
  step(lr: number): void | Promise<void>;
  zeroGrad(): void;
  /** Clips the global gradient norm to maxNorm and returns the norm before clipping (on the GPU). */
  clipGradNorm(maxNorm: number): Tensor;
  /** Writes the optimizer's state files into `out` (a checkpoint's `optimizer/` folder). */
  saveState(out: WritableTree): Promise<void>;
  /** Reads what saveState wrote. */
  loadState(tree: FileTree): Promise<void>;
  dispose(): void;
}

export interface StepLog {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number | null;
  tokens: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

export interface EvalLog {
  step: number;
  valLoss: number;
  perplexity: number;
  best: boolean;
}

export interface TrainSummary {
  steps: number;
  epochsCompleted: number;
  seconds: number;
  tokens: number;
  trainedTokens: number;
  finalLoss: number | null;
  bestValLoss: number | null;
  bestStep: number | null;
  stoppedEarly: boolean;
  /** Stopped by the abort signal before the last step; resume from checkpointDir. */
  interrupted: boolean;
  /** The newest checkpoint this run wrote or resumed from, if any (named as the run store names it: a path in Node). */
  checkpointDir: string | null;
  peakGpuBytes: number;
  /** The trained adapter: `adapter/` under the output, or the checkpoint of an interrupted run. */
  adapterDir: string;
}

/** Hooks for composing your own behaviour around the loop. Returning 'stop' ends training after this step. */
export interface TrainerCallbacks {
  onStepEnd?(log: StepLog): void | 'stop' | Promise<void | 'stop'>;
  onEvaluate?(log: EvalLog): void | 'stop' | Promise<void | 'stop'>;
  onSave?(dir: string, step: number): void | Promise<void>;
  onTrainEnd?(summary: TrainSummary): void | Promise<void>;
}
