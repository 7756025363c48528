// A LoRA layer around any Linear (dense or 4-bit): y = base(x) + scale * B(A(dropout(x))) for
// each active adapter. A [r, in] and B [out, r] are f32 and trainable; the base stays frozen.
import { add, addLowRankInPlace, dropout, linear, lowRankFusable, scale, type Tensor } from '@peft-ts/tensor';
import type { Linear } from '@peft-ts/models';

export interface LoraWeights {
  /** [r, in] */
  A: Tensor;
  /** [out, r] */
  B: Tensor;
  r: number;
  alpha: number;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  scale: number;
  dropout: number;
}

/**
 * Past this many rows the fused update loses to two matrix products (each of its workgroups
 * recomputes A x for one row): measured on lavapipe, it is 6x faster at 1 row, even at 64, and
 * 1.25x slower at 256.
 */
const FUSED_MAX_ROWS = 32;

export class LoraLinear implements Linear {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly adapters = new Map<string, LoraWeights>();
  /** Adapters applied in forward, in order. */
  active: string[] = [];
  /** Bypass every adapter (PEFT's disable_adapter). */
  disabled = false;
  /** Dropout is applied only in training mode. */
  training = true;
  /** Adapters whose update has been added into the base weight (skipped in forward). */
  readonly merged = new Set<string>();

  constructor(readonly base: Linear) {
    this.name = base.name;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
  }

  addAdapter(adapterName: string, weights: LoraWeights): void {
    this.adapters.get(adapterName)?.A.dispose();
    this.adapters.get(adapterName)?.B.dispose();
    this.adapters.set(adapterName, weights);
  }

  removeAdapter(adapterName: string): void {
    const w = this.adapters.get(adapterName);
    if (!w) return;
    w.A.dispose();
    w.B.dispose();
    this.adapters.delete(adapterName);
    this.active = this.active.filter((a) => a !== adapterName);
  }

  forward(x: Tensor): Tensor {
    let y = this.base.forward(x);
    if (this.disabled) return y;
    for (const name of this.active) {
      const w = this.adapters.get(name);
      if (!w || this.merged.has(name)) continue;
      const drop = this.training && w.dropout > 0;
      // In eval mode with no gradient wanted (generation, evaluation) and few rows (decoding), the
      // update is added to the base output in one dispatch instead of four. Training forwards,
      // checkpointed ones included, keep the unfused form, so a recomputation repeats them exactly.
      if (!this.training && x.numel <= FUSED_MAX_ROWS * this.inFeatures && lowRankFusable(y, x, w.A, w.B)) {
        addLowRankInPlace(y, x, w.A, w.B, w.scale);
        continue;
      }
      const xin = drop ? dropout(x, w.dropout) : x;
      const delta = linear(linear(xin, w.A), w.B);
      y = add(y, scale(delta, w.scale));
    }
    return y;
  }

  parameters(): Tensor[] {
    const out: Tensor[] = [...this.base.parameters()];
    for (const name of this.active) {
      const w = this.adapters.get(name);
      if (w) out.push(...[w.A, w.B].filter((t) => t.requiresGrad));
    }
    return out;
  }

  dispose(): void {
    for (const w of this.adapters.values()) {
      w.A.dispose();
      w.B.dispose();
    }
    this.adapters.clear();
    this.base.dispose();
  }
}
