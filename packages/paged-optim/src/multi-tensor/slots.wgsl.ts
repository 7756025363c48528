// WGSL pieces shared by the multi-tensor kernels: one binding per slot and operand, accessors
// that pick a slot with a switch (WGSL has no arrays of buffers), and the work-item table lookup.
import type { BindingKind } from '@peft-ts/tensor';
import { BLOCK, ITEM_WORDS } from './work-items.js';

/** An operand bound once per slot, e.g. the parameter P (read_write) or the gradient G (read). */
export interface SlotOperand {
  name: string;
  access: BindingKind;
}

/** Binding kinds of `n` slots: all slots of the first operand, then all of the second, ... */
export function slotBindingKinds(n: number, operands: readonly SlotOperand[]): BindingKind[] {
  return operands.flatMap((op) => Array.from({ length: n }, () => op.access));
}

/** Declarations of the slot bindings (from binding 0) plus the rest, in order after them. */
export function bindingDecls(n: number, operands: readonly SlotOperand[], rest: readonly { name: string; access: BindingKind; type: string }[]): string {
  const lines: string[] = [];
  let b = 0;
  for (const op of operands) {
    for (let k = 0; k < n; k++) lines.push(`@group(0) @binding(${b++}) var<storage, ${op.access}> ${op.name}${k}: array<f32>;`);
  }
  for (const r of rest) lines.push(`@group(0) @binding(${b++}) var<storage, ${r.access}> ${r.name}: array<${r.type}>;`);
  return lines.join('\n');
}

/** `ld_X(slot, i) -> f32` for every operand, and `st_X(slot, i, v)` for writable ones. */
export function slotAccessors(n: number, operands: readonly SlotOperand[]): string {
  const out: string[] = [];
  for (const op of operands) {
    const loads = Array.from({ length: n }, (_, k) => `    case ${k}u: { return ${op.name}${k}[i]; }`).join('\n');
    out.push(`fn ld_${op.name}(s: u32, i: u32) -> f32 {\n  switch (s) {\n${loads}\n    default: { return 0.0; }\n  }\n}`);
    if (op.access === 'read_write') {
      const stores = Array.from({ length: n }, (_, k) => `    case ${k}u: { ${op.name}${k}[i] = v; }`).join('\n');
      out.push(`fn st_${op.name}(s: u32, i: u32, v: f32) {\n  switch (s) {\n${stores}\n    default: { }\n  }\n}`);
    }
  }
  return out.join('\n');
}

/**
 * Work-item lookup over the META table (u.itemBase: first item of this dispatch, u.nitems items).
 * Items are sorted by first workgroup, so the last one starting at or before `wg` owns it.
 */
export const ITEM_WGSL = /* wgsl */ `
fn item_word(it: u32, w: u32) -> u32 {
  return META[(u.itemBase + it) * ${ITEM_WORDS}u + w];
}
fn item_f32(it: u32, k: u32) -> f32 {
  return bitcast<f32>(item_word(it, 8u + k));
}
fn find_item(wg: u32) -> u32 {
  var it = 0u;
  for (var k = 1u; k < u.nitems; k = k + 1u) {
    if (wg >= item_word(k, 1u)) { it = k; }
  }
  return it;
}
fn linear_wg(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.y * nwg.x + wid.x;
}
`;

/**
 * Entry point of an element-wise multi-tensor kernel: one invocation per element of a work item,
 * with `it` (the item), `local` (the element within it) and `slot` (its operand slot) in scope.
 */
export const ELEMENT_MAIN = /* wgsl */ `@compute @workgroup_size(${BLOCK})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let wg = linear_wg(wid, nwg);
  if (wg >= u.totalWG) { return; }
  let it = find_item(wg);
  let local = (wg - item_word(it, 1u)) * ${BLOCK}u + lid;
  if (local >= item_word(it, 3u)) { return; }
  let slot = item_word(it, 0u);`;

/** Uniform fields every multi-tensor kernel starts with. */
export const ITEM_UNIFORMS = ['itemBase:u32', 'nitems:u32', 'totalWG:u32'] as const;
