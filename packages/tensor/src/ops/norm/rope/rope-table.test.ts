// ropeTable: inverse frequencies of every scaling type against float64 formulas, cos/sin tables
// against float64 trigonometry, the uploaded tensors against the host tables, and bad configs.
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { ropeFrequencies, ropeTable, ropeTableHost, type RopeOptions, type RopeScaling, type Runtime } from '../../../index.js';
import { assertClose, testRuntime } from '../../../testing/index.js';
import { invFreqRef } from './rope-table.ref.js';

// Float32 inverse frequencies carry a handful of roundings (pow, reciprocal, the blends): a few
// float32 ulps relative.
const FREQ_TOL = { atol: 0, rtol: 2e-6 };

const cases: [string, RopeOptions][] = [
  ['default', { dim: 6, theta: 10000, maxPositions: 50 }],
  ['default, head dim 128, theta 1e6', { dim: 128, theta: 1e6, maxPositions: 300 }],
  ['linear', { dim: 8, theta: 10000, maxPositions: 64, scaling: { type: 'linear', factor: 2.5 } }],
  ['dynamic within the trained length', { dim: 8, theta: 10000, maxPositions: 16, scaling: { type: 'dynamic', factor: 2, maxPositionEmbeddings: 32 } }],
  ['dynamic beyond the trained length', { dim: 8, theta: 10000, maxPositions: 80, scaling: { type: 'dynamic', factor: 2, maxPositionEmbeddings: 32 } }],
  [
    'llama3 (all three frequency bands)',
    { dim: 64, theta: 500000, maxPositions: 200, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } },
  ],
  ['yarn', { dim: 64, theta: 10000, maxPositions: 100, scaling: { type: 'yarn', factor: 4, originalMaxPositionEmbeddings: 2048 } }],
  [
    'yarn without truncation, mscale ratio, factor from lengths',
    {
      dim: 32,
      theta: 10000,
      maxPositions: 100,
      scaling: { type: 'yarn', originalMaxPositionEmbeddings: 512, maxPositionEmbeddings: 4096, truncate: false, mscale: 0.707, mscaleAllDim: 1, betaFast: 16, betaSlow: 2 },
    },
  ],
  [
    'longrope, short factors',
    { dim: 6, theta: 10000, maxPositions: 20, scaling: { type: 'longrope', shortFactor: [1, 1.5, 2], longFactor: [2, 3, 5], originalMaxPositionEmbeddings: 32, maxPositionEmbeddings: 128 } },
  ],
  [
    'longrope, long factors',
    { dim: 6, theta: 10000, maxPositions: 40, scaling: { type: 'longrope', shortFactor: [1, 1.5, 2], longFactor: [2, 3, 5], originalMaxPositionEmbeddings: 32, maxPositionEmbeddings: 128 } },
  ],
];

describe('ropeTable', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  for (const [label, options] of cases) {
    it(`inverse frequencies and tables match float64 formulas: ${label}`, () => {
      const ref = invFreqRef(options);
      const got = ropeTableHost(options);
      assertClose(got.invFreq, ref.invFreq, FREQ_TOL, `${label} invFreq`);
      expect(got.attentionScaling).toBeCloseTo(ref.attention, 12);
      const dim = options.dim;
      const half = dim / 2;
      const expectCos = new Float64Array(options.maxPositions * dim);
      const expectSin = new Float64Array(options.maxPositions * dim);
      let maxAngle = 0;
      for (let p = 0; p < options.maxPositions; p++) {
        for (let d = 0; d < dim; d++) {
          const angle = p * (ref.invFreq[d % half] ?? 0);
          maxAngle = Math.max(maxAngle, Math.abs(angle));
          expectCos[p * dim + d] = Math.cos(angle) * ref.attention;
          expectSin[p * dim + d] = Math.sin(angle) * ref.attention;
        }
      }
      // The angle is position * invFreq rounded to float32, so its error grows with the angle.
      const tol = { atol: maxAngle * 2 ** -21 + 2 ** -22, rtol: 0 };
      assertClose(got.cos, expectCos, tol, `${label} cos`);
      assertClose(got.sin, expectSin, tol, `${label} sin`);
    });
  }

  it('exercises every llama3 band and the yarn ramp in the cases above', () => {
    const llama = cases[5]?.[1];
    const yarn = cases[6]?.[1];
    if (!llama || !yarn) throw new Error('missing case');
    const plain = ropeFrequencies({ ...llama, scaling: { type: 'default' } }).invFreq;
    const scaled = ropeFrequencies(llama).invFreq;
    const ratios = Array.from(scaled, (v, k) => (plain[k] ?? 0) / v);
    expect(ratios.some((r) => r === 1)).toBe(true);
    expect(ratios.some((r) => Math.abs(r - 8) < 1e-5)).toBe(true);
    expect(ratios.some((r) => r > 1.001 && r < 7.999)).toBe(true);
    const yp = ropeFrequencies({ ...yarn, scaling: { type: 'default' } }).invFreq;
    const ys = ropeFrequencies(yarn).invFreq;
    const yr = Array.from(ys, (v, k) => (yp[k] ?? 0) / v);
    expect(yr[0]).toBeCloseTo(1, 6);
    expect(yr[yr.length - 1]).toBeCloseTo(4, 5);
    expect(yr.some((r) => r > 1.01 && r < 3.99)).toBe(true);
  });

  it('uploads exactly the host tables', async () => {
    const options = cases[6]?.[1] ?? { dim: 2, theta: 1, maxPositions: 1 };
    const host = ropeTableHost(options);
    const table = ropeTable(rt, options);
    expect(table.cos.shape).toEqual([options.maxPositions, options.dim]);
    expect(Array.from(await table.cos.toArray())).toEqual(Array.from(host.cos));
    expect(Array.from(await table.sin.toArray())).toEqual(Array.from(host.sin));
    expect(table.attentionScaling).toBe(host.attentionScaling);
  });

  it('rejects odd dims, wrong factor list lengths and unknown types', () => {
    expect(() => ropeTableHost({ dim: 5, theta: 10000, maxPositions: 4 })).toThrow(ShapeMismatchError);
    expect(() =>
      ropeTableHost({ dim: 6, theta: 10000, maxPositions: 4, scaling: { type: 'longrope', shortFactor: [1, 1], longFactor: [1, 1, 1], originalMaxPositionEmbeddings: 4, factor: 2 } }),
    ).toThrow(/ropeTable: .*shortFactor with 3 entries.*got 2/);
    expect(() => ropeTableHost({ dim: 6, theta: 10000, maxPositions: 4, scaling: { type: 'ntk-by-parts' } as unknown as RopeScaling })).toThrow(UnsupportedError);
    expect(() => ropeTableHost({ dim: 6, theta: -1, maxPositions: 4 })).toThrow(UnsupportedError);
    expect(() => ropeTableHost({ dim: 6, theta: 10000, maxPositions: 4, scaling: { type: 'yarn', originalMaxPositionEmbeddings: 8 } })).toThrow(/yarn scaling without factor/);
  });
});
