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
  readonly rotaryDim: number;
  private readonly rt: Runtime;
  private readonly rope: RopeConfig;
  private readonly scaling: RopeScaling;
  private readonly seqLen: number;
  private current: RopeTable;
  /** Tables replaced by a longer one; a tape may still hold them until the model is disposed. */
  private readonly retired: RopeTable[] = [];

  constructor(rt: Runtime, rope: RopeConfig, headDim: number, maxPositions: number) {
    this.rt = rt;
    this.rope = rope;
    this.rotaryDim = Math.floor(headDim * rope.partialRotaryFactor);
    this.scaling = scalingOf(rope, maxPositions);
    // longrope picks short or long factors by sequence length; tables are built for sequences up
    // to the original context (short factors), the length fine-tuning runs use.
    this.seqLen = rope.type === 'longrope' ? (rope.originalMaxPositions ?? maxPositions) : maxPositions;
    this.current = this.build(maxPositions);
  }

  private build(rows: number): RopeTable {
    // The frequencies depend on the configuration only (seqLen stays fixed), so a longer table
    // extends the shorter one row for row: angles for any position, as transformers computes them.
    const table = ropeTable(this.rt, { dim: this.rotaryDim, theta: this.rope.theta, maxPositions: rows, scaling: this.scaling, seqLen: this.seqLen, tag: 'weights' });
    table.cos.keep();
    table.sin.keep();
    return table;
  }

  get table(): RopeTable {
    return this.current;
  }

  /** Rows (positions) the table holds now. */
  get positions(): number {
    return this.current.cos.shape[0] ?? 0;
  }

  /** Makes sure positions 0 .. n-1 have rows, growing the table (to a power of two) if needed. */
  reserve(n: number): void {
    if (n <= this.positions) return;
    let rows = this.positions;
    while (rows < n) rows *= 2;
    this.retired.push(this.current);
    this.current = this.build(rows);
  }

  /** x [B, T, H, D] with positions i32 [B, T]. */
  apply(x: Tensor, positions: Tensor): Tensor {
    return rotary(x, positions, this.current);
  }

  dispose(): void {
    for (const t of [...this.retired, this.current]) {
      t.cos.dispose();
      t.sin.dispose();
    }
    this.retired.length = 0;
  }
}
