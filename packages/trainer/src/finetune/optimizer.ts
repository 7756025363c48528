// The trainer's optimizer from a name: AdamW (32-bit or 8-bit state), optionally paged to host
// memory beyond a GPU budget, or SGD, all from @peft-ts/paged-optim.
import { AdamW, AdamW8bit, clipGradNorm, SGD } from '@peft-ts/paged-optim';
import type { Runtime, Tensor } from '@peft-ts/tensor';
import type { TrainOptimizer } from '../train/types.js';
import type { OptimizerName } from './config.js';

export interface OptimizerChoice {
  name: OptimizerName;
  lr: number;
  weightDecay: number;
  betas?: readonly [number, number];
  eps?: number;
  /** GPU bytes for optimizer state; paged optimizers stream the rest (default for paged_*: 256 MiB). */
  budgetBytes?: number;
}

/** Paged optimizers without an explicit budget keep this much state on the GPU. */
export const DEFAULT_PAGED_BUDGET = 256 * 2 ** 20;

export function createOptimizer(_rt: Runtime, params: Tensor[], c: OptimizerChoice): TrainOptimizer {
  const paged = c.name.startsWith('paged_') || c.budgetBytes !== undefined;
  const paging = paged ? { paging: { budgetBytes: c.budgetBytes ?? DEFAULT_PAGED_BUDGET } } : {};
  const adam = { lr: c.lr, weightDecay: c.weightDecay, ...(c.betas ? { betas: c.betas } : {}), ...(c.eps !== undefined ? { eps: c.eps } : {}), ...paging };
  const opt = c.name === 'sgd' ? new SGD(params, { lr: c.lr, weightDecay: c.weightDecay, ...paging }) : c.name.endsWith('8bit') ? new AdamW8bit(params, adam) : new AdamW(params, adam);
  return {
    step: async (lr: number) => {
      for (const g of opt.paramGroups) g.lr = lr;
      await opt.step();
    },
    zeroGrad: () => opt.zeroGrad(),
    clipGradNorm: (maxNorm: number) => clipGradNorm(params, maxNorm),
    saveState: (out) => opt.saveStateTo(out),
    loadState: (tree) => opt.loadStateFrom(tree),
    dispose: () => opt.dispose(),
  };
}
