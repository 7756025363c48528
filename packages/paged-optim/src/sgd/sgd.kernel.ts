// WGSL for the multi-tensor SGD update in PyTorch's `_single_tensor_sgd` order (coupled weight
// decay, momentum buffer, optional Nesterov); each add with alpha is a fused multiply-add there.
import { uniformDecl, uniforms, type BindingKind, type KernelSpec } from '@peft-ts/tensor';
import { BLOCK } from '../multi-tensor/work-items.js';
import { bindingDecls, ITEM_UNIFORMS, ITEM_WGSL, slotAccessors, slotBindingKinds, ELEMENT_MAIN } from '../multi-tensor/slots.wgsl.js';
import { PARAM_GRAD } from '../adamw/adamw.kernel.js';

/** Flag bits of an SGD work item. */
export const SGD_FLAGS = { firstStep: 1, nesterov: 2, weightDecay: 4, momentum: 8 } as const;

/** Item scalars: 0 weight decay, 1 momentum, 2 f32(1 - dampening), 3 f32(-lr). */
export function sgdSpec(n: number, withBuffer: boolean): KernelSpec {
  const fields = uniforms(...ITEM_UNIFORMS, ...(withBuffer ? ['bBase:u32'] : []));
  const rest: { name: string; access: BindingKind; type: string }[] = [
    ...(withBuffer ? [{ name: 'B', access: 'read_write' as const, type: 'f32' }] : []),
    { name: 'META', access: 'read', type: 'u32' },
  ];
  const bindings = [...slotBindingKinds(n, PARAM_GRAD), ...rest.map((r) => r.access)];
  const momentum = withBuffer
    ? /* wgsl */ `
  if ((flags & ${SGD_FLAGS.momentum}u) != 0u) {
    let bi = u.bBase + item_word(it, 6u) * ${BLOCK}u + local;
    var buf: f32;
    if ((flags & ${SGD_FLAGS.firstStep}u) != 0u) {
      buf = g;
    } else {
      // buf.mul_(momentum).add_(grad, alpha=1 - dampening)
      let bm = B[bi] * momentum;
      buf = fma(g, omd, bm);
    }
    B[bi] = buf;
    if ((flags & ${SGD_FLAGS.nesterov}u) != 0u) { g = fma(buf, momentum, g); } else { g = buf; }
  }`
    : '';
  return {
    name: 'sgd',
    variant: `slots${n}:${withBuffer ? 'momentum' : 'plain'}`,
    bindings,
    uniforms: fields,
    wgsl: /* wgsl */ `
${bindingDecls(n, PARAM_GRAD, rest)}
${uniformDecl(fields, bindings.length)}
${ITEM_WGSL}
${slotAccessors(n, PARAM_GRAD)}
${ELEMENT_MAIN}
  let pi = item_word(it, 4u) + local;
  let gi = item_word(it, 5u) + local;
  let flags = item_word(it, 7u);
  let wd = item_f32(it, 0u);
  let momentum = item_f32(it, 1u);
  let omd = item_f32(it, 2u);
  let negLr = item_f32(it, 3u);
  let p = ld_P(slot, pi);
  var g = ld_G(slot, gi);
  // grad = grad.add(param, alpha=weight_decay)
  if ((flags & ${SGD_FLAGS.weightDecay}u) != 0u) { g = fma(p, wd, g); }${momentum}
  // param.add_(grad, alpha=-lr)
  st_P(slot, pi, fma(g, negLr, p));
}`,
  };
}
