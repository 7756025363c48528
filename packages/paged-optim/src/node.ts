// Node-only entry of @peft-ts/paged-optim: optimizer state saved to and loaded from a directory.
// Re-exports the main entry, which runs in a browser and never imports this file.
import { dirTree, dirWriter } from '@peft-ts/safetensors/node';
import type { GroupBase, Optimizer } from './optimizer/optimizer.js';

export * from './index.js';

/**
 * Saves the optimizer's state to `dir/optimizer.safetensors` and `dir/optimizer.json` (the
 * directory is created), each file written through a temporary file and a rename.
 */
export function saveOptimizerState(optimizer: Optimizer<GroupBase>, dir: string): Promise<void> {
  return optimizer.saveStateTo(dirWriter(dir));
}

/** Loads state that saveOptimizerState (or saveStateTo a directory writer) saved in `dir`. */
export function loadOptimizerState(optimizer: Optimizer<GroupBase>, dir: string): Promise<void> {
  return optimizer.loadStateFrom(dirTree(dir));
}
