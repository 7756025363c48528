// Messages between the page and the training worker. Everything crosses by structured clone:
// files as File objects, results as plain numbers, strings and byte arrays.

export interface CurvePoint {
  step: number;
  value: number;
}

/** Where the base model comes from: the built-in demo (served under demo/), or files the user picked. */
export type ModelChoice = { kind: 'demo' } | { kind: 'files'; name: string; files: { path: string; file: File }[] };

/**
 * Where the training data comes from: the shipped example dataset, a file the user picked, or
 * the copy of that file the run keeps in the browser's storage (after a reload).
 */
export type DataChoice = { kind: 'demo' } | { kind: 'file'; file: File } | { kind: 'saved' };

/** The training settings the page offers; the names and meanings are those of `peft-ts train`. */
export interface TrainSettings {
  method: 'lora' | 'qlora';
  r: number;
  alpha: number;
  dropout: number;
  targets: string;
  lr: number;
  schedule: 'constant' | 'linear' | 'cosine';
  warmupSteps: number;
  maxSteps: number;
  batchSize: number;
  gradientAccumulation: number;
  maxLength: number;
  validationSplit: number;
  evalEvery: number;
  saveEvery: number;
  seed: number;
}

export const DEFAULT_SETTINGS: TrainSettings = {
  method: 'lora',
  r: 8,
  alpha: 16,
  dropout: 0,
  targets: 'all-linear',
  lr: 5e-3,
  schedule: 'cosine',
  warmupSteps: 2,
  maxSteps: 60,
  batchSize: 4,
  gradientAccumulation: 1,
  maxLength: 128,
  validationSplit: 0.1,
  evalEvery: 20,
  saveEvery: 5,
  seed: 0,
};

export type ToWorker =
  | { type: 'load'; model: ModelChoice; data: DataChoice; settings: TrainSettings }
  | { type: 'train'; resume: boolean }
  | { type: 'stop' }
  | { type: 'evaluate' }
  | { type: 'generate'; instruction: string; input: string; maxNewTokens: number }
  | { type: 'export' }
  | { type: 'forget' };

export interface PreviewExample {
  /** Where the record came from (file:line). */
  source: string;
  /** The rendered example split into runs: [text, trained] pairs, in order. */
  runs: [string, boolean][];
  tokens: number;
  trainedTokens: number;
}

export interface DeviceInfo {
  description: string;
  software: boolean;
  subgroupSize: number | null;
  features: string[];
}

export type FromWorker =
  | { type: 'log'; line: string }
  | { type: 'device'; device: DeviceInfo }
  /** The kernels an earlier run on this adapter used, compiled in the background after a load. */
  | { type: 'precompiled'; created: number; ms: number }
  | {
      type: 'loaded';
      model: { name: string; summary: string; trainable: string };
      data: { name: string; examples: number; train: number; validation: number; preview: PreviewExample[] };
      totalSteps: number;
      /** A checkpoint of this very run in the browser's storage, to continue from, with the curves up to it. */
      checkpoint: { step: number; train: CurvePoint[]; validation: CurvePoint[] } | null;
      /** The run in the browser's storage finished and wrote its adapter, ready to download. */
      finished: boolean;
    }
  | {
      type: 'step';
      step: number;
      totalSteps: number;
      loss: number;
      lr: number;
      /** This step's tokens over its wall time. */
      tokensPerSecond: number;
      seconds: number;
      stepMs: number;
      /** Since this session of training started (a resume starts a new one). */
      sinceStartMs: number;
    }
  | { type: 'eval'; step: number; loss: number }
  | { type: 'saved'; step: number }
  | {
      type: 'done';
      steps: number;
      seconds: number;
      finalLoss: number | null;
      bestValLoss: number | null;
      interrupted: boolean;
      /** The first step's wall time: with a fresh device, mostly shader compilation. */
      firstStepMs: number | null;
      /** From the start of training (adapter, optimizer, the evaluation at step 0) to the end of the first step. */
      startupMs: number | null;
      /** Mean wall time of the other steps. */
      meanStepMs: number | null;
    }
  | { type: 'evaluated'; loss: number; tokens: number }
  | { type: 'text'; delta: string; done: boolean }
  | { type: 'adapter'; files: { name: string; bytes: Uint8Array }[] }
  | { type: 'error'; message: string };
