// Public API of @peft-ts/trainer.
export { NonFiniteError, Trainer, type TrainerOptions } from './train/trainer.js';
export type { BatchSource, TrainBatch, TrainOptimizer, TrainerCallbacks, StepLog, EvalLog, TrainSummary } from './train/types.js';
export { learningRate, validateSchedule, warmupStepsOf, type ScheduleOptions, type ScheduleType } from './schedule/schedule.js';
export { Progress, formatDuration, type ProgressOptions, type ProgressStream } from './observe/progress.js';
export { lossCurveSvg, emaSmooth, defaultSmoothing, LOSS_SVG_LAYOUT, type CurvePoint, type LossCurveOptions } from './observe/loss-svg.js';
export { resolveFinetuneConfig, DEFAULT_CONFIG, type FinetuneConfig, type Method, type OptimizerName } from './finetune/config.js';
export { promptText, promptIds, encodePrompt, generateText, type PromptTemplate, type TextGenerateOptions } from './generation/text.js';
export { runFinetune, prepareFinetune, modelLoadOptions, type FinetuneRun, type FinetuneOptions, type PreparedFinetune } from './finetune/run.js';
export { createOptimizer, DEFAULT_PAGED_BUDGET, type OptimizerChoice } from './finetune/optimizer.js';
export { checkPositionsFit, checkTokenizerFits } from './finetune/model-fit.js';
export { preflightFinetune, listCheckpoints, clearEarlierRun, type Preflight, type PreflightOptions } from './finetune/preflight.js';
export { PathError, withPath, errnoCode, describeErrno, removeStaleTemporaries } from './finetune/paths.js';
export { checkInputDir, checkInputFile, checkOutputDir } from './finetune/paths.js';
export { runIdentity, identityDifferences, checkResumeIdentity, modelFingerprint, type RunIdentity } from './finetune/identity.js';
export { evaluateLoss, batchLogits, countedTokens, type EvaluationResult, type EvaluateOptions } from './eval/evaluate.js';
