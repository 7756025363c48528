// The Linear interface every projection implements (dense here; LoRA and 4-bit layers in their
// own packages), and the dense layer over frozen f32/f16/bf16 weights.
import { linear, type Tensor } from '@peft-ts/tensor';

export interface Linear {
  /** HF module name, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** y = x W^T + b for x [..., in] -> [..., out], with autograd to x (and to any trainable parameter). */
  forward(x: Tensor): Tensor;
  /** Trainable parameters of this layer (empty for a frozen base layer). */
  parameters(): Tensor[];
  dispose(): void;
}

export class DenseLinear implements Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(
    readonly name: string,
    /** [out, in] (PyTorch layout), f32/f16/bf16, frozen unless the caller sets requiresGrad. */
    readonly weight: Tensor,
    /** f32 [out]; replaceable (a trainable bias, a loaded adapter's bias). */
    public bias: Tensor | null = null,
  ) {
    const [out, inF] = weight.shape;
    this.outFeatures = out ?? 0;
    this.inFeatures = inF ?? 0;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias ?? undefined);
  }

  parameters(): Tensor[] {
    return [this.weight, ...(this.bias ? [this.bias] : [])].filter((t) => t.requiresGrad);
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }
}
