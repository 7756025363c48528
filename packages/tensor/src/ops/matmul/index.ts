// Public functions of the matmul op family.
export { matmul, linear, matmulKernels, type MatmulOptions, type LinearOptions, type MatmulKernel } from './matmul.js';
export { addLowRankInPlace, lowRankFusable, LOW_RANK_MAX_RANK } from './low-rank.js';
