// Public API of @peft-ts/paged-optim: AdamW exact to PyTorch, 8-bit optimizer state as
// bitsandbytes keeps it, SGD, global-norm clipping, and paging optimizer state to host memory.
export { AdamW, AdamW8bit, MIN_8BIT_SIZE, type AdamWGroup, type AdamWOptions } from './adamw/adamw.js';
export { SGD, type SGDGroup, type SGDOptions } from './sgd/sgd.js';
export { Optimizer, type GroupBase, type OptimizerOptions, type ParamsInput, type StateBytes } from './optimizer/optimizer.js';
export type { PagingOptions } from './paging/plan.js';
export { clipGradNorm } from './clip/clip-grad-norm.js';
export { BLOCK as STATE_BLOCK } from './multi-tensor/work-items.js';
export { JSON_FILE as STATE_JSON_FILE, TENSORS_FILE as STATE_TENSORS_FILE } from './io/state-file.js';
