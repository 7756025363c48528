// WGSL for global-norm gradient clipping: per-workgroup sums of squares over many gradients,
// one workgroup that turns them into per-tensor norms, the total norm and the clip factor, and
// the in-place scaling of every gradient by that factor.
import { uniformDecl, uniforms, type KernelSpec } from '@peft-ts/tensor';
import { bindingDecls, ITEM_UNIFORMS, ITEM_WGSL, slotAccessors, slotBindingKinds, type SlotOperand, ELEMENT_MAIN } from '../multi-tensor/slots.wgsl.js';

/** Elements one workgroup of the sum-of-squares pass reduces. */
export const SUMSQ_BLOCK = 1024;
const THREADS = 256;

const GRAD_READ: readonly SlotOperand[] = [{ name: 'G', access: 'read' }];
const GRAD_WRITE: readonly SlotOperand[] = [{ name: 'G', access: 'read_write' }];

/** PART[u.partBase + sblock + blk] = sum of squares of the block's elements. */
export function sumsqSpec(n: number): KernelSpec {
  const fields = uniforms(...ITEM_UNIFORMS, 'partBase:u32');
  const bindings = [...slotBindingKinds(n, GRAD_READ), 'read_write', 'read'] as const;
  return {
    name: 'clip-sumsq',
    variant: `slots${n}`,
    bindings,
    uniforms: fields,
    wgsl: /* wgsl */ `
${bindingDecls(n, GRAD_READ, [
  { name: 'PART', access: 'read_write', type: 'f32' },
  { name: 'META', access: 'read', type: 'u32' },
])}
${uniformDecl(fields, bindings.length)}
${ITEM_WGSL}
${slotAccessors(n, GRAD_READ)}
var<workgroup> red: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = linear_wg(wid, nwg);
  if (wg >= u.totalWG) { return; }
  let it = find_item(wg);
  let blk = wg - item_word(it, 1u);
  let count = item_word(it, 3u);
  let slot = item_word(it, 0u);
  let gb = item_word(it, 4u);
  var s = 0.0;
  for (var k = 0u; k < ${SUMSQ_BLOCK / THREADS}u; k = k + 1u) {
    let local = blk * ${SUMSQ_BLOCK}u + k * ${THREADS}u + lid;
    if (local < count) {
      let x = ld_G(slot, gb + local);
      s = s + x * x;
    }
  }
  red[lid] = s;
  workgroupBarrier();
  for (var h = ${THREADS / 2}u; h > 0u; h = h >> 1u) {
    if (lid < h) { red[lid] = red[lid] + red[lid + h]; }
    workgroupBarrier();
  }
  if (lid == 0u) { PART[u.partBase + item_word(it, 6u) + blk] = red[0]; }
}`,
  };
}

/**
 * One workgroup: norm_t = sqrt(sum of tensor t's partials), total = sqrt(sum of norm_t^2) (the
 * norm of the per-tensor norms, as PyTorch stacks them), coef = min(max_norm * 1/(total + 1e-6), 1).
 */
export function finishSpec(): KernelSpec {
  const fields = uniforms('ntensors:u32', 'maxNorm:f32');
  const bindings = ['read', 'read', 'read_write', 'read_write'] as const;
  return {
    name: 'clip-finish',
    variant: 'v1',
    bindings,
    uniforms: fields,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> PART: array<f32>;
@group(0) @binding(1) var<storage, read> RANGES: array<u32>;
@group(0) @binding(2) var<storage, read_write> NORM: array<f32>;
@group(0) @binding(3) var<storage, read_write> COEF: array<f32>;
${uniformDecl(fields, bindings.length)}
var<workgroup> red: array<f32, ${THREADS}>;
@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lid: u32) {
  var total = 0.0;
  for (var t = 0u; t < u.ntensors; t = t + 1u) {
    let start = RANGES[t * 2u];
    let cnt = RANGES[t * 2u + 1u];
    var s = 0.0;
    for (var i = lid; i < cnt; i = i + ${THREADS}u) { s = s + PART[start + i]; }
    red[lid] = s;
    workgroupBarrier();
    for (var h = ${THREADS / 2}u; h > 0u; h = h >> 1u) {
      if (lid < h) { red[lid] = red[lid] + red[lid + h]; }
      workgroupBarrier();
    }
    if (lid == 0u) {
      let nrm = sqrt(red[0]);
      total = total + nrm * nrm;
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let tn = sqrt(total);
    NORM[0] = tn;
    let coef = (1.0 / (tn + 1e-6)) * u.maxNorm;
    // clamp(max=1) keeps a NaN coefficient NaN, as PyTorch's does.
    let isNan = (bitcast<u32>(coef) & 0x7fffffffu) > 0x7f800000u;
    COEF[0] = select(min(coef, 1.0), coef, isNan);
  }
}`,
  };
}

/** G *= COEF[0] over many gradients. */
export function scaleSpec(n: number): KernelSpec {
  const fields = uniforms(...ITEM_UNIFORMS);
  const bindings = [...slotBindingKinds(n, GRAD_WRITE), 'read', 'read'] as const;
  return {
    name: 'clip-scale',
    variant: `slots${n}`,
    bindings,
    uniforms: fields,
    wgsl: /* wgsl */ `
${bindingDecls(n, GRAD_WRITE, [
  { name: 'COEF', access: 'read', type: 'f32' },
  { name: 'META', access: 'read', type: 'u32' },
])}
${uniformDecl(fields, bindings.length)}
${ITEM_WGSL}
${slotAccessors(n, GRAD_WRITE)}
${ELEMENT_MAIN}
  let gi = item_word(it, 4u) + local;
  st_G(slot, gi, ld_G(slot, gi) * COEF[0]);
}`,
  };
}
