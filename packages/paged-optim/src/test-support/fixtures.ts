// Test helpers: fixed parameters and per-step gradients fed straight into `p.grad`, and the
// hf-tiny LoRA fixture (initial adapter weights and the first step's gradients) PyTorch saved.
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import { empty, fromArray, type KernelSpec, type Runtime, type Tensor } from '@peft-ts/tensor';
import { randn } from '@peft-ts/tensor/testing';

export const FIXTURES = new URL('../../../../../shared/fixtures/', import.meta.url);

/** Replaces `p.grad` with a fresh gradient tensor holding `g`. */
export function setGrad(p: Tensor, g: Float32Array): void {
  p.grad?.dispose();
  p.grad = fromArray(p.rt, g, p.shape, 'f32', { tag: 'grads' }).keep();
}

/** A kept f32 parameter with requiresGrad. */
export function param(rt: Runtime, data: Float32Array, shape: readonly number[]): Tensor {
  return fromArray(rt, data, shape, 'f32', { tag: 'weights', requiresGrad: true }).keep();
}

/** The gradient of parameter `i` at step `step` (seeded, scaled so that some steps are large). */
export function gradFor(numel: number, i: number, step: number, scale = 1): Float32Array {
  return randn(numel, 1000 * (i + 1) + step, scale * (1 + (step % 3)));
}

export interface LoraFixture {
  names: string[];
  shapes: number[][];
  init: Float32Array[];
  grads: Float32Array[];
}

/** The hf-tiny llama LoRA adapter at initialisation and the gradients of its first training step. */
export async function loadLoraFixture(): Promise<LoraFixture> {
  const base = new URL('hf-tiny/llama/train/', FIXTURES);
  const init = await SafetensorsFile.open(new URL('adapter_init/adapter_model.safetensors', base).pathname);
  const grads = await SafetensorsFile.open(new URL('grads_step0.safetensors', base).pathname);
  try {
    const names = grads.names().sort();
    return {
      names,
      shapes: names.map((n) => grads.info(n).shape),
      init: await Promise.all(names.map((n) => init.readF32(n))),
      grads: await Promise.all(names.map((n) => grads.readF32(n))),
    };
  } finally {
    await init.close();
    await grads.close();
  }
}

/**
 * Whether the device's WGSL fma() is fused (one rounding), as PyTorch's CPU lerp and add-with-alpha
 * are. Lavapipe lowers fma to a multiply and an add; NVIDIA fuses.
 */
export async function deviceFusesFma(rt: Runtime): Promise<boolean> {
  const a = 1 + 2 ** -12;
  const inputs = fromArray(rt, [a, a, -(1 + 2 ** -11)], [3], 'f32');
  const out = empty(rt, [1], 'f32');
  const spec: KernelSpec = {
    name: 'test-fma-probe',
    variant: 'v1',
    bindings: ['read', 'read_write'],
    uniforms: [],
    wgsl: `
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
@compute @workgroup_size(1)
fn main() { Y[0] = fma(X[0], X[1], X[2]); }`,
  };
  rt.dispatch(spec, [inputs.binding(), out.binding()], [], [1, 1, 1]);
  const [y] = (await out.toArray()) as Float32Array;
  inputs.dispose();
  out.dispose();
  // Fused: a*a + c = 2^-24 exactly; unfused: a*a rounds to 1 + 2^-11 first and the sum is 0.
  return y === 2 ** -24;
}

/** Largest |x|. */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (const v of Array.from(x)) m = Math.max(m, Math.abs(v));
  return m;
}
