// Public API of @peft-ts/merge.
export { loraDelta } from './merge/delta.js';
export { mergeAdapter, unmergeAdapter, mergeAndUnload } from './merge/merge-in-memory.js';
export { mergeIntoCheckpoint, type MergeCheckpointOptions, type MergeCheckpointResult, type MergeProgress, type MergeDType } from './merge/merge-checkpoint.js';
export { addWeightedAdapter, type CombinationType, type CombineOptions } from './combine/combine.js';
export { qloraMergeDrift, type LayerDrift, type DriftOptions } from './drift/drift.js';
