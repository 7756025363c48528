// WGSL for elementwise binary ops with NumPy broadcasting (f32 compute, any float storage in).
import { GRID_HELPERS, type KernelSpec, type UniformField } from '../../core/kernel.js';
import { wgslLoad, wgslStorageType, type DType } from '../../core/dtype.js';
import { MAX_RANK } from '../shape-utils.js';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';

export const BINARY_EXPR: Record<BinaryOp, (a: string, b: string) => string> = {
  add: (a, b) => `${a} + ${b}`,
  sub: (a, b) => `${a} - ${b}`,
  mul: (a, b) => `${a} * ${b}`,
  div: (a, b) => `${a} / ${b}`,
};

const dims = (p: string) => Array.from({ length: MAX_RANK }, (_, i) => `${p}${i}`);

/**
 * `broadcast` false: both inputs have the output's shape. True: uniforms carry the output dims
 * (d0..d5, left-padded with 1) and each input's strides (a0..a5, b0..b5; 0 on broadcast dims),
 * of which the last `rank` are in use.
 */
export function binarySpec(op: BinaryOp, da: DType, db: DType, broadcast: boolean, rank = MAX_RANK): KernelSpec {
  const uniforms: UniformField[] = [{ name: 'n', type: 'u32' }];
  if (broadcast) for (const p of ['d', 'a', 'b']) for (const name of dims(p)) uniforms.push({ name, type: 'u32' });
  const indexing = broadcast
    ? (() => {
        const lines = ['var rem = i;', 'var ia = 0u;', 'var ib = 0u;'];
        const first = MAX_RANK - Math.max(1, Math.min(MAX_RANK, rank));
        for (let k = MAX_RANK - 1; k >= first; k--) {
          // The outermost dim in use takes what is left, with no division.
          lines.push(k === first ? `ia += rem * u.a${k}; ib += rem * u.b${k};` : `{ let c = rem % u.d${k}; rem = rem / u.d${k}; ia += c * u.a${k}; ib += c * u.b${k}; }`);
        }
        return lines.join('\n    ');
      })()
    : 'let ia = i; let ib = i;';
  return {
    name: 'binary',
    variant: `${op}:${da}:${db}:${broadcast ? `bc${rank}` : 'flat'}`,
    bindings: ['read', 'read', 'read_write'],
    uniforms,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> A: array<${wgslStorageType(da)}>;
@group(0) @binding(1) var<storage, read> B: array<${wgslStorageType(db)}>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
struct Params { ${uniforms.map((f) => `${f.name}: ${f.type},`).join(' ')} }
@group(0) @binding(3) var<uniform> u: Params;
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  ${indexing}
  let x = f32(${wgslLoad(da, 'A', 'ia')});
  let y = f32(${wgslLoad(db, 'B', 'ib')});
  O[i] = ${BINARY_EXPR[op]('x', 'y')};
}`,
  };
}
