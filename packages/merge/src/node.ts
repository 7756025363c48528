// Node entry of @peft-ts/merge: everything the main entry has, plus merging into a checkpoint
// directory and the QLoRA drift report from directories.
import { dirTree } from '@peft-ts/safetensors/node';
import type { Runtime } from '@peft-ts/tensor';
import { qloraMergeDriftFrom, type DriftOptions, type LayerDrift } from './drift/drift.js';

export * from './index.js';
export { mergeIntoCheckpoint, type MergeCheckpointOptions, type MergeCheckpointResult, type MergeProgress, type MergeDType } from './merge/merge-checkpoint.js';

/**
 * Per-layer drift between merging `adapterDir` into the dequantized NF4 weights (what the adapter
 * was trained against) and into the original 16-bit weights of `baseDir`.
 */
export function qloraMergeDrift(rt: Runtime, baseDir: string, adapterDir: string, options: DriftOptions = {}): Promise<LayerDrift[]> {
  return qloraMergeDriftFrom(rt, dirTree(baseDir), dirTree(adapterDir), options);
}
