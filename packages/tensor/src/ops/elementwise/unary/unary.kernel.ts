// WGSL for elementwise unary ops and their derivatives (f32 compute, f32/f16/bf16 storage in),
// including erf/erfc/tanh written out so that every device computes them to f32 round-off.
import { GRID_HELPERS, type KernelSpec } from '../../../core/kernel.js';
import { wgslLoad, wgslStorageType, type DType } from '../../../core/dtype.js';

export type UnaryOp = 'scale' | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'square' | 'sigmoid' | 'silu' | 'tanh' | 'relu' | 'erf' | 'gelu' | 'gelu_tanh';

/** What a backward rule needs besides the output gradient: the input, the output, or nothing. */
export const UNARY_SAVES: Record<UnaryOp, 'x' | 'y' | 'none'> = {
  scale: 'none',
  neg: 'none',
  exp: 'y',
  log: 'x',
  sqrt: 'y',
  rsqrt: 'y',
  square: 'x',
  sigmoid: 'y',
  silu: 'x',
  tanh: 'y',
  relu: 'x',
  erf: 'x',
  gelu: 'x',
  gelu_tanh: 'x',
};

/** A number as a WGSL float literal (never an abstract int). */
const lit = (c: number): string => {
  const s = c.toString();
  return /[.e]/.test(s) ? s : `${s}.0`;
};

const horner = (coefs: readonly number[], t: string): string => coefs.slice(1).reduce((acc, c) => `fma(${acc}, ${t}, ${lit(c)})`, lit(coefs[0] ?? 0));

/**
 * Coefficients fitted for this project (least squares in float64 on Chebyshev nodes, rounded to
 * f32), highest power first. erf(x)/x as a polynomial in x^2 on |x| < 1; erfc(a)*exp(a^2) as
 * polynomials in 1/a on [1, 2), [2, 4) and [4, 10.5); tanh(x)/x in x^2 on |x| < 0.625. With
 * f32 arithmetic erf stays within ~2.5 ulp (1.4e-7 absolute) of the exact value.
 */
const ERF_SMALL = [7.89821e-5, -0.0008024354, 0.0051900535, -0.02685481, 0.11283612, -0.3761263, 1.1283792];
const ERFCX_1_2 = [0.008068514, -0.06615276, 0.24437408, -0.5310712, 0.73013526, -0.5901017, 0.07904346, 0.5525218, 0.0007661002];
const ERFCX_2_4 = [0.1134359, -0.26834288, 0.13807087, 0.23150757, -0.3624818, 0.015479251, 0.5625743, 7.1632756e-5];
const ERFCX_4_10 = [-0.40676373, 0.4611506, 0.011557434, -0.28590733, 0.00047259155, 0.56416154, 6.61743e-7];
const TANH_SMALL = [-0.0056975223, 0.020630307, -0.053735863, 0.13331366, -0.33333275, 1.0];

/** erf, erfc (for a >= 0), tanh, sigmoid and the normal cdf/pdf, in f32. */
export const SPECIAL_FNS = /* wgsl */ `
fn erf_small(x: f32) -> f32 { let z = x * x; return x * ${horner(ERF_SMALL, 'z')}; }
// erfc(a) for a >= 1 as exp(-a^2) * erfcx(a).
fn erfc_big(a: f32) -> f32 {
  let t = 1.0 / a;
  var q: f32;
  if (a < 2.0) { q = ${horner(ERFCX_1_2, 't')}; }
  else if (a < 4.0) { q = ${horner(ERFCX_2_4, 't')}; }
  else { q = ${horner(ERFCX_4_10, 't')}; }
  return exp(-(a * a)) * q;
}
fn erf_f(x: f32) -> f32 {
  let a = abs(x);
  if (a < 1.0) { return erf_small(x); }
  if (a >= 4.0) { return sign(x); }
  let r = 1.0 - erfc_big(a);
  return select(r, -r, x < 0.0);
}
// erfc(a) for a >= 0: never 1 - erf(a) past a = 1, so the tail keeps its relative accuracy.
fn erfc_pos(a: f32) -> f32 {
  if (a < 1.0) { return 1.0 - erf_small(a); }
  if (a >= 10.5) { return 0.0; }
  return erfc_big(a);
}
fn tanh_f(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.625) { let z = x * x; return x * ${horner(TANH_SMALL, 'z')}; }
  let r = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
  return select(r, -r, x < 0.0);
}
fn sigmoid_f(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
// Normal cdf without cancellation on either side: 0.5 * erfc(-x / sqrt 2).
fn ncdf(x: f32) -> f32 {
  let y = x * 0.70710678118654752;
  if (x >= 0.0) { return 0.5 + 0.5 * erf_f(y); }
  return 0.5 * erfc_pos(-y);
}
fn npdf(x: f32) -> f32 { return 0.39894228040143268 * exp(-0.5 * x * x); }
// gelu_tanh's gate 0.5 * (1 + tanh(z)) written as sigmoid(2z), which does not cancel for x < 0.
fn gelu_tanh_gate(x: f32) -> f32 { return sigmoid_f(1.5957691216057308 * (x + 0.044715 * x * x * x)); }
`;

/** Forward expression of `op` in terms of the f32 value `x` and the uniform `u.alpha`. */
const FORWARD: Record<UnaryOp, string> = {
  scale: 'x * u.alpha',
  neg: '-x',
  exp: 'exp(x)',
  log: 'log(x)',
  sqrt: 'sqrt(x)',
  rsqrt: 'inverseSqrt(x)',
  square: 'x * x',
  sigmoid: 'sigmoid_f(x)',
  silu: 'x * sigmoid_f(x)',
  tanh: 'tanh_f(x)',
  // select keeps NaN (NaN < 0 is false), as torch's relu does.
  relu: 'select(x, 0.0, x < 0.0)',
  erf: 'erf_f(x)',
  gelu: 'x * ncdf(x)',
  gelu_tanh: 'x * gelu_tanh_gate(x)',
};

/** dL/dx in terms of the output gradient `g` and the saved value `s` (input or output, per UNARY_SAVES). */
const BACKWARD: Record<UnaryOp, string> = {
  scale: 'g * u.alpha',
  neg: '-g',
  exp: 'g * s',
  log: 'g / s',
  sqrt: 'g * 0.5 / s',
  rsqrt: '-0.5 * g * s * s * s',
  square: '2.0 * s * g',
  sigmoid: 'g * s * (1.0 - s)',
  silu: 'g * dsilu(s)',
  tanh: 'g * (1.0 - s * s)',
  relu: 'select(0.0, g, s > 0.0)',
  erf: 'g * 1.1283791670955126 * exp(-(s * s))',
  gelu: 'g * (ncdf(s) + s * npdf(s))',
  gelu_tanh: 'g * dgelu_tanh(s)',
};

const DERIV_FNS = /* wgsl */ `
fn dsilu(x: f32) -> f32 { let sg = sigmoid_f(x); return sg * (1.0 + x * (1.0 - sg)); }
fn dgelu_tanh(x: f32) -> f32 {
  let sg = gelu_tanh_gate(x);
  return sg + x * 2.0 * sg * (1.0 - sg) * 0.79788456080286536 * (1.0 + 0.134145 * x * x);
}
`;

const PARAMS = 'struct Params { n: u32, alpha: f32, }';

/** y = op(x). Bindings: x (dtype), y (f32). Uniforms: n, alpha. */
export function unarySpec(op: UnaryOp, dtype: DType): KernelSpec {
  return {
    name: 'unary',
    variant: `${op}:${dtype}`,
    bindings: ['read', 'read_write'],
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'alpha', type: 'f32' },
    ],
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> X: array<${wgslStorageType(dtype)}>;
@group(0) @binding(1) var<storage, read_write> Y: array<f32>;
${PARAMS}
@group(0) @binding(2) var<uniform> u: Params;
${GRID_HELPERS}
${SPECIAL_FNS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  let x = f32(${wgslLoad(dtype, 'X', 'i')});
  Y[i] = ${FORWARD[op]};
}`,
  };
}

/** dx = op'(saved) * g. Bindings: saved (dtype; unbound for ops that save nothing), g (f32), dx (f32). */
export function unaryBackwardSpec(op: UnaryOp, savedDtype: DType): KernelSpec {
  const saves = UNARY_SAVES[op] !== 'none';
  const decls = saves
    ? `@group(0) @binding(0) var<storage, read> S: array<${wgslStorageType(savedDtype)}>;
@group(0) @binding(1) var<storage, read> G: array<f32>;
@group(0) @binding(2) var<storage, read_write> DX: array<f32>;
@group(0) @binding(3) var<uniform> u: Params;`
    : `@group(0) @binding(0) var<storage, read> G: array<f32>;
@group(0) @binding(1) var<storage, read_write> DX: array<f32>;
@group(0) @binding(2) var<uniform> u: Params;`;
  return {
    name: 'unary_backward',
    variant: `${op}:${saves ? savedDtype : '-'}`,
    bindings: saves ? ['read', 'read', 'read_write'] : ['read', 'read_write'],
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'alpha', type: 'f32' },
    ],
    wgsl: /* wgsl */ `
${PARAMS}
${decls}
${GRID_HELPERS}
${SPECIAL_FNS}
${DERIV_FNS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  let g = G[i];
  ${saves ? `let s = f32(${wgslLoad(savedDtype, 'S', 'i')});` : ''}
  DX[i] = ${BACKWARD[op]};
}`,
  };
}

/** out = silu(gate) * up; bindings gate (dtype), up (dtype), out (f32). */
export function siluMulSpec(dg: DType, du: DType): KernelSpec {
  return {
    name: 'silu_mul',
    variant: `${dg}:${du}`,
    bindings: ['read', 'read', 'read_write'],
    uniforms: [{ name: 'n', type: 'u32' }],
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> A: array<${wgslStorageType(dg)}>;
@group(0) @binding(1) var<storage, read> B: array<${wgslStorageType(du)}>;
@group(0) @binding(2) var<storage, read_write> O: array<f32>;
struct Params { n: u32, }
@group(0) @binding(3) var<uniform> u: Params;
${GRID_HELPERS}
fn sigmoid_f(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  let a = f32(${wgslLoad(dg, 'A', 'i')});
  let b = f32(${wgslLoad(du, 'B', 'i')});
  O[i] = a * sigmoid_f(a) * b;
}`,
  };
}

/**
 * Gradients of silu(gate) * up. Bindings: gate, up, g, then dgate and/or dup (f32) as `which`
 * asks ('both' | 'gate' | 'up').
 */
export function siluMulBackwardSpec(dg: DType, du: DType, which: 'both' | 'gate' | 'up'): KernelSpec {
  const outs = which === 'both' ? ['DG', 'DU'] : which === 'gate' ? ['DG'] : ['DU'];
  const decls = outs.map((name, k) => `@group(0) @binding(${3 + k}) var<storage, read_write> ${name}: array<f32>;`).join('\n');
  const writes: string[] = [];
  if (outs.includes('DG')) writes.push('DG[i] = g * b * sg * (1.0 + a * (1.0 - sg));');
  if (outs.includes('DU')) writes.push('DU[i] = g * a * sg;');
  return {
    name: 'silu_mul_backward',
    variant: `${dg}:${du}:${which}`,
    bindings: ['read', 'read', 'read', ...outs.map(() => 'read_write' as const)],
    uniforms: [{ name: 'n', type: 'u32' }],
    wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read> A: array<${wgslStorageType(dg)}>;
@group(0) @binding(1) var<storage, read> B: array<${wgslStorageType(du)}>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
${decls}
struct Params { n: u32, }
@group(0) @binding(${3 + outs.length}) var<uniform> u: Params;
${GRID_HELPERS}
fn sigmoid_f(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i >= u.n) { return; }
  let a = f32(${wgslLoad(dg, 'A', 'i')});
  let b = f32(${wgslLoad(du, 'B', 'i')});
  let g = G[i];
  let sg = sigmoid_f(a);
  ${writes.join('\n  ')}
}`,
  };
}
