// The weight update a LoRA adapter stands for: scale * B @ A ([out, in]), computed on the GPU.
import { matmul, scale as scaleOp, tidy, type Tensor } from '@peft-ts/tensor';

/** scale * (B @ A) as an f32 [out, in] tensor (or [in, out] with `transposed`, for Conv1D layouts). */
export function loraDelta(A: Tensor, B: Tensor, scale: number, transposed = false): Tensor {
  return tidy(() => {
    const product = transposed ? matmul(A, B, { transA: true, transB: true }) : matmul(B, A);
    return scaleOp(product, scale);
  });
}
