// Public functions of the attention op family.
export { attention, type AttentionOptions } from './attention.js';
