// WGSL for reducing one value per invocation across a workgroup: a workgroup-memory tree, or
// subgroup operations where the device has them. Works for any subgroup size and layout.
import type { Runtime } from '../../core/runtime.js';

export type ReduceMode = 'subgroup' | 'shared';

/** Subgroup reductions where the device offers them, the workgroup-memory tree otherwise. */
export function reduceMode(rt: Runtime): ReduceMode {
  return rt.has('subgroups') ? 'subgroup' : 'shared';
}

export interface WgReduceOp {
  /** Function name suffix: the WGSL function is `wg_<name>(v, lid)`. */
  name: string;
  type: 'f32' | 'u32';
  /** The op's identity as a WGSL expression. */
  identity: string;
  combine: (a: string, b: string) => string;
  subgroupFn: 'subgroupAdd' | 'subgroupMax' | 'subgroupMin';
}

export const WG_SUM_F32: WgReduceOp = { name: 'sum_f32', type: 'f32', identity: '0.0', combine: (a, b) => `${a} + ${b}`, subgroupFn: 'subgroupAdd' };
export const WG_SUM_U32: WgReduceOp = { name: 'sum_u32', type: 'u32', identity: '0u', combine: (a, b) => `${a} + ${b}`, subgroupFn: 'subgroupAdd' };
export const WG_MAX_F32: WgReduceOp = {
  name: 'max_f32',
  type: 'f32',
  identity: '-0x1.fffffep+127f',
  combine: (a, b) => `max(${a}, ${b})`,
  subgroupFn: 'subgroupMax',
};
export const WG_MAX_U32: WgReduceOp = { name: 'max_u32', type: 'u32', identity: '0u', combine: (a, b) => `max(${a}, ${b})`, subgroupFn: 'subgroupMax' };
export const WG_MIN_U32: WgReduceOp = {
  name: 'min_u32',
  type: 'u32',
  identity: '0xffffffffu',
  combine: (a, b) => `min(${a}, ${b})`,
  subgroupFn: 'subgroupMin',
};

/** Directives that must open the module. */
export function reduceEnable(mode: ReduceMode): string {
  return mode === 'subgroup' ? 'enable subgroups;\n' : '';
}

/** Extra entry-point parameters the reduction functions need. */
export function reduceEntryParams(mode: ReduceMode): string {
  return mode === 'subgroup' ? ', @builtin(subgroup_invocation_id) sg_lane_in: u32, @builtin(subgroup_size) sg_size_in: u32' : '';
}

/** First statement of the entry point. */
export function reduceEntryInit(mode: ReduceMode): string {
  return mode === 'subgroup' ? 'sg_lane = sg_lane_in; sg_size = sg_size_in;' : '';
}

/**
 * Module-scope declarations and one `fn wg_<op.name>(v, lid) -> T` per op. Every invocation of the
 * workgroup must call it (it has barriers) and every invocation gets the result. `wg` must be a
 * power of two.
 */
export function wgReduceFns(mode: ReduceMode, wg: number, ops: readonly WgReduceOp[]): string {
  const types = [...new Set(ops.map((o) => o.type))];
  const decls = types.map((t) => `var<workgroup> wg_red_${t}: array<${t}, ${wg}>;`);
  if (mode === 'subgroup') decls.push('var<private> sg_lane: u32;', 'var<private> sg_size: u32;');
  const fns = ops.map((op) => {
    const arr = `wg_red_${op.type}`;
    if (mode === 'shared') {
      return /* wgsl */ `
fn wg_${op.name}(v: ${op.type}, lid: u32) -> ${op.type} {
  ${arr}[lid] = v;
  workgroupBarrier();
  for (var s = ${wg / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { ${arr}[lid] = ${op.combine(`${arr}[lid]`, `${arr}[lid + s]`)}; }
    workgroupBarrier();
  }
  let r = ${arr}[0];
  workgroupBarrier();
  return r;
}`;
    }
    // Each subgroup's total lands at its first lane's slot (identity elsewhere), so neither the
    // subgroup size nor which invocations share a subgroup matters; then every subgroup folds
    // all slots, which keeps the second subgroup op in uniform control flow.
    return /* wgsl */ `
fn wg_${op.name}(v: ${op.type}, lid: u32) -> ${op.type} {
  let part = ${op.subgroupFn}(v);
  ${arr}[lid] = select(${op.identity}, part, sg_lane == 0u);
  workgroupBarrier();
  var t: ${op.type} = ${op.identity};
  for (var i = sg_lane; i < ${wg}u; i += sg_size) { t = ${op.combine('t', `${arr}[i]`)}; }
  let r = ${op.subgroupFn}(t);
  workgroupBarrier();
  return r;
}`;
  });
  return [...decls, ...fns].join('\n');
}

/** Workgroup index of a 2-D grid from grid1d(rows, 1). */
export const ROW_INDEX = 'let row = wid.y * nwg.x + wid.x;';
