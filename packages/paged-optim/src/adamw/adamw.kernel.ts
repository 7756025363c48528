// WGSL for the multi-tensor AdamW update with f32 state, in PyTorch's single-tensor order of
// float32 operations (decoupled decay, lerp for m, mul+addcmul for v, sqrt/div/add, addcdiv).
import { uniformDecl, uniforms, type KernelSpec } from '@peft-ts/tensor';
import { BLOCK } from '../multi-tensor/work-items.js';
import { bindingDecls, ITEM_UNIFORMS, ITEM_WGSL, slotAccessors, slotBindingKinds, type SlotOperand, ELEMENT_MAIN } from '../multi-tensor/slots.wgsl.js';

export const PARAM_GRAD: readonly SlotOperand[] = [
  { name: 'P', access: 'read_write' },
  { name: 'G', access: 'read' },
];

/**
 * Item scalars: 0 decay = f32(1 - lr*wd), 1 w = f32(1 - beta1) (the lerp weight), 2 beta2,
 * 3 f32(1 - beta2), 4 f32(sqrt(1 - beta2^t)), 5 eps, 6 f32(-lr / (1 - beta1^t)).
 */
export function adamw32Spec(n: number): KernelSpec {
  const fields = uniforms(...ITEM_UNIFORMS, 'mBase:u32', 'vBase:u32');
  const bindings = [...slotBindingKinds(n, PARAM_GRAD), 'read_write', 'read_write', 'read'] as const;
  const decls = bindingDecls(n, PARAM_GRAD, [
    { name: 'M', access: 'read_write', type: 'f32' },
    { name: 'V', access: 'read_write', type: 'f32' },
    { name: 'META', access: 'read', type: 'u32' },
  ]);
  return {
    name: 'adamw32',
    variant: `slots${n}`,
    bindings,
    uniforms: fields,
    wgsl: /* wgsl */ `
${decls}
${uniformDecl(fields, bindings.length)}
${ITEM_WGSL}
${slotAccessors(n, PARAM_GRAD)}
${ELEMENT_MAIN}
  let pi = item_word(it, 4u) + local;
  let gi = item_word(it, 5u) + local;
  let si = item_word(it, 6u) * ${BLOCK}u + local;
  let decay = item_f32(it, 0u);
  let w = item_f32(it, 1u);
  let beta2 = item_f32(it, 2u);
  let omb2 = item_f32(it, 3u);
  let bc2sqrt = item_f32(it, 4u);
  let eps = item_f32(it, 5u);
  let negStep = item_f32(it, 6u);

  let g = ld_G(slot, gi);
  var p = ld_P(slot, pi);
  var m = M[u.mBase + si];
  var v = V[u.vBase + si];
  // param.mul_(1 - lr * weight_decay); a factor of exactly 1 leaves p unchanged.
  p = p * decay;
  // exp_avg.lerp_(grad, 1 - beta1): torch's lerp is a fused multiply-add from the nearer end.
  let d = g - m;
  if (w < 0.5) { m = fma(w, d, m); } else { m = fma(w - 1.0, d, g); }
  // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
  let vb = v * beta2;
  let gg = (omb2 * g) * g;
  v = vb + gg;
  // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
  let denom = sqrt(v) / bc2sqrt + eps;
  // param.addcdiv_(exp_avg, denom, value=-step_size)
  p = p + (negStep * m) / denom;
  st_P(slot, pi, p);
  M[u.mBase + si] = m;
  V[u.vBase + si] = v;
}`,
  };
}
