// WGSL for a strided sum: each invocation owns one output element and loops over the reduced
// dims. Used to fold broadcast gradients back to an input's shape.
import { GRID_HELPERS, type KernelSpec, type UniformField } from '../../core/kernel.js';
import { MAX_RANK } from '../shape-utils.js';

export function sumStridedSpec(): KernelSpec {
  const uniforms: UniformField[] = [
    { name: 'n', type: 'u32' },
    { name: 'r', type: 'u32' },
  ];
  for (const p of ['od', 'os', 'rd', 'rs']) for (let k = 0; k < MAX_RANK; k++) uniforms.push({ name: `${p}${k}`, type: 'u32' });
  const outIndex: string[] = [];
  const redIndex: string[] = [];
  for (let k = MAX_RANK - 1; k >= 0; k--) {
    outIndex.push(`{ let c = rem % u.od${k}; rem = rem / u.od${k}; base += c * u.os${k}; }`);
    redIndex.push(`{ let c = q % u.rd${k}; q = q / u.rd${k}; off += c * u.rs${k}; }`);
  }
  return {
    name: 'sum_strided',
    variant: 'f32',
    bindings: ['read', 'read_write'],
    uniforms,
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<f32>;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
struct Params { ${uniforms.map((f) => `${f.name}: ${f.type},`).join(' ')} }
@group(0) @binding(2) var<uniform> u: Params;
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  var rem = i;
  var base = 0u;
  ${outIndex.join('\n  ')}
  var acc = 0.0;
  for (var j = 0u; j < u.r; j++) {
    var q = j;
    var off = base;
    ${redIndex.join('\n    ')}
    acc += X[off];
  }
  O[i] = acc;
}`,
  };
}
