// Public functions of the elementwise op family: unary ops and activations, reductions, softmax,
// cross-entropy, the counter-based RNG and dropout.
export { scale, neg, exp, log, sqrt, rsqrt, square, sigmoid, silu, tanh, relu, erf, gelu, siluMul, type GeluOptions } from './unary/unary.js';
export { sum, mean, max, argmax } from './reduce/reduce.js';
export { softmax, logSoftmax } from './softmax/softmax.js';
export { crossEntropy, causalLmLoss, type CrossEntropyOptions, type CausalLmLossOptions } from './cross-entropy/cross-entropy.js';
export { rand, randn, randBits, dropout, type RandomOptions, type DropoutOptions } from './random/random.js';
