// The model's rotary embedding: cos/sin tables for its rope configuration (scaling included),
// built once on the host in float32 as transformers computes them, applied by position id.
import { UnsupportedError } from '@peft-ts/errors';
import { ropeTable, rotary, type RopeScaling, type RopeTable, type Runtime, type Tensor } from '@peft-ts/tensor';
import type { RopeConfig } from '../config/config.js';

function scalingOf(rope: RopeConfig, maxPositions: number): RopeScaling {
  const need = (v: number | undefined, what: string): number => {
    if (v === undefined) throw new UnsupportedError({ what: `rope ${rope.type} without ${what}`, got: rope });
    return v;
  };
  switch (rope.type) {
    case 'default':
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: need(rope.factor, 'factor') };
    case 'dynamic':
      return { type: 'dynamic', factor: need(rope.factor, 'factor'), maxPositionEmbeddings: rope.originalMaxPositions ?? maxPositions };
    case 'llama3':
      return {
        type: 'llama3',
        factor: need(rope.factor, 'factor'),
        lowFreqFactor: need(rope.lowFreqFactor, 'low_freq_factor'),
        highFreqFactor: need(rope.highFreqFactor, 'high_freq_factor'),
        originalMaxPositionEmbeddings: need(rope.originalMaxPositions, 'original_max_position_embeddings'),
      };
    case 'yarn': {
      const s: RopeScaling = { type: 'yarn', originalMaxPositionEmbeddings: need(rope.originalMaxPositions, 'original_max_position_embeddings'), maxPositionEmbeddings: maxPositions };
      if (rope.factor !== undefined) s.factor = rope.factor;
      if (rope.attentionFactor !== undefined) s.attentionFactor = rope.attentionFactor;
      if (rope.betaFast !== undefined) s.betaFast = rope.betaFast;
      if (rope.betaSlow !== undefined) s.betaSlow = rope.betaSlow;
      if (rope.mscale !== undefined) s.mscale = rope.mscale;
      if (rope.mscaleAllDim !== undefined) s.mscaleAllDim = rope.mscaleAllDim;
      return s;
    }
    case 'longrope': {
      if (!rope.shortFactor || !rope.longFactor) throw new UnsupportedError({ what: 'longrope without short_factor and long_factor', got: rope });
      const s: RopeScaling = {
        type: 'longrope',
        shortFactor: rope.shortFactor,
        longFactor: rope.longFactor,
        originalMaxPositionEmbeddings: need(rope.originalMaxPositions, 'original_max_position_embeddings'),
        maxPositionEmbeddings: maxPositions,
      };
      if (rope.factor !== undefined) s.factor = rope.factor;
      if (rope.attentionFactor !== undefined) s.attentionFactor = rope.attentionFactor;
      return s;
    }
  }
}

export class RotaryEmbedding {
  readonly table: RopeTable;
  readonly rotaryDim: number;

  constructor(rt: Runtime, rope: RopeConfig, headDim: number, maxPositions: number) {
    this.rotaryDim = Math.floor(headDim * rope.partialRotaryFactor);
    const scaling = scalingOf(rope, maxPositions);
    // longrope picks short or long factors by sequence length; tables are built for sequences up
    // to the original context (short factors), the length fine-tuning runs use.
    const seqLen = rope.type === 'longrope' ? (rope.originalMaxPositions ?? maxPositions) : maxPositions;
    this.table = ropeTable(rt, { dim: this.rotaryDim, theta: rope.theta, maxPositions, scaling, seqLen, tag: 'weights' });
    this.table.cos.keep();
    this.table.sin.keep();
  }

  /** x [B, T, H, D] with positions i32 [B, T]. */
  apply(x: Tensor, positions: Tensor): Tensor {
    return rotary(x, positions, this.table);
  }

  dispose(): void {
    this.table.cos.dispose();
    this.table.sin.dispose();
  }
}
