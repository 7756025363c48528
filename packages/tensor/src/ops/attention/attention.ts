// Scaled dot-product attention for causal LMs on the [B, T, H, D] layout of the q/k/v
// projections: grouped-query heads, padding masks, sliding window, packed segments, autograd.
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { needsGrad, record } from '../../core/autograd.js';
import { empty } from '../../core/create.js';
import { isFloat, type DType } from '../../core/dtype.js';
import { grid1d } from '../../core/kernel.js';
import type { BufferBinding, Runtime } from '../../core/runtime.js';
import { noGrad, type Tensor } from '../../core/tensor.js';
import {
  attentionBackwardKVSpec,
  attentionBackwardQSpec,
  attentionDeltaSpec,
  attentionForwardSpec,
  attentionTokensSpec,
  planAttention,
  type AttentionKernel,
  type AttentionPlan,
} from './attention.kernel.js';

export interface AttentionOptions {
  /** Query i sees keys j <= i (default true). */
  causal?: boolean;
  /**
   * [B, T] i32 or u32, 1 (any non-zero) = real token, 0 = padding. Padded keys are never
   * attended to; a padded query row outputs zeros and gets a zero gradient.
   */
  attentionMask?: Tensor;
  /** Multiplies q.k; default 1/sqrt(D). */
  scale?: number;
  /** Mistral's window: key j is visible to query i iff i - window < j <= i. Needs causal. */
  slidingWindow?: number;
  /** [B, T] i32 or u32 for packed sequences: a query sees only keys with the same id. */
  segmentIds?: Tensor;
}

interface Dims {
  B: number;
  T: number;
  HQ: number;
  HKV: number;
  D: number;
}

interface Config extends Dims {
  scale: number;
  causal: boolean;
  /** 0 = no window (a window of T or more never hides a key). */
  window: number;
}

const OP = 'attention';

function checkTokens(name: string, t: Tensor | undefined, B: number, T: number): void {
  if (!t) return;
  if (t.dtype !== 'i32' && t.dtype !== 'u32') throw new DTypeError({ op: `${OP} ${name}`, expected: 'i32 | u32', got: t.dtype });
  if (t.shape.length !== 2 || t.shape[0] !== B || t.shape[1] !== T) {
    throw new ShapeMismatchError({ op: OP, expected: [B, T], got: t.shape, detail: `${name} must be [B, T] for q [${B}, ${T}, ...]` });
  }
}

function checkInputs(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Config {
  for (const [name, t] of [['q', q], ['k', k], ['v', v]] as const) {
    if (!isFloat(t.dtype)) throw new DTypeError({ op: `${OP} ${name}`, expected: 'f32 | f16 | bf16', got: t.dtype });
    if (t.shape.length !== 4) throw new ShapeMismatchError({ op: OP, expected: `${name} as [B, T, H, D]`, got: t.shape });
  }
  const [B = 0, T = 0, HQ = 0, D = 0] = q.shape;
  const [kB, kT, HKV = 0, kD] = k.shape;
  const shapes = `q [${q.shape.join(', ')}], k [${k.shape.join(', ')}], v [${v.shape.join(', ')}]`;
  if (kB !== B || kT !== T || kD !== D) {
    throw new ShapeMismatchError({ op: OP, expected: `k as [${B}, ${T}, Hkv, ${D}] to match q`, got: k.shape, detail: shapes });
  }
  if (v.shape.some((dim, i) => dim !== k.shape[i])) {
    throw new ShapeMismatchError({ op: OP, expected: k.shape, got: v.shape, detail: `v must have k's shape; ${shapes}` });
  }
  if (HKV === 0 || HQ % HKV !== 0) {
    throw new ShapeMismatchError({ op: OP, expected: 'q heads a multiple of k/v heads', got: `Hq=${HQ}, Hkv=${HKV}`, detail: shapes });
  }
  if (D === 0) throw new ShapeMismatchError({ op: OP, expected: 'head dim D >= 1', got: q.shape });
  checkTokens('attentionMask', options.attentionMask, B, T);
  checkTokens('segmentIds', options.segmentIds, B, T);
  const causal = options.causal ?? true;
  const scale = options.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new UnsupportedError({ what: 'scale', got: scale, where: OP });
  let window = 0;
  if (options.slidingWindow !== undefined) {
    const w = options.slidingWindow;
    if (!Number.isInteger(w) || w < 1) throw new UnsupportedError({ what: 'slidingWindow', got: w, supported: ['a positive integer'], where: OP });
    if (!causal) throw new UnsupportedError({ what: 'slidingWindow with causal: false', got: w, supported: ['slidingWindow with causal attention'], where: OP });
    window = w >= T ? 0 : w;
  }
  const rt = q.rt;
  for (const t of [q, k, v]) {
    if (t.byteLength > rt.maxBindingBytes) {
      throw new UnsupportedError({ what: 'tensor size for one binding', got: `[${t.shape.join(', ')}] = ${t.byteLength} bytes`, supported: [`at most ${rt.maxBindingBytes} bytes`], where: OP });
    }
  }
  if (B > 65535 || HQ > 65535) throw new UnsupportedError({ what: 'batch or head count', got: `B=${B}, Hq=${HQ}`, supported: ['at most 65535'], where: OP });
  return { B, T, HQ, HKV, D, scale, causal, window };
}

function plan(rt: Runtime, kernel: AttentionKernel, d: number): AttentionPlan {
  const info = rt.gpu.info;
  const limits = info.limits;
  // A software adapter runs a workgroup's invocations one SIMD batch after another and switches
  // between all of them at every barrier: four batches of its subgroup size do the same work with
  // fewer switches (about twice as fast as 128 invocations on Mesa's lavapipe).
  const threads = info.isSoftware && info.subgroupMinSize > 0 ? Math.min(limits.maxComputeInvocationsPerWorkgroup, 4 * info.subgroupMinSize) : limits.maxComputeInvocationsPerWorkgroup;
  return planAttention(kernel, d, limits.maxComputeWorkgroupStorageSize, threads);
}

function blocks(cfg: Config, rows: number, what: string): number {
  const n = Math.ceil(cfg.T / rows);
  if (n > 65535) throw new UnsupportedError({ what: 'sequence length', got: cfg.T, supported: [`at most ${65535 * rows} for ${what}`], where: OP });
  return n;
}

function uniformValues(cfg: Config, hasTokens: boolean): number[] {
  return [cfg.T, cfg.HQ, cfg.HKV, cfg.HQ / cfg.HKV, cfg.D, cfg.scale, cfg.causal ? 1 : 0, cfg.window, hasTokens ? 1 : 0];
}

/** [B, T, 2] u32 (real token, segment id), or null when neither a mask nor segment ids are given. */
function tokenInfo(cfg: Config, mask: Tensor | undefined, seg: Tensor | undefined): Tensor | null {
  const any = mask ?? seg;
  if (!any) return null;
  const tok = empty(any.rt, [cfg.B, cfg.T, 2], 'u32');
  const n = cfg.B * cfg.T;
  any.rt.dispatch(attentionTokensSpec(), [(mask ?? any).binding(), (seg ?? any).binding(), tok.binding()], [n, mask ? 1 : 0, seg ? 1 : 0], grid1d(n, 256));
  return tok;
}

function forward(q: Tensor, k: Tensor, v: Tensor, tok: Tensor | null, cfg: Config): { out: Tensor; lse: Tensor } {
  const rt = q.rt;
  const out = empty(rt, q.shape, 'f32');
  const lse = empty(rt, [cfg.B, cfg.HQ, cfg.T], 'f32');
  const p = plan(rt, 'forward', cfg.D);
  const spec = attentionForwardSpec(p, { q: q.dtype, k: k.dtype, v: v.dtype });
  const tokBinding: BufferBinding = (tok ?? q).binding();
  rt.dispatch(spec, [q.binding(), k.binding(), v.binding(), tokBinding, out.binding(), lse.binding()], uniformValues(cfg, tok !== null), [
    blocks(cfg, p.br, 'the forward'),
    cfg.HQ,
    cfg.B,
  ]);
  return { out, lse };
}

interface Grads {
  dq: Tensor | null;
  dk: Tensor | null;
  dv: Tensor | null;
}

function backwardPasses(g: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, tok: Tensor | null, cfg: Config, need: { q: boolean; kv: boolean }): Grads {
  const rt = q.rt;
  if (!isFloat(g.dtype)) throw new DTypeError({ op: `${OP} backward`, expected: 'f32 | f16 | bf16 gradient', got: g.dtype });
  const dtypes: { q: DType; k: DType; v: DType; dout: DType } = { q: q.dtype, k: k.dtype, v: v.dtype, dout: g.dtype };
  const rows = cfg.B * cfg.T * cfg.HQ;
  const stats = empty(rt, [cfg.B, cfg.HQ, cfg.T, 2], 'f32');
  rt.dispatch(attentionDeltaSpec(g.dtype), [g.binding(), out.binding(), lse.binding(), stats.binding()], [rows, cfg.T, cfg.HQ, cfg.D], grid1d(rows, 128));
  const uni = uniformValues(cfg, tok !== null);
  const tokBinding = (tok ?? q).binding();
  const grads: Grads = { dq: null, dk: null, dv: null };
  if (need.q) {
    const p = plan(rt, 'backward-q', cfg.D);
    const dq = empty(rt, q.shape, 'f32');
    rt.dispatch(attentionBackwardQSpec(p, dtypes), [q.binding(), k.binding(), v.binding(), g.binding(), stats.binding(), tokBinding, dq.binding()], uni, [
      blocks(cfg, p.br, 'the dQ pass'),
      cfg.HQ,
      cfg.B,
    ]);
    grads.dq = dq;
  }
  if (need.kv) {
    const p = plan(rt, 'backward-kv', cfg.D);
    const dk = empty(rt, k.shape, 'f32');
    const dv = empty(rt, v.shape, 'f32');
    rt.dispatch(
      attentionBackwardKVSpec(p, dtypes),
      [q.binding(), k.binding(), v.binding(), g.binding(), stats.binding(), tokBinding, dk.binding(), dv.binding()],
      uni,
      [blocks(cfg, p.bc, 'the dK/dV pass'), cfg.HKV, cfg.B],
    );
    grads.dk = dk;
    grads.dv = dv;
  }
  stats.dispose();
  return grads;
}

/**
 * Scaled dot-product attention as transformers' eager/sdpa attention computes it for causal
 * LMs. q [B, T, Hq, D], k and v [B, T, Hkv, D] with Hq a multiple of Hkv (query head h reads kv
 * head floor(h / (Hq / Hkv))); returns f32 [B, T, Hq, D]. Flash-style: the T x T scores are
 * never stored; the backward recomputes them from the saved row logsumexp.
 *
 * A query row that sees no key (a padded query, see `attentionMask`) outputs zeros, and no
 * gradient flows through it. transformers lets a right-padded query attend to the real keys
 * before it instead; rows at real positions are the same either way.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const cfg = checkInputs(q, k, v, options);
  const tok = tokenInfo(cfg, options.attentionMask, options.segmentIds);
  const { out, lse } = forward(q, k, v, tok, cfg);
  if (!needsGrad(q, k, v)) {
    lse.dispose();
    tok?.dispose();
    return out;
  }
  const needQ = q.requiresGrad;
  const needK = k.requiresGrad;
  const needV = v.requiresGrad;
  const saved = tok ? [q, k, v, out, lse, tok] : [q, k, v, out, lse];
  const result = record(out, OP, [q, k, v], saved, (g, s) =>
    noGrad(() => {
      const [sq, sk, sv, so, slse, stok] = s;
      if (!sq || !sk || !sv || !so || !slse) throw new Error('attention backward: saved tensors missing');
      const grads = backwardPasses(g, sq, sk, sv, so, slse, stok ?? null, cfg, { q: needQ, kv: needK || needV });
      if (!needK) grads.dk?.dispose();
      if (!needV) grads.dv?.dispose();
      return [grads.dq, needK ? grads.dk : null, needV ? grads.dv : null];
    }),
  );
  // record() keeps its own shares of what backward needs.
  lse.dispose();
  tok?.dispose();
  return result;
}
