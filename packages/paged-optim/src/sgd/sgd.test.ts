// SGD against a TypeScript reference of torch.optim.SGD over 20 steps: plain, momentum with
// dampening, Nesterov with weight decay, and groups with and without a momentum buffer.
//
// As for AdamW, the reference rounds every operation to f32 in PyTorch's order, where add with
// alpha is a fused multiply-add. Against the reference with the device's fma: rtol 1e-6, atol
// 1e-9; against PyTorch's fused arithmetic: rtol 1e-6, atol 1e-6 * max|ref| (an unfused fma
// differs by an ulp of its operands, large relative to results near zero).
import { beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError } from '@peft-ts/errors';
import type { Runtime, Tensor } from '@peft-ts/tensor';
import { assertClose, randn, testRuntime } from '@peft-ts/tensor/testing';
import { SGD } from '../index.js';
import { deviceFusesFma, gradFor, maxAbs, param, setGrad } from '../test-support/fixtures.js';
import { sgdRefStep, type SGDRefHyper, type SGDRefState } from './sgd.ref.js';

const TOL = { atol: 1e-9, rtol: 1e-6 };

describe('SGD', () => {
  let rt: Runtime;
  let fused: boolean;
  beforeAll(async () => {
    rt = await testRuntime();
    fused = await deviceFusesFma(rt);
  });

  /** Runs 20 steps of `opt` and the references, then compares parameters and momentum buffers. */
  async function run(opt: SGD, ps: readonly Tensor[], hypers: readonly SGDRefHyper[], label: string): Promise<void> {
    const init = await Promise.all(ps.map(async (p) => (await p.toArray()) as Float32Array));
    const torch: SGDRefState[] = init.map((x) => ({ p: Float32Array.from(x), buf: null }));
    const device: SGDRefState[] = init.map((x) => ({ p: Float32Array.from(x), buf: null }));
    for (let step = 0; step < 20; step++) {
      ps.forEach((p, i) => {
        const g = gradFor(p.numel, i, step);
        setGrad(p, g);
        const h = hypers[i];
        const t = torch[i];
        const d = device[i];
        if (!h || !t || !d) return;
        sgdRefStep(t, g, h, true);
        sgdRefStep(d, g, h, fused);
      });
      await opt.step();
    }
    for (const [i, p] of ps.entries()) {
      const got = (await p.toArray()) as Float32Array;
      const t = torch[i];
      const d = device[i];
      if (!t || !d) continue;
      assertClose(got, d.p, TOL, `${label} param ${i} (device fma)`);
      assertClose(got, t.p, { atol: 1e-6 * maxAbs(t.p), rtol: 1e-6 }, `${label} param ${i} (PyTorch)`);
      const st = await opt.readState(p);
      if (t.buf && d.buf) {
        const buf = st.momentum_buffer;
        if (!buf) throw new Error(`${label}: no momentum buffer for parameter ${i}`);
        assertClose(buf, d.buf, TOL, `${label} momentum ${i} (device fma)`);
        assertClose(buf, t.buf, { atol: 1e-6 * maxAbs(t.buf), rtol: 1e-6 }, `${label} momentum ${i} (PyTorch)`);
      } else {
        expect(st.momentum_buffer).toBeUndefined();
      }
    }
  }

  it('plain SGD with weight decay', async () => {
    const ps = [param(rt, randn(37, 1), [37]), param(rt, randn(600, 2), [20, 30])];
    const h: SGDRefHyper = { lr: 0.05, momentum: 0, dampening: 0, weightDecay: 0.01, nesterov: false };
    const opt = new SGD(ps, { lr: h.lr, weightDecay: h.weightDecay });
    await run(opt, ps, [h, h], 'plain');
    opt.dispose();
  });

  it('momentum with dampening (the buffer starts as the first gradient)', async () => {
    const ps = [param(rt, randn(257, 3), [257]), param(rt, randn(1, 4), [1])];
    const h: SGDRefHyper = { lr: 0.02, momentum: 0.9, dampening: 0.25, weightDecay: 0, nesterov: false };
    const opt = new SGD(ps, { lr: h.lr, momentum: h.momentum, dampening: h.dampening });
    await run(opt, ps, [h, h], 'momentum');
    opt.dispose();
  });

  it('Nesterov with weight decay, next to a group without momentum', async () => {
    const a = param(rt, randn(1000, 5), [10, 100]);
    const b = param(rt, randn(77, 6), [7, 11]);
    const c = param(rt, randn(300, 7), [300]);
    const nest: SGDRefHyper = { lr: 0.01, momentum: 0.8, dampening: 0, weightDecay: 0.05, nesterov: true };
    const plain: SGDRefHyper = { lr: 0.03, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false };
    const opt = new SGD(
      [
        { params: [a, c], momentum: nest.momentum, nesterov: true, weightDecay: nest.weightDecay },
        { params: [b], lr: plain.lr },
      ],
      { lr: nest.lr },
    );
    await run(opt, [a, b, c], [nest, plain, nest], 'nesterov');
    // Only the momentum group keeps state.
    const bytes = opt.stateBytes();
    expect(bytes.resident).toBe((1024 + 512) * 4);
    opt.dispose();
  });

  it('refuses momentum added after the first step to a group that keeps no buffer, without counting the step', async () => {
    const p = param(rt, randn(10, 1), [10]);
    const opt = new SGD([p], { lr: 0.1 });
    setGrad(p, gradFor(10, 0, 0));
    await opt.step();
    const group = opt.paramGroups[0];
    if (group) group.momentum = 0.9;
    await expect(opt.step()).rejects.toThrow(UnsupportedError);
    expect(opt.stepCount(p)).toBe(1);
    opt.dispose();
  });

  it('rejects Nesterov without momentum or with dampening', () => {
    const p = param(rt, randn(4, 1), [4]);
    expect(() => new SGD([p], { nesterov: true })).toThrow(UnsupportedError);
    expect(() => new SGD([p], { nesterov: true, momentum: 0.9, dampening: 0.1 })).toThrow(/Nesterov/);
  });
});
