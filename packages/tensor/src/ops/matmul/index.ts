// Public functions of the matmul op family.
export { matmul, linear, matmulKernels, type MatmulOptions, type LinearOptions, type MatmulKernel } from './matmul.js';
