// Public functions of the norm op family: RMSNorm, LayerNorm, rotary embeddings, embedding
// lookup, shape ops and casts.
export { rmsNorm } from './rmsnorm/rms-norm.js';
export { layerNorm } from './layernorm/layer-norm.js';
export { rotary, type RotaryOptions, type RotaryLayout } from './rope/rotary.js';
export { ropeFrequencies, ropeTable, ropeTableHost, type RopeOptions, type RopeScaling, type RopeFrequencies, type RopeTable, type HostRopeTable } from './rope/rope-table.js';
export { embedding, type EmbeddingOptions } from './embedding/embedding.js';
export { reshape, permute, transpose, expand, broadcastTo, contiguous, narrow, split, concat } from './shape/shape.js';
export { cast } from './cast/cast.js';
