// rotary against the float64 reference (partial rotary 4 of 6, non-contiguous and per-batch
// position ids, both layouts, 16-bit input) and its gradient against finite differences.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, ShapeMismatchError } from '@peft-ts/errors';
import { fromArray, ropeTable, ropeTableHost, rotary, type Runtime } from '../../../index.js';
import { assertClose, gradCheck, randn, testRuntime, TOL } from '../../../testing/index.js';
import { rotaryRef } from './rotary.ref.js';

describe('rotary', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  // Packed / left-padded style ids: repeated, out of order, not starting at 0.
  const positions = [7, 3, 0, 11, 12, 1, 1, 0, 1, 2];
  const options = { dim: 4, theta: 10000, maxPositions: 16 };

  for (const layout of ['bthd', 'bhtd'] as const) {
    it(`matches the reference with partial rotary 4 of 6 (${layout})`, async () => {
      const shape = layout === 'bthd' ? ([2, 5, 3, 6] as const) : ([2, 3, 5, 6] as const);
      const x = randn(2 * 5 * 3 * 6, 300);
      const host = ropeTableHost(options);
      const table = ropeTable(rt, options);
      const tx = fromArray(rt, x, shape);
      const [B, d1, d2] = shape;
      const T = layout === 'bthd' ? d1 : d2;
      expect(B * T).toBe(positions.length);
      const tp = fromArray(rt, positions, [B, T], 'i32');
      const y = rotary(tx, tp, table, { layout });
      expect(y.shape).toEqual(shape);
      assertClose(await y.toArray(), rotaryRef(x, shape, layout, positions, host.cos, host.sin, 4), TOL.f32, `rotary ${layout}`);
      for (const t of [tx, tp, y, table.cos, table.sin]) t.dispose();
    });
  }

  it('broadcasts [T] and [1, T] position ids over the batch, and rotates full heads', async () => {
    const shape = [3, 4, 2, 8] as const;
    const x = randn(3 * 4 * 2 * 8, 301);
    const opts = { dim: 8, theta: 500000, maxPositions: 9 };
    const host = ropeTableHost(opts);
    const table = ropeTable(rt, opts);
    const pos = [8, 2, 5, 0];
    const tx = fromArray(rt, x, shape);
    for (const posShape of [[4], [1, 4]]) {
      const tp = fromArray(rt, pos, posShape, 'i32');
      assertClose(await rotary(tx, tp, table).toArray(), rotaryRef(x, shape, 'bthd', pos, host.cos, host.sin, 8), TOL.f32, `positions [${posShape.join(', ')}]`);
    }
  });

  it('reads f16 and bf16 x', async () => {
    const shape = [1, 5, 3, 6] as const;
    const x = randn(90, 302);
    const host = ropeTableHost(options);
    const table = ropeTable(rt, options);
    const tp = fromArray(rt, positions.slice(0, 5), [1, 5], 'i32');
    for (const dtype of ['f16', 'bf16'] as const) {
      const tx = fromArray(rt, x, shape, dtype);
      const expected = rotaryRef(await tx.toArray(), shape, 'bthd', positions.slice(0, 5), host.cos, host.sin, 4);
      assertClose(await rotary(tx, tp, table).toArray(), expected, TOL.f32, `rotary ${dtype}`);
    }
  });

  it('applies the yarn attention scaling carried by the table', async () => {
    const opts = { dim: 6, theta: 10000, maxPositions: 40, scaling: { type: 'yarn' as const, factor: 4, originalMaxPositionEmbeddings: 10 } };
    const host = ropeTableHost(opts);
    expect(host.attentionScaling).toBeCloseTo(0.1 * Math.log(4) + 1, 12);
    const table = ropeTable(rt, opts);
    const shape = [1, 3, 2, 6] as const;
    const x = randn(36, 303);
    const pos = [39, 20, 0];
    const out = rotary(fromArray(rt, x, shape), fromArray(rt, pos, [3], 'i32'), table);
    assertClose(await out.toArray(), rotaryRef(x, shape, 'bthd', pos, host.cos, host.sin, 6), TOL.f32, 'rotary yarn');
  });

  it('writes NaN for position ids outside the table instead of reading past it', async () => {
    const table = ropeTable(rt, options);
    const out = await rotary(fromArray(rt, randn(12, 304), [1, 2, 1, 6]), fromArray(rt, [16, -1], [1, 2], 'i32'), table).toArray();
    // Rotated dims are NaN; the pass-through dims keep x.
    for (const i of [0, 1, 2, 3, 6, 7, 8, 9]) expect(Number.isNaN(out[i])).toBe(true);
    for (const i of [4, 5, 10, 11]) expect(Number.isNaN(out[i])).toBe(false);
  });

  for (const layout of ['bthd', 'bhtd'] as const) {
    it(`backward matches finite differences (${layout})`, async () => {
      const shape = layout === 'bthd' ? ([2, 5, 3, 6] as const) : ([2, 3, 5, 6] as const);
      const host = ropeTableHost(options);
      const table = ropeTable(rt, options);
      const [B, d1, d2] = shape;
      const T = layout === 'bthd' ? d1 : d2;
      const tp = fromArray(rt, positions, [B, T], 'i32');
      const r = await gradCheck(
        rt,
        (a) => rotary(a, tp, table, { layout }),
        ([a]) => rotaryRef(a ?? [], shape, layout, positions, host.cos, host.sin, 4),
        [{ data: randn(180, 305), shape }],
      );
      assertClose(r.output, r.expectedOutput, TOL.f32, 'output');
      assertClose(r.grads[0] ?? [], r.expectedGrads[0] ?? [], TOL.grad, 'grad x');
    });
  }

  it('names the op and the shapes on bad arguments', () => {
    const table = ropeTable(rt, options);
    const x = fromArray(rt, new Float32Array(2 * 5 * 3 * 6), [2, 5, 3, 6]);
    const badPos = fromArray(rt, new Int32Array(8), [2, 4], 'i32');
    expect(() => rotary(x, badPos, table)).toThrow(ShapeMismatchError);
    expect(() => rotary(x, badPos, table)).toThrow(/rotary: .*\[2, 5\].*\[2, 5, 3, 6\].*\[2, 4\]/);
    const narrowHeads = fromArray(rt, new Float32Array(2 * 5 * 3 * 2), [2, 5, 3, 2]);
    const pos = fromArray(rt, new Int32Array(10), [2, 5], 'i32');
    expect(() => rotary(narrowHeads, pos, table)).toThrow(/rotary: .*\[16, 4\]/);
    expect(() => rotary(x, fromArray(rt, new Float32Array(10), [2, 5]), table)).toThrow(DTypeError);
    expect(() => rotary(fromArray(rt, new Float32Array(6), [1, 6]), pos, table)).toThrow(/rotary: .*\[B, T, H, D\].*\[1, 6\]/);
  });
});
