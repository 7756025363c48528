// matmul and linear against the float64 reference: odd shapes for every transpose combination
// and kernel path, batch broadcasting, bias, f16/bf16 storage, binding-size splitting, gradients
// against finite differences, shape errors; and the subgroup-matrix WGSL through Dawn's validator.
import { beforeAll, describe, expect, it } from 'vitest';
import { create } from 'webgpu';
import { DTypeError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { backward, fromArray, linear, matmul, matmulKernels, type MatmulKernel, type Runtime } from '../../index.js';
import { assertClose, gradCheck, randn, testRuntime, TOL, type Tolerance } from '../../testing/index.js';
import { subgroupGemmSpec, subgroupTileFor, tiledGemmSpec, TILE_LARGE, TILE_SMALL, type GemmVariant, type SubgroupMatrixShape } from './matmul.kernel.js';
import { matmulRef, type MatmulRefOptions } from './matmul.ref.js';

type Path = Exclude<MatmulKernel, 'auto'>;

/**
 * f32 tolerance of a K-term dot product: each output carries the rounding of K fused
 * multiply-adds, whose error grows like sqrt(K) * 2^-24 * sum_k |a_k * b_k| (random signs); 8x
 * that bound covers the worst element of the sizes used here. `magnitude` is the largest
 * sum_k |a_k * b_k| over the outputs, from the reference run on |a| and |b|.
 */
function f32Tolerance(K: number, magnitude: number): Tolerance {
  return { atol: TOL.f32.atol + 8 * Math.sqrt(Math.max(1, K)) * 2 ** -24 * magnitude, rtol: TOL.f32.rtol };
}

function magnitude(a: ArrayLike<number>, sa: number[], b: ArrayLike<number>, sb: number[], o: MatmulRefOptions): number {
  const abs = (x: ArrayLike<number>) => Float64Array.from(x, Math.abs);
  const r = matmulRef(abs(a), sa, abs(b), sb, { ...o, ...(o.bias ? { bias: abs(o.bias) } : {}) });
  return r.data.reduce((m, v) => Math.max(m, v), 0);
}

const combos: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

/** [M, K, N]: size-1 dims, odd sizes off every tile, a long reduction, and one vector-aligned case. */
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [7, 13, 5],
  [33, 65, 17],
  [9, 1000, 12],
  [20, 24, 36],
];

const opShape = (rows: number, cols: number, trans: boolean): number[] => (trans ? [cols, rows] : [rows, cols]);

describe('matmul', () => {
  let rt: Runtime;
  let paths: Path[];
  beforeAll(async () => {
    rt = await testRuntime();
    // Subgroup matrices compute in f16; they are checked against the tiled kernel in matmul.gpu.test.ts.
    paths = matmulKernels(rt).filter((p) => p !== 'subgroup-matrix');
  });

  async function run(a: Float32Array, sa: number[], b: Float32Array, sb: number[], o: MatmulRefOptions & { kernel?: MatmulKernel; tile?: 64 | 128 }, label: string) {
    const ta = fromArray(rt, a, sa);
    const tb = fromArray(rt, b, sb);
    const bias = o.bias ? fromArray(rt, o.bias, [o.bias.length]) : null;
    const out = matmul(ta, tb, { transA: o.transA ?? false, transB: o.transB ?? false, bias, kernel: o.kernel ?? 'auto', tile: o.tile ?? 'auto' });
    const ref = matmulRef(a, sa, b, sb, o);
    expect(out.shape, label).toEqual(ref.shape);
    const K = o.transA ? (sa[sa.length - 2] ?? 1) : (sa[sa.length - 1] ?? 1);
    assertClose(await out.toArray(), ref.data, f32Tolerance(K, magnitude(a, sa, b, sb, o)), label);
    for (const t of [ta, tb, bias, out]) t?.dispose();
  }

  for (const [ta, tb] of combos) {
    it(`transA ${ta}, transB ${tb}: every kernel path matches the reference on odd shapes`, async () => {
      expect(paths).toEqual(expect.arrayContaining(['naive', 'tiled']));
      for (const kernel of paths) {
        for (const [M, K, N] of shapes) {
          const a = randn(M * K, M + K);
          const b = randn(K * N, K + N);
          await run(a, opShape(M, K, ta), b, opShape(K, N, tb), { transA: ta, transB: tb, kernel }, `${kernel} ${M}x${K}x${N} transA ${ta} transB ${tb}`);
        }
      }
    }, 600_000);
  }

  it('the 128x128 tile matches the reference across tile edges', async () => {
    const [M, K, N] = [130, 37, 133];
    await run(randn(M * K, 1), [M, K], randn(N * K, 2), [N, K], { transB: true, kernel: 'tiled', tile: 128 }, '128 tile');
  }, 600_000);

  it('broadcasts batch dims: per-batch, shared right operand, shared left operand, mixed', async () => {
    const cases: { sa: number[]; sb: number[]; transA?: boolean; transB?: boolean }[] = [
      { sa: [3, 5, 129], sb: [3, 129, 31] },
      { sa: [2, 1, 5, 7], sb: [3, 7, 4] },
      { sa: [4, 6, 9], sb: [9, 10] },
      { sa: [4, 6, 9], sb: [10, 9], transB: true },
      { sa: [6, 9], sb: [4, 9, 10] },
      { sa: [2, 3, 9, 6], sb: [3, 10, 9], transA: true, transB: true },
    ];
    for (const [i, c] of cases.entries()) {
      const na = c.sa.reduce((x, y) => x * y, 1);
      const nb = c.sb.reduce((x, y) => x * y, 1);
      for (const kernel of paths.filter((k) => k === 'naive' || k === 'tiled' || k === 'subgroup-broadcast')) {
        await run(randn(na, 10 + i), c.sa, randn(nb, 20 + i), c.sb, { transA: c.transA ?? false, transB: c.transB ?? false, kernel }, `${kernel} [${c.sa.join(', ')}] x [${c.sb.join(', ')}]`);
      }
    }
  }, 600_000);

  it('adds the bias to every row (matmul and linear)', async () => {
    const bias = randn(13, 3);
    for (const kernel of paths) await run(randn(7 * 17, 1), [7, 17], randn(17 * 13, 2), [17, 13], { bias, kernel }, `${kernel} bias`);
    const x = randn(2 * 3 * 17, 4);
    const w = randn(13 * 17, 5);
    const tx = fromArray(rt, x, [2, 3, 17]);
    const tw = fromArray(rt, w, [13, 17]);
    const tbias = fromArray(rt, bias, [13]);
    const y = linear(tx, tw, tbias);
    expect(y.shape).toEqual([2, 3, 13]);
    const ref = matmulRef(x, [2, 3, 17], w, [13, 17], { transB: true, bias });
    assertClose(await y.toArray(), ref.data, f32Tolerance(17, magnitude(x, [2, 3, 17], w, [13, 17], { transB: true, bias })), 'linear bias');
  });

  it('treats 1-D operands as a row and a column vector', async () => {
    await run(randn(11, 1), [11], randn(11 * 6, 2), [11, 6], {}, 'vector x matrix');
    await run(randn(4 * 11, 3), [4, 11], randn(11, 4), [11], {}, 'matrix x vector');
    await run(randn(11, 5), [11], randn(11, 6), [11], {}, 'dot');
  });

  it('K = 0 yields the bias (or zeros)', async () => {
    const out = matmul(fromArray(rt, [], [3, 0]), fromArray(rt, [], [0, 2]), { bias: fromArray(rt, [1.5, -2], [2]) });
    expect(Array.from(await out.toArray())).toEqual([1.5, -2, 1.5, -2, 1.5, -2]);
  });

  describe('16-bit storage', () => {
    /** f16/bf16 results are compared against float64 on the rounded inputs: rtol 2e-3 as the op tests state for f16. */
    it('reads f16 and bf16 weights on every path (linear, widened in the shader)', async () => {
      const [M, K, N] = [19, 40, 33];
      const x = randn(M * K, 1);
      const w = randn(N * K, 2, 0.5);
      const tx = fromArray(rt, x, [M, K]);
      for (const dtype of ['f16', 'bf16'] as const) {
        const tw = fromArray(rt, w, [N, K], dtype);
        const rounded = await tw.toArray();
        const ref = matmulRef(x, [M, K], rounded, [N, K], { transB: true });
        for (const kernel of paths) {
          const y = linear(tx, tw, null, { kernel });
          assertClose(await y.toArray(), ref.data, TOL.f16, `${kernel} ${dtype} weight`);
          y.dispose();
        }
      }
    }, 600_000);

    it('reads odd-sized f16 operands element by element and writes f16 output', async () => {
      const [M, K, N] = [7, 13, 9];
      const ta = fromArray(rt, randn(M * K, 3), [M, K], 'f16');
      const tb = fromArray(rt, randn(K * N, 4), [K, N], 'f16');
      const ha = await ta.toArray();
      const hb = await tb.toArray();
      const ref = matmulRef(ha, [M, K], hb, [K, N]);
      for (const kernel of paths) {
        const y = matmul(ta, tb, { kernel });
        assertClose(await y.toArray(), ref.data, TOL.f16, `${kernel} f16 x f16`);
        if (rt.has('shader-f16')) {
          const y16 = matmul(ta, tb, { kernel, outDtype: 'f16' });
          expect(y16.dtype).toBe('f16');
          assertClose(await y16.toArray(), ref.data, TOL.f16, `${kernel} f16 out`);
        }
      }
    }, 600_000);

    it('reads vector-aligned f16 operands in every orientation', async () => {
      const [M, K, N] = [16, 24, 32];
      for (const [ta, tb] of [
        [false, false],
        [true, true],
      ] as const) {
        const sa = opShape(M, K, ta);
        const sb = opShape(K, N, tb);
        const a = fromArray(rt, randn(M * K, 11), sa, 'f16');
        const b = fromArray(rt, randn(K * N, 12), sb, 'f16');
        const ref = matmulRef(await a.toArray(), sa, await b.toArray(), sb, { transA: ta, transB: tb });
        for (const kernel of paths) {
          const y = matmul(a, b, { transA: ta, transB: tb, kernel });
          assertClose(await y.toArray(), ref.data, TOL.f16, `${kernel} f16 transA ${ta} transB ${tb}`);
        }
      }
    }, 600_000);

    it('every kernel path gives the same result on 16-bit weights', async () => {
      const [M, K, N] = [37, 64, 29];
      const x = randn(M * K, 5);
      const tx = fromArray(rt, x, [M, K]);
      const tw = fromArray(rt, randn(N * K, 6), [N, K], 'bf16');
      const mag = magnitude(x, [M, K], await tw.toArray(), [N, K], { transB: true });
      const results = await Promise.all(paths.map(async (kernel) => linear(tx, tw, null, { kernel }).toArray()));
      const first = results[0] ?? new Float32Array();
      // Same rounded inputs, f32 accumulation in a different order: round-off level differences only.
      results.forEach((r, i) => assertClose(r, first, f32Tolerance(K, mag), `${paths[i]} vs ${paths[0]}`));
    }, 600_000);
  });

  describe('operands past the binding size limit', () => {
    it('splits along M, N and K with the same result, forward and backward', async () => {
      const [M, K, N] = [37, 50, 45];
      const x = randn(M * K, 7);
      const w = randn(N * K, 8);
      const bias = randn(N, 9);
      const g = randn(M * N, 10);
      const results: Float32Array[][] = [];
      // 2048 bytes: x (7400 B), w (9000 B), y (6660 B) and every gradient are split.
      for (const maxBindingBytes of [undefined, 2048]) {
        const tx = fromArray(rt, x, [M, K], 'f32', { requiresGrad: true });
        const tw = fromArray(rt, w, [N, K], 'f32', { requiresGrad: true });
        const tb = fromArray(rt, bias, [N], 'f32', { requiresGrad: true });
        const y = linear(tx, tw, tb, maxBindingBytes === undefined ? {} : { maxBindingBytes });
        const ty = await y.toArray();
        backward(y, fromArray(rt, g, [M, N]));
        const grads = await Promise.all([tx, tw, tb].map(async (t) => (t.grad ? t.grad.toArray() : new Float32Array())));
        results.push([ty as Float32Array, ...(grads as Float32Array[])]);
      }
      const ref = matmulRef(x, [M, K], w, [N, K], { transB: true, bias });
      const [whole, split] = results;
      assertClose(split?.[0] ?? [], ref.data, f32Tolerance(K, magnitude(x, [M, K], w, [N, K], { transB: true, bias })), 'split forward');
      ['y', 'dx', 'dw', 'dbias'].forEach((name, i) => assertClose(split?.[i] ?? [], whole?.[i] ?? [], f32Tolerance(Math.max(M, N), 64), `split ${name}`));
      // dx = g @ w reads the untransposed weight: that product was split along K and summed.
      const dx = matmulRef(g, [M, N], w, [N, K]);
      assertClose(split?.[1] ?? [], dx.data, f32Tolerance(N, magnitude(g, [M, N], w, [N, K], {})), 'split dx');
    }, 600_000);

    it('refuses a batched product over the limit with a clear error', () => {
      const a = fromArray(rt, randn(2 * 30 * 30, 1), [2, 30, 30]);
      const b = fromArray(rt, randn(2 * 30 * 30, 2), [2, 30, 30]);
      expect(() => matmul(a, b, { maxBindingBytes: 4096 })).toThrow(UnsupportedError);
      expect(() => matmul(a, b, { maxBindingBytes: 4096 })).toThrow(/matmul: unsupported batched matmul with an operand over the binding size limit/);
    });
  });

  describe('backward', () => {
    for (const [ta, tb] of combos) {
      it(`transA ${ta}, transB ${tb}: gradients match finite differences`, async () => {
        const [M, K, N] = [3, 5, 4];
        const sa = opShape(M, K, ta);
        const sb = opShape(K, N, tb);
        const r = await gradCheck(rt, (x, y) => matmul(x, y, { transA: ta, transB: tb }), ([x, y]) => matmulRef(x ?? [], sa, y ?? [], sb, { transA: ta, transB: tb }).data, [
          { data: randn(M * K, 1), shape: sa },
          { data: randn(K * N, 2), shape: sb },
        ]);
        assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad a');
        assertClose(r.grads[1] ?? [], r.expectedGrads[1] ?? [], TOL.grad, 'grad b');
      });
    }

    it('sums gradients over broadcast batch dims', async () => {
      const cases: { sa: number[]; sb: number[]; transA?: boolean; transB?: boolean }[] = [
        { sa: [2, 1, 3, 4], sb: [3, 4, 5] },
        { sa: [2, 3, 4], sb: [4, 5] },
        { sa: [2, 3, 4], sb: [5, 4], transB: true },
        { sa: [3, 4], sb: [2, 4, 5] },
        { sa: [2, 4, 3], sb: [4, 5], transA: true },
      ];
      for (const c of cases) {
        const na = c.sa.reduce((x, y) => x * y, 1);
        const nb = c.sb.reduce((x, y) => x * y, 1);
        const o = { transA: c.transA ?? false, transB: c.transB ?? false };
        const r = await gradCheck(rt, (x, y) => matmul(x, y, o), ([x, y]) => matmulRef(x ?? [], c.sa, y ?? [], c.sb, o).data, [
          { data: randn(na, 3), shape: c.sa },
          { data: randn(nb, 4), shape: c.sb },
        ]);
        assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, `grad a [${c.sa.join(', ')}] x [${c.sb.join(', ')}]`);
        assertClose(r.grads[1] ?? [], r.expectedGrads[1] ?? [], TOL.grad, `grad b [${c.sa.join(', ')}] x [${c.sb.join(', ')}]`);
      }
    });

    it('linear: gradients for x and bias reach through a frozen weight, which gets none', async () => {
      const sx = [2, 3, 5];
      const sw = [4, 5];
      const r = await gradCheck(
        rt,
        (x, w, b) => linear(x, w, b),
        ([x, w, b]) => matmulRef(x ?? [], sx, w ?? [], sw, { transB: true, bias: b ?? [] }).data,
        [
          { data: randn(30, 5), shape: sx },
          { data: randn(20, 6), shape: sw, requiresGrad: false },
          { data: randn(4, 7), shape: [4] },
        ],
      );
      assertClose(r.output, r.expectedOutput, f32Tolerance(5, 20), 'output');
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad x');
      expect(r.grads[1]).toBeNull();
      assertClose(r.grads[2] ?? [], r.expectedGrads[2] ?? [], TOL.grad, 'grad bias');
    });

    it('gives 1-D operands gradients of their own shape', async () => {
      const r = await gradCheck(rt, (x, y) => matmul(x, y), ([x, y]) => matmulRef(x ?? [], [4], y ?? [], [2, 4, 3]).data, [
        { data: randn(4, 8), shape: [4] },
        { data: randn(24, 9), shape: [2, 4, 3] },
      ]);
      expect(r.grads[0]?.length).toBe(4);
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad vector');
      assertClose(r.grads[1] ?? [], r.expectedGrads[1] ?? [], TOL.grad, 'grad matrix');
    });
  });

  describe('errors', () => {
    it('names the op and both shapes on a shape mismatch', () => {
      const a = fromArray(rt, new Float32Array(6), [2, 3]);
      const b = fromArray(rt, new Float32Array(20), [4, 5]);
      expect(() => matmul(a, b)).toThrow(ShapeMismatchError);
      expect(() => matmul(a, b)).toThrow(/matmul: .*\[2, 3\].*\[4, 5\]/);
      const c = fromArray(rt, new Float32Array(2 * 3 * 4), [2, 3, 4]);
      const d = fromArray(rt, new Float32Array(3 * 4 * 5), [3, 4, 5]);
      expect(() => matmul(c, d)).toThrow(/matmul: .*\[2, 3, 4\].*\[3, 4, 5\].*batch dim 0: 2 vs 3/);
      const w = fromArray(rt, new Float32Array(20), [4, 5]);
      expect(() => linear(a, w)).toThrow(/linear: .*\[4, 5\].*\[2, 3\]/);
      expect(() => matmul(a, fromArray(rt, new Float32Array(12), [3, 4]), { bias: fromArray(rt, new Float32Array(3), [3]) })).toThrow(/matmul: .*bias \[4\].*bias \[3\]/);
    });

    it('refuses a kernel path the device does not have', () => {
      const a = fromArray(rt, randn(6, 1), [2, 3]);
      const b = fromArray(rt, randn(12, 2), [3, 4]);
      const missing = (['naive', 'tiled', 'tiled-f16', 'subgroup-matrix', 'tensor-cores'] as MatmulKernel[]).filter((k) => !(matmulKernels(rt) as MatmulKernel[]).includes(k));
      expect(missing).toContain('tensor-cores');
      for (const kernel of missing) expect(() => matmul(a, b, { kernel })).toThrow(/matmul: unsupported matmul kernel on this device/);
    });

    it('rejects integer operands with a dtype error', () => {
      const a = fromArray(rt, [1, 2], [1, 2], 'i32');
      const b = fromArray(rt, [1, 2], [2, 1]);
      expect(() => matmul(a, b)).toThrow(DTypeError);
      expect(() => matmul(a, b)).toThrow(/matmul: expected dtype f32 \| f16 \| bf16, got i32, f32/);
    });
  });
});

describe('kernel WGSL for GPUs', () => {
  it('the tiled kernel with the constant trip count GPUs get passes shader validation', async () => {
    // On a software adapter the op bounds the inner loop by the tile's depth instead; the two
    // differ only in that bound, so the GPU form is checked here by the validator.
    const rt = await testRuntime();
    for (const tile of [TILE_SMALL, TILE_LARGE]) {
      for (const [ta, tb] of combos) {
        const v: GemmVariant = {
          a: { dtype: 'f32', trans: ta, vec: tb },
          b: { dtype: 'bf16', trans: tb, vec: ta },
          bias: 'f16',
          out: 'f32',
          outVec: ta,
          f16: true,
          accumulate: tb,
        };
        const spec = tiledGemmSpec(v, tile, true);
        expect(spec.wgsl).toContain(`k < ${tile.bk}u;`);
        const info = await rt.device.createShaderModule({ code: spec.wgsl }).getCompilationInfo();
        expect(info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`), spec.variant).toEqual([]);
      }
    }
  });
});

describe('subgroup-matrix kernel WGSL', () => {
  /**
   * lavapipe has no subgroup matrices, so the kernel cannot run here (matmul.gpu.test.ts runs it).
   * Dawn's null backend exposes the feature, so its shader validator still checks every layout.
   */
  it('passes shader-module validation for every operand layout and dtype', async () => {
    await testRuntime();
    const gpu = create(['backend=null', 'enable-dawn-features=allow_unsafe_apis']);
    const adapter = await gpu.requestAdapter();
    expect(adapter?.features.has('chromium-experimental-subgroup-matrix')).toBe(true);
    const device = await adapter?.requestDevice({ requiredFeatures: ['chromium-experimental-subgroup-matrix', 'shader-f16', 'subgroups'] as GPUFeatureName[] });
    if (!device) throw new Error('null-backend device');
    const shapes: SubgroupMatrixShape[] = [
      { m: 16, n: 16, k: 16, component: 'f16' },
      { m: 8, n: 8, k: 8, component: 'f32' },
    ];
    let checked = 0;
    for (const shape of shapes) {
      for (const [ta, tb] of combos) {
        for (const [dtype, vec] of [
          ['f16', true],
          ['f32', true],
          ['bf16', false],
          ['f32', false],
        ] as const) {
          const v: GemmVariant = {
            a: { dtype, trans: ta, vec },
            b: { dtype: vec ? 'f16' : dtype, trans: tb, vec },
            bias: vec ? 'f32' : 'bf16',
            out: vec ? 'f32' : 'f16',
            outVec: false,
            f16: true,
            accumulate: !vec,
          };
          const spec = subgroupGemmSpec(v, shape, subgroupTileFor(shape, 32));
          const module = device.createShaderModule({ code: spec.wgsl });
          const info = await module.getCompilationInfo();
          // Warnings count too: a deprecated builtin form would be one.
          const messages = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
          expect(messages, `${spec.name}:${spec.variant}`).toEqual([]);
          checked += 1;
        }
      }
    }
    expect(checked).toBe(32);
    device.destroy();
  }, 120_000);
});
