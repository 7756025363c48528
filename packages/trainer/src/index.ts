// Public API of @peft-ts/trainer. Runs in a browser (a Web Worker) as in Node: the training
// core `finetune` takes a loaded model, its tokenizer and the data, and writes to a RunStore;
// `@peft-ts/trainer/node` adds runs from paths (`runFinetune`), the output directory and checks.
export { NonFiniteError, Trainer, type TrainerOptions } from './train/trainer.js';
export type { BatchSource, TrainBatch, TrainOptimizer, TrainerCallbacks, StepLog, EvalLog, TrainSummary } from './train/types.js';
export { memoryRunStore, type MemoryRunStore, type RunStore } from './train/run-store.js';
export { learningRate, validateSchedule, warmupStepsOf, type ScheduleOptions, type ScheduleType } from './schedule/schedule.js';
export { Progress, formatDuration, type ProgressOptions, type ProgressStream } from './observe/progress.js';
export { lossCurveSvg, emaSmooth, defaultSmoothing, LOSS_SVG_LAYOUT, type CurvePoint, type LossCurveOptions } from './observe/loss-svg.js';
export { resolveFinetuneConfig, DEFAULT_CONFIG, type FinetuneConfig, type Method, type OptimizerName } from './finetune/config.js';
export { promptText, promptIds, encodePrompt, generateText, type PromptTemplate, type TextGenerateOptions } from './generation/text.js';
export {
  finetune,
  prepareExamples,
  prepareFinetuneFrom,
  readTrainingData,
  modelLoadOptionsFor,
  modelLoadOptionsFrom,
  type FinetuneInputs,
  type FinetuneRun,
  type PrepareDataOptions,
  type PreparedData,
  type ReadDataOptions,
} from './finetune/finetune.js';
export { createOptimizer, DEFAULT_PAGED_BUDGET, type OptimizerChoice } from './finetune/optimizer.js';
export { checkPositionsFit, checkTokenizerFits } from './finetune/model-fit.js';
export { runIdentityFrom, identityDifferences, checkResumeIdentity, type RunIdentity } from './finetune/identity.js';
export { evaluateLoss, batchLogits, countedTokens, type EvaluationResult, type EvaluateOptions } from './eval/evaluate.js';
