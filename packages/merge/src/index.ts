// Public API of @peft-ts/merge: merging adapters in memory, combining them, and the QLoRA drift
// report from any FileTree. Runs in a browser; checkpoint directories are in `@peft-ts/merge/node`.
export { loraDelta } from './merge/delta.js';
export { mergeAdapter, unmergeAdapter, mergeAndUnload } from './merge/merge-in-memory.js';
export { addWeightedAdapter, type CombinationType, type CombineOptions } from './combine/combine.js';
export { qloraMergeDriftFrom, type LayerDrift, type DriftOptions } from './drift/drift.js';
