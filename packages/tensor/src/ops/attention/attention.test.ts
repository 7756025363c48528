// attention against the float64 reference (odd T, GQA, padding, sliding window, segments, small
// workgroup-memory limits) and its gradients against finite differences and the analytic reference.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { attention, backward, fromArray, tidy, type AttentionOptions, type Runtime, type Tensor } from '../../index.js';
import { assertClose, gradCheck, numericGrads, randn, testRuntime, TOL, type Tolerance } from '../../testing/index.js';
import { attentionBackwardRef, attentionRef, type AttentionRefConfig } from './attention.ref.js';

interface Case {
  B: number;
  T: number;
  HQ: number;
  HKV: number;
  D: number;
  causal?: boolean;
  mask?: number[];
  segments?: number[];
  window?: number;
  scale?: number;
}

/** Row 0 left-padded by `left`, row 1 right-padded by `right` (the fixtures' batch pads row 1's last 3). */
function paddingMask(T: number, left: number, right: number): number[] {
  const m: number[] = [];
  for (let i = 0; i < T; i++) m.push(i < left ? 0 : 1);
  for (let i = 0; i < T; i++) m.push(i >= T - right ? 0 : 1);
  return m;
}

/** Two rows of packed sequences with the given lengths (last one runs to T). */
function packedSegments(T: number, lengths: readonly number[][]): number[] {
  const out: number[] = [];
  for (const row of lengths) {
    let seg = 0;
    let left = row[0] ?? T;
    for (let i = 0; i < T; i++) {
      if (left === 0) {
        seg += 1;
        left = row[seg] ?? T;
      }
      out.push(seg);
      left -= 1;
    }
  }
  return out;
}

function refConfig(c: Case): AttentionRefConfig {
  const cfg: AttentionRefConfig = { B: c.B, T: c.T, HQ: c.HQ, HKV: c.HKV, D: c.D, causal: c.causal ?? true };
  if (c.mask) cfg.mask = c.mask;
  if (c.segments) cfg.segments = c.segments;
  if (c.window !== undefined) cfg.window = c.window;
  if (c.scale !== undefined) cfg.scale = c.scale;
  return cfg;
}

function options(rt: Runtime, c: Case): { opts: AttentionOptions; owned: Tensor[] } {
  const opts: AttentionOptions = { causal: c.causal ?? true };
  const owned: Tensor[] = [];
  if (c.mask) {
    opts.attentionMask = fromArray(rt, c.mask, [c.B, c.T], 'i32');
    owned.push(opts.attentionMask);
  }
  if (c.segments) {
    opts.segmentIds = fromArray(rt, c.segments, [c.B, c.T], 'i32');
    owned.push(opts.segmentIds);
  }
  if (c.window !== undefined) opts.slidingWindow = c.window;
  if (c.scale !== undefined) opts.scale = c.scale;
  return { opts, owned };
}

function label(c: Case): string {
  const extras = [c.causal === false ? 'non-causal' : '', c.mask ? 'mask' : '', c.segments ? 'segments' : '', c.window ? `window ${c.window}` : '', c.scale ? `scale ${c.scale}` : ''];
  return `B${c.B} T${c.T} Hq${c.HQ} Hkv${c.HKV} D${c.D} ${extras.filter((x) => x).join(' ')}`.trim();
}

function inputs(c: Case, seed: number): { q: Float32Array; k: Float32Array; v: Float32Array } {
  return {
    q: randn(c.B * c.T * c.HQ * c.D, seed),
    k: randn(c.B * c.T * c.HKV * c.D, seed + 1),
    v: randn(c.B * c.T * c.HKV * c.D, seed + 2),
  };
}

/**
 * Forward tolerance. An output is a convex combination of v rows, so its error is max|v| times
 * the error of the probabilities plus the round-off of the weighted sum. f32 round-off grows like
 * sqrt(n) * 2^-24 for the score dot over D and for the sum over T keys (WGSL's exp adds a few
 * ulp); we allow 8x that: atol = 8 * 2^-24 * (sqrt(D) + sqrt(T)) * max|v|.
 */
function forwardTol(c: Case, v: Float32Array): Tolerance {
  let maxV = 0;
  for (const x of v) maxV = Math.max(maxV, Math.abs(x));
  return { atol: 8 * 2 ** -24 * (Math.sqrt(c.D) + Math.sqrt(c.T)) * maxV, rtol: TOL.f32.rtol };
}

/**
 * Gradient tolerance against the float64 analytic gradients: the backward recomputes P from the
 * saved logsumexp and forms dS = P (dP - delta), then sums over `terms` rows (T keys for dQ, T
 * query rows per sharing head for dK/dV), so round-off is that of the forward plus
 * sqrt(terms) * 2^-24 per unit of the largest gradient; we allow 16x that.
 */
function gradTol(c: Case, terms: number, ref: Float64Array): Tolerance {
  let m = 0;
  for (const x of ref) m = Math.max(m, Math.abs(x));
  return { atol: 16 * 2 ** -24 * (Math.sqrt(c.D) + Math.sqrt(terms)) * m, rtol: TOL.grad.rtol };
}

describe('attention', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  async function checkForward(c: Case, seed: number): Promise<void> {
    const { q, k, v } = inputs(c, seed);
    const { opts, owned } = options(rt, c);
    const tq = fromArray(rt, q, [c.B, c.T, c.HQ, c.D]);
    const tk = fromArray(rt, k, [c.B, c.T, c.HKV, c.D]);
    const tv = fromArray(rt, v, [c.B, c.T, c.HKV, c.D]);
    const out = attention(tq, tk, tv, opts);
    expect(out.shape).toEqual([c.B, c.T, c.HQ, c.D]);
    expect(out.dtype).toBe('f32');
    const got = await out.toArray();
    assertClose(got, attentionRef(refConfig(c), q, k, v), forwardTol(c, v), `attention ${label(c)}`);
    for (const t of [tq, tk, tv, out, ...owned]) t.dispose();
  }

  /** GPU gradients against the float64 analytic ones (checked against finite differences below). */
  async function checkBackward(c: Case, seed: number): Promise<void> {
    const { q, k, v } = inputs(c, seed);
    const { opts, owned } = options(rt, c);
    const tq = fromArray(rt, q, [c.B, c.T, c.HQ, c.D], 'f32', { requiresGrad: true });
    const tk = fromArray(rt, k, [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
    const tv = fromArray(rt, v, [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
    const out = attention(tq, tk, tv, opts);
    const g = randn(out.numel, seed + 3);
    const tg = fromArray(rt, g, out.shape);
    backward(out, tg);
    const want = attentionBackwardRef(refConfig(c), q, k, v, g);
    const group = c.HQ / c.HKV;
    for (const [name, t, ref, terms] of [
      ['dq', tq, want.dq, c.T],
      ['dk', tk, want.dk, c.T * group],
      ['dv', tv, want.dv, c.T * group],
    ] as const) {
      const grad = t.grad;
      if (!grad) throw new Error(`${name}: no gradient`);
      assertClose(await grad.toArray(), ref, gradTol(c, terms, ref), `attention ${name} ${label(c)}`);
    }
    for (const t of [tq, tk, tv, out, tg, ...owned]) t.dispose();
  }

  /** Runs `fn` as if the device had only `bytes` of workgroup memory (smaller blocks, more of them). */
  async function withWorkgroupMemory(bytes: number, fn: () => Promise<void>): Promise<void> {
    const limits = rt.gpu.info.limits;
    const keep = limits.maxComputeWorkgroupStorageSize;
    limits.maxComputeWorkgroupStorageSize = bytes;
    try {
      await fn();
    } finally {
      limits.maxComputeWorkgroupStorageSize = keep;
    }
  }

  const gqa = { B: 2, HQ: 4, HKV: 2 };
  const forwardCases: Case[] = [
    { ...gqa, T: 1, D: 6 },
    { ...gqa, T: 7, D: 6 },
    { ...gqa, T: 33, D: 6 },
    { ...gqa, T: 65, D: 6 },
    { B: 2, T: 33, HQ: 3, HKV: 1, D: 6 },
    { B: 1, T: 65, HQ: 3, HKV: 1, D: 12 },
    { ...gqa, T: 65, D: 64 },
    { ...gqa, T: 33, D: 64, causal: false },
    { ...gqa, T: 65, D: 6, causal: false },
    { ...gqa, T: 33, D: 6, mask: paddingMask(33, 4, 3) },
    { ...gqa, T: 65, D: 64, mask: paddingMask(65, 2, 3) },
    { ...gqa, T: 7, D: 6, mask: paddingMask(7, 2, 3), causal: false },
    { ...gqa, T: 65, D: 6, window: 5 },
    { ...gqa, T: 65, D: 12, window: 40 },
    { ...gqa, T: 33, D: 6, segments: packedSegments(33, [[5, 20], [1, 3, 30]]) },
    { ...gqa, T: 65, D: 8, segments: packedSegments(65, [[40], [10, 10, 10]]), mask: paddingMask(65, 0, 3), window: 7 },
    { ...gqa, T: 33, D: 6, scale: 0.37 },
  ];

  it('matches the float64 reference: odd T, GQA, padding, window, segments, D 6 to 64', async () => {
    let seed = 100;
    for (const c of forwardCases) await checkForward(c, (seed += 10));
  });

  it('reads f16 and bf16 q/k/v storage', async () => {
    const c: Case = { ...gqa, T: 33, D: 8, mask: paddingMask(33, 2, 3) };
    const { q, k, v } = inputs(c, 7);
    for (const dtype of ['f16', 'bf16'] as const) {
      const tq = fromArray(rt, q, [c.B, c.T, c.HQ, c.D], dtype);
      const tk = fromArray(rt, k, [c.B, c.T, c.HKV, c.D], dtype);
      const tv = fromArray(rt, v, [c.B, c.T, c.HKV, c.D], dtype);
      const mask = fromArray(rt, c.mask ?? [], [c.B, c.T], 'u32');
      const out = attention(tq, tk, tv, { attentionMask: mask });
      // The reference sees exactly the stored (rounded) values, so f32 tolerances apply.
      const [hq, hk, hv] = [await tq.toArray(), await tk.toArray(), await tv.toArray()] as Float32Array[];
      if (!hq || !hk || !hv) throw new Error('readback failed');
      assertClose(await out.toArray(), attentionRef(refConfig(c), hq, hk, hv), forwardTol(c, hv), `attention ${dtype}`);
      for (const t of [tq, tk, tv, mask, out]) t.dispose();
    }
  });

  it('the analytic float64 backward matches finite differences of the reference', () => {
    const c: Case = { B: 2, T: 6, HQ: 4, HKV: 2, D: 3, mask: paddingMask(6, 1, 2), window: 4 };
    const cfg = refConfig(c);
    const { q, k, v } = inputs(c, 3);
    const g = randn(c.B * c.T * c.HQ * c.D, 4);
    const want = attentionBackwardRef(cfg, q, k, v, g);
    const fd = numericGrads(([x, y, z]) => attentionRef(cfg, x ?? [], y ?? [], z ?? []), [q, k, v], g);
    assertClose(want.dq, fd[0] ?? [], { atol: 1e-8, rtol: 1e-6 }, 'ref dq');
    assertClose(want.dk, fd[1] ?? [], { atol: 1e-8, rtol: 1e-6 }, 'ref dk');
    assertClose(want.dv, fd[2] ?? [], { atol: 1e-8, rtol: 1e-6 }, 'ref dv');
  });

  const gradCases: Case[] = [
    { ...gqa, T: 7, D: 6 },
    { ...gqa, T: 7, D: 6, mask: paddingMask(7, 2, 3), window: 3 },
    { B: 2, T: 9, HQ: 3, HKV: 1, D: 5, segments: packedSegments(9, [[4], [2, 2, 2]]) },
    { ...gqa, T: 5, D: 6, causal: false, mask: paddingMask(5, 1, 1) },
  ];

  for (const c of gradCases) {
    it(`backward matches finite differences of the reference (${label(c)})`, async () => {
      const { q, k, v } = inputs(c, 11);
      const { opts, owned } = options(rt, c);
      const cfg = refConfig(c);
      const r = await gradCheck(rt, (x, y, z) => attention(x, y, z, opts), ([x, y, z]) => attentionRef(cfg, x ?? [], y ?? [], z ?? []), [
        { data: q, shape: [c.B, c.T, c.HQ, c.D] },
        { data: k, shape: [c.B, c.T, c.HKV, c.D] },
        { data: v, shape: [c.B, c.T, c.HKV, c.D] },
      ]);
      assertClose(r.output, r.expectedOutput, TOL.grad, 'output');
      ['dq', 'dk', 'dv'].forEach((name, i) => assertClose(r.grads[i] ?? [], r.expectedGrads[i] ?? [], TOL.grad, `${name} ${label(c)}`));
      for (const t of owned) t.dispose();
    });
  }

  it('backward over several blocks matches the analytic reference (T 33 and 65, D 6 to 64)', async () => {
    const cases: Case[] = [
      { ...gqa, T: 65, D: 6, mask: paddingMask(65, 3, 3) },
      { B: 2, T: 65, HQ: 3, HKV: 1, D: 12, window: 20 },
      { ...gqa, T: 33, D: 64, segments: packedSegments(33, [[10, 10], [33]]) },
      { ...gqa, T: 33, D: 6, causal: false },
    ];
    let seed = 500;
    for (const c of cases) await checkBackward(c, (seed += 10));
  });

  it('fits the 16 KiB minimum and tiny workgroup memory with small blocks', async () => {
    await withWorkgroupMemory(16384, async () => {
      await checkForward({ ...gqa, T: 33, D: 64, mask: paddingMask(33, 2, 3), window: 9 }, 900);
      await checkBackward({ ...gqa, T: 33, D: 64, mask: paddingMask(33, 2, 3) }, 920);
    });
    await withWorkgroupMemory(2048, async () => {
      await checkForward({ ...gqa, T: 33, D: 6, segments: packedSegments(33, [[9, 9], [17]]) }, 930);
      await checkBackward({ ...gqa, T: 33, D: 6, mask: paddingMask(33, 5, 3), window: 11 }, 940);
    });
  });

  it('padded query rows output zeros and take exactly zero gradient; padded keys get none either', async () => {
    const c: Case = { ...gqa, T: 9, D: 6, mask: paddingMask(9, 3, 3) };
    const { q, k, v } = inputs(c, 21);
    const { opts, owned } = options(rt, c);
    const tq = fromArray(rt, q, [c.B, c.T, c.HQ, c.D], 'f32', { requiresGrad: true });
    const tk = fromArray(rt, k, [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
    const tv = fromArray(rt, v, [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
    const out = attention(tq, tk, tv, opts);
    const tg = fromArray(rt, randn(out.numel, 22), out.shape);
    backward(out, tg);
    const o = await out.toArray();
    const grads = await Promise.all([tq, tk, tv].map(async (t) => (t.grad ? t.grad.toArray() : new Float32Array())));
    const mask = c.mask ?? [];
    let padded = 0;
    for (let b = 0; b < c.B; b++)
      for (let i = 0; i < c.T; i++) {
        const live = mask[b * c.T + i] !== 0;
        for (const [arr, heads] of [
          [o, c.HQ],
          [grads[0], c.HQ],
          [grads[1], c.HKV],
          [grads[2], c.HKV],
        ] as const) {
          const row = Array.from(arr?.subarray((b * c.T + i) * heads * c.D, (b * c.T + i + 1) * heads * c.D) ?? []);
          expect(row).toHaveLength(heads * c.D);
          if (!live) {
            expect(row.every((x) => x === 0)).toBe(true);
            padded += 1;
          } else if (arr === o) expect(row.some((x) => x !== 0)).toBe(true);
        }
      }
    expect(padded).toBe(4 * 6);
    for (const t of [tq, tk, tv, out, tg, ...owned]) t.dispose();
  });

  it('computes gradients only for the inputs that require them, and frees what it allocates', async () => {
    const c: Case = { ...gqa, T: 17, D: 8, mask: paddingMask(17, 1, 3) };
    const { q, k, v } = inputs(c, 31);
    const { opts, owned } = options(rt, c);
    await rt.sync();
    const before = rt.memoryStats().liveBytes;
    const tq = fromArray(rt, q, [c.B, c.T, c.HQ, c.D]);
    const tk = fromArray(rt, k, [c.B, c.T, c.HKV, c.D], 'f32', { requiresGrad: true });
    const tv = fromArray(rt, v, [c.B, c.T, c.HKV, c.D]);
    tidy(() => {
      const out = attention(tq, tk, tv, opts);
      backward(out, fromArray(rt, new Float32Array(out.numel).fill(0.5), out.shape));
    });
    expect(tq.grad).toBeNull();
    expect(tv.grad).toBeNull();
    const dk = tk.grad;
    if (!dk) throw new Error('no dk');
    const want = attentionBackwardRef(refConfig(c), q, k, v, new Float32Array(c.B * c.T * c.HQ * c.D).fill(0.5));
    assertClose(await dk.toArray(), want.dk, gradTol(c, c.T * 2, want.dk), 'dk only');
    for (const t of [tq, tk, tv]) t.dispose();
    await rt.sync();
    expect(rt.memoryStats().liveBytes).toBe(before);
    for (const t of owned) t.dispose();
  });

  it('names the op and the shapes on bad shapes, dtypes and options', () => {
    const t = (shape: number[], dtype: 'f32' | 'i32' = 'f32') => fromArray(rt, new Array<number>(shape.reduce((a, b) => a * b, 1)).fill(0), shape, dtype);
    const q = t([2, 5, 4, 8]);
    const k = t([2, 5, 2, 8]);
    const v = t([2, 5, 2, 8]);
    expect(() => attention(q, t([2, 5, 2, 6]), v)).toThrow(ShapeMismatchError);
    expect(() => attention(q, t([2, 5, 2, 6]), v)).toThrow(/attention: .*\[2, 5, 2, 6\].*q \[2, 5, 4, 8\]/);
    expect(() => attention(q, k, t([2, 5, 2, 7]))).toThrow(/attention: .*\[2, 5, 2, 8\].*\[2, 5, 2, 7\]/);
    expect(() => attention(q, t([2, 5, 3, 8]), t([2, 5, 3, 8]))).toThrow(/attention: .*Hq=4, Hkv=3.*q \[2, 5, 4, 8\]/);
    expect(() => attention(q, t([2, 6, 2, 8]), t([2, 6, 2, 8]))).toThrow(/attention: .*\[2, 6, 2, 8\]/);
    expect(() => attention(t([2, 5, 32]), k, v)).toThrow(/attention: .*q as \[B, T, H, D\].*\[2, 5, 32\]/);
    expect(() => attention(q, k, v, { attentionMask: t([2, 4], 'i32') })).toThrow(/attention: .*\[2, 5\].*\[2, 4\]/);
    expect(() => attention(q, k, v, { attentionMask: t([2, 5]) })).toThrow(DTypeError);
    expect(() => attention(q, k, v, { segmentIds: t([5, 2], 'i32') })).toThrow(/attention: .*\[2, 5\].*\[5, 2\]/);
    expect(() => attention(q, k, v, { slidingWindow: 0 })).toThrow(UnsupportedError);
    expect(() => attention(q, k, v, { slidingWindow: 3, causal: false })).toThrow(/attention: unsupported slidingWindow with causal: false/);
  });

  afterAll(() => {
    rt.trimPool();
  });
});
