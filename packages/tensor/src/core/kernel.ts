// Typed kernel specs: bindings, workgroup size and the WGSL a kernel compiles to. A kernel's
// cache key is its name plus everything that changes the generated code (dtype, constants).

export type BindingKind = 'read' | 'read_write';

export interface KernelSpec {
  /** Stable kernel name, e.g. 'binary'. */
  name: string;
  /** Everything besides the name that changes the WGSL: dtypes, constants, variants. */
  variant: string;
  /** Storage bindings in order (group 0, bindings 0..n-1); the uniform block, if any, comes after them. */
  bindings: readonly BindingKind[];
  /** WGSL struct fields of the uniform block, e.g. ['n: u32', 'alpha: f32']; empty for none. */
  uniforms: readonly UniformField[];
  /** Features the shader enables (checked at dispatch): 'shader-f16', 'subgroups', ... */
  features?: readonly string[];
  /** The whole WGSL module. Entry point `main`. */
  wgsl: string;
}

export type UniformType = 'u32' | 'i32' | 'f32';
export interface UniformField {
  name: string;
  type: UniformType;
}

export function kernelKey(spec: Pick<KernelSpec, 'name' | 'variant'>): string {
  return `${spec.name}:${spec.variant}`;
}

/** WGSL declaration of the uniform block `u` at binding `index`, or '' when there are no uniforms. */
export function uniformDecl(fields: readonly UniformField[], index: number): string {
  if (fields.length === 0) return '';
  const body = fields.map((f) => `  ${f.name}: ${f.type},`).join('\n');
  return `struct Params {\n${body}\n}\n@group(0) @binding(${index}) var<uniform> u: Params;\n`;
}

/** WGSL storage declarations for `names` following `spec.bindings`, with the given element types. */
export function storageDecls(bindings: readonly BindingKind[], names: readonly string[], types: readonly string[]): string {
  return bindings
    .map((kind, i) => `@group(0) @binding(${i}) var<storage, ${kind}> ${names[i]}: array<${types[i]}>;`)
    .join('\n');
}

/** Uniform fields as one helper: `uniforms('n:u32', 'alpha:f32')`. */
export function uniforms(...fields: string[]): UniformField[] {
  return fields.map((f) => {
    const [name, type] = f.split(':').map((s) => s.trim());
    if (!name || (type !== 'u32' && type !== 'i32' && type !== 'f32')) throw new Error(`bad uniform field "${f}"`);
    return { name, type };
  });
}

/**
 * Workgroup counts for `threads` invocations of `size` lanes: a 2-D grid once x would pass the
 * 65535 limit. WGSL side: `linearIndex(wid, lid, nwg)` in GRID_HELPERS.
 */
export function grid1d(threads: number, size: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.max(1, Math.ceil(threads / size));
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

/** `gid(wid, nwg, lid, SIZE)` = linear invocation index of a grid1d dispatch. */
export const GRID_HELPERS = /* wgsl */ `
fn gid(wid: vec3u, nwg: vec3u, lid: u32, size: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * size + lid;
}
`;
