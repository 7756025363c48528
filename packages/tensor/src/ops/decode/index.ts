// Public functions of the decode (KV-cache attention) family.
export { KvCache, decodeAttention, type DecodeAttentionOptions } from './decode-attention.js';
