// WGSL for the multi-tensor 8-bit AdamW update as bitsandbytes' blockwise kernel does it: one
// workgroup per 256-element block dequantizes m and v, updates them and the parameter, takes the
// block's new absmax and requantizes to the nearest code of the dynamic maps.
import { uniformDecl, uniforms, type KernelSpec } from '@peft-ts/tensor';
import { bindingDecls, ITEM_UNIFORMS, ITEM_WGSL, slotAccessors, slotBindingKinds } from '../multi-tensor/slots.wgsl.js';
import { PARAM_GRAD } from './adamw.kernel.js';

/** Threads per workgroup: each handles 4 consecutive elements, one 32-bit word of codes. */
const THREADS = 64;

/**
 * The binary search of bitsandbytes' quantizer over a sorted 256-entry map held in workgroup
 * memory, ending with a midpoint test against the neighbour on the side of `x`.
 */
function quantizeFn(fn: string, code: string, lowerStart: string): string {
  return /* wgsl */ `
fn ${fn}(x: f32) -> u32 {
  var pivot = 127u;
  var upperPivot = 255u;
  var lowerPivot = 0u;
  var lower = ${lowerStart};
  var upper = 1.0;
  var val = ${code}[127];
  for (var i = 64u; i > 0u; i = i >> 1u) {
    if (x > val) {
      lowerPivot = pivot;
      lower = val;
      pivot = pivot + i;
    } else {
      upperPivot = pivot;
      upper = val;
      pivot = pivot - i;
    }
    val = ${code}[pivot];
  }
  if (x > val) {
    let mid = (upper + val) * 0.5;
    if (x > mid) { return upperPivot; }
    return pivot;
  }
  let mid = (lower + val) * 0.5;
  if (x < mid) { return lowerPivot; }
  return pivot;
}`;
}

/**
 * Item scalars: 0 beta1, 1 f32(1 - beta1), 2 beta2, 3 f32(1 - beta2), 4 f32(sqrt(1 - beta2^t) * eps),
 * 5 f32(-lr * sqrt(1 - beta2^t) / (1 - beta1^t)), 6 f32(1 - lr*wd). Flag bit 0: weight decay > 0.
 */
export function adamw8Spec(n: number): KernelSpec {
  const fields = uniforms(...ITEM_UNIFORMS, 'qmBase:u32', 'qvBase:u32', 'amBase:u32', 'avBase:u32');
  const bindings = [...slotBindingKinds(n, PARAM_GRAD), 'read_write', 'read_write', 'read_write', 'read_write', 'read', 'read'] as const;
  const decls = bindingDecls(n, PARAM_GRAD, [
    { name: 'QM', access: 'read_write', type: 'u32' },
    { name: 'QV', access: 'read_write', type: 'u32' },
    { name: 'AM', access: 'read_write', type: 'f32' },
    { name: 'AV', access: 'read_write', type: 'f32' },
    { name: 'META', access: 'read', type: 'u32' },
    { name: 'CODES', access: 'read', type: 'f32' },
  ]);
  return {
    name: 'adamw8',
    variant: `slots${n}`,
    bindings,
    uniforms: fields,
    wgsl: /* wgsl */ `
${decls}
${uniformDecl(fields, bindings.length)}
${ITEM_WGSL}
${slotAccessors(n, PARAM_GRAD)}
var<workgroup> code1: array<f32, 256>;
var<workgroup> code2: array<f32, 256>;
var<workgroup> red1: array<f32, ${THREADS}>;
var<workgroup> red2: array<f32, ${THREADS}>;
${quantizeFn('quantize_signed', 'code1', '-1.0')}
${quantizeFn('quantize_unsigned', 'code2', '0.0')}
fn sign_bit(x: f32) -> u32 {
  return bitcast<u32>(x) >> 31u;
}
@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  for (var j = 0u; j < 4u; j = j + 1u) {
    code1[lid * 4u + j] = CODES[lid * 4u + j];
    code2[lid * 4u + j] = CODES[256u + lid * 4u + j];
  }
  workgroupBarrier();
  let wg = linear_wg(wid, nwg);
  if (wg >= u.totalWG) { return; }
  let it = find_item(wg);
  let blk = wg - item_word(it, 1u);
  let count = item_word(it, 3u);
  let slot = item_word(it, 0u);
  let pb = item_word(it, 4u);
  let gb = item_word(it, 5u);
  let sblk = item_word(it, 6u) + blk;
  let decayOn = (item_word(it, 7u) & 1u) != 0u;
  let beta1 = item_f32(it, 0u);
  let omb1 = item_f32(it, 1u);
  let beta2 = item_f32(it, 2u);
  let omb2 = item_f32(it, 3u);
  let c2eps = item_f32(it, 4u);
  let stepSize = item_f32(it, 5u);
  let decay = item_f32(it, 6u);

  let am = AM[u.amBase + sblk];
  let av = AV[u.avBase + sblk];
  let w1 = QM[u.qmBase + sblk * 64u + lid];
  let w2 = QV[u.qvBase + sblk * 64u + lid];
  var s1 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  var s2 = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  var live = array<bool, 4>(false, false, false, false);
  var mx1 = 0.0;
  var mx2 = 0.0;
  for (var j = 0u; j < 4u; j = j + 1u) {
    let local = blk * 256u + lid * 4u + j;
    if (local < count) {
      let g = ld_G(slot, gb + local);
      // A non-finite gradient zeroes the element's state and leaves the parameter alone.
      if ((bitcast<u32>(g) & 0x7f800000u) != 0x7f800000u) {
        live[j] = true;
        let v = code2[(w2 >> (8u * j)) & 255u] * av;
        let vb = v * beta2;
        let gg = (omb2 * g) * g;
        s2[j] = vb + gg;
        let m = code1[(w1 >> (8u * j)) & 255u] * am;
        let mb = m * beta1;
        let gm = omb1 * g;
        s1[j] = mb + gm;
      }
      mx1 = max(mx1, abs(s1[j]));
      mx2 = max(mx2, abs(s2[j]));
    }
  }
  red1[lid] = mx1;
  red2[lid] = mx2;
  workgroupBarrier();
  for (var s = ${THREADS / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      red1[lid] = max(red1[lid], red1[lid + s]);
      red2[lid] = max(red2[lid], red2[lid + s]);
    }
    workgroupBarrier();
  }
  let nm1 = red1[0];
  let nm2 = red2[0];
  if (lid == 0u) {
    AM[u.amBase + sblk] = nm1;
    AV[u.avBase + sblk] = nm2;
  }
  // A block of zeros quantizes as zeros (the reciprocal of a zero absmax would give NaN).
  var inv1 = 0.0;
  if (nm1 > 0.0) { inv1 = 1.0 / nm1; }
  var inv2 = 0.0;
  if (nm2 > 0.0) { inv2 = 1.0 / nm2; }
  var out1 = 0u;
  var out2 = 0u;
  for (var j = 0u; j < 4u; j = j + 1u) {
    let local = blk * 256u + lid * 4u + j;
    if (local < count) {
      if (live[j]) {
        var p = ld_P(slot, pb + local);
        let q = s1[j] / (sqrt(s2[j]) + c2eps);
        let upd = stepSize * q;
        p = p + upd;
        if (decayOn) { p = p * decay; }
        st_P(slot, pb + local, p);
      }
      var c1 = quantize_signed(s1[j] * inv1);
      // Keep m's sign through quantization: a value that rounds to a code of the other sign
      // takes the neighbouring code on its own side.
      if (sign_bit(code1[c1]) != sign_bit(s1[j])) {
        if (s1[j] > 0.0) { c1 = c1 + 1u; } else { c1 = c1 - 1u; }
      }
      let c2 = quantize_unsigned(s2[j] * inv2);
      out1 = out1 | ((c1 & 255u) << (8u * j));
      out2 = out2 | ((c2 & 255u) << (8u * j));
    }
  }
  QM[u.qmBase + sblk * 64u + lid] = out1;
  QV[u.qvBase + sblk * 64u + lid] = out2;
}`,
  };
}
