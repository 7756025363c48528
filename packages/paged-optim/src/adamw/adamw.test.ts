// AdamW against a TypeScript reference of torch.optim.AdamW over 20 steps with fixed gradients:
// odd sizes, many tensors per dispatch, parameter groups, weight decay, skipped parameters, errors.
//
// The reference computes each float32 operation in float64 and rounds it to f32, in PyTorch's
// order (its CPU kernels: lerp as a fused multiply-add, addcmul and addcdiv left to right). The GPU
// runs the same operations in f32. Two comparisons, both rtol 1e-6 (about 8 ulp):
// - against the reference with the lerp's fma done as the device does it (fused on NVIDIA, a
//   multiply then an add on lavapipe), atol 1e-9 for values that cross zero;
// - against PyTorch's fused lerp, atol 1e-6 * max|ref|: one rounding more or less in the lerp
//   differs by an ulp of its operands, which cancellation turns into a large relative difference
//   on elements near zero, so the bound there is relative to the tensor's scale.
import { beforeAll, describe, expect, it } from 'vitest';
import { DTypeError, PeftError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import { fromArray, type Runtime, type Tensor } from '@peft-ts/tensor';
import { assertClose, randn, testRuntime } from '@peft-ts/tensor/testing';
import { AdamW } from '../index.js';
import { deviceFusesFma, gradFor, loadLoraFixture, maxAbs, param, setGrad } from '../test-support/fixtures.js';
import { adamwExactStep, adamwRefInit, adamwRefStep, type AdamWRefHyper, type AdamWRefState } from './adamw.ref.js';

const TOL = { atol: 1e-9, rtol: 1e-6 };
const torchTol = (ref: ArrayLike<number>): { atol: number; rtol: number } => ({ atol: 1e-6 * maxAbs(ref), rtol: 1e-6 });

/** The PyTorch reference and the same arithmetic with the device's fma, stepped together. */
class Ref {
  readonly torch: AdamWRefState;
  readonly device: AdamWRefState;
  constructor(
    x0: ArrayLike<number>,
    private readonly fused: boolean,
  ) {
    this.torch = adamwRefInit(x0);
    this.device = adamwRefInit(x0);
  }
  step(g: ArrayLike<number>, h: AdamWRefHyper): void {
    adamwRefStep(this.torch, g, h, true);
    adamwRefStep(this.device, g, h, this.fused);
  }
}

describe('AdamW', () => {
  let rt: Runtime;
  let fused: boolean;
  beforeAll(async () => {
    rt = await testRuntime();
    fused = await deviceFusesFma(rt);
  });

  async function checkAgainst(opt: AdamW, ps: readonly Tensor[], refs: readonly Ref[], label: string): Promise<void> {
    for (const [i, p] of ps.entries()) {
      const ref = refs[i];
      if (!ref) continue;
      const st = await opt.readState(p);
      const pairs: [string, ArrayLike<number> | undefined, Float32Array, Float32Array][] = [
        ['param', await p.toArray(), ref.device.p, ref.torch.p],
        ['exp_avg', st.exp_avg, ref.device.m, ref.torch.m],
        ['exp_avg_sq', st.exp_avg_sq, ref.device.v, ref.torch.v],
      ];
      for (const [name, actual, device, torch] of pairs) {
        if (!actual) throw new Error(`${label}: no ${name} for parameter ${i}`);
        assertClose(actual, device, TOL, `${label} ${name} ${i} (device fma)`);
        assertClose(actual, torch, torchTol(torch), `${label} ${name} ${i} (PyTorch)`);
      }
      expect(opt.stepCount(p)).toBe(ref.torch.step);
    }
  }

  it('matches PyTorch AdamW over 20 steps (the trainer fixture settings, odd sizes, one dispatch for several tensors)', async () => {
    const shapes = [[7, 13], [1], [1000], [3, 257], [4099], [256]];
    const hyper: AdamWRefHyper = { lr: 5e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
    const init = shapes.map((s, i) => randn(s.reduce((a, b) => a * b, 1), 10 + i));
    const ps = shapes.map((s, i) => param(rt, init[i] ?? new Float32Array(), s));
    const refs = init.map((x) => new Ref(x, fused));
    const opt = new AdamW(ps, { lr: hyper.lr, betas: [hyper.beta1, hyper.beta2], eps: hyper.eps, weightDecay: hyper.weightDecay });
    for (let step = 0; step < 20; step++) {
      ps.forEach((p, i) => {
        const g = gradFor(p.numel, i, step);
        setGrad(p, g);
        refs[i]?.step(g, hyper);
      });
      await opt.step();
    }
    await checkAgainst(opt, ps, refs, 'fixture settings');
    if (rt.gpu.info.isSoftware) {
      // Lavapipe divides and takes square roots with IEEE rounding: the match is bit for bit.
      for (const [i, p] of ps.entries()) {
        expect(Array.from((await p.toArray()) as Float32Array)).toEqual(Array.from(refs[i]?.device.p ?? []));
      }
    }
    opt.dispose();
  });

  it('stays close to exact float64 math (the f32 reference is not off in a shared way)', async () => {
    const n = 513;
    const hyper: AdamWRefHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
    const x0 = randn(n, 3);
    const p = param(rt, x0, [n]);
    const exact = { p: Float64Array.from(x0), m: new Float64Array(n), v: new Float64Array(n), step: 0 };
    const opt = new AdamW([p], { lr: hyper.lr, betas: [hyper.beta1, hyper.beta2], eps: hyper.eps, weightDecay: hyper.weightDecay });
    for (let step = 0; step < 20; step++) {
      const g = gradFor(n, 0, step);
      setGrad(p, g);
      adamwExactStep(exact, g, hyper);
      await opt.step();
    }
    // f32 storage of p alone costs 2^-24 relative per step; 20 steps stay well under 1e-5.
    assertClose(await p.toArray(), exact.p, { atol: 1e-7, rtol: 1e-5 }, 'f32 vs float64 AdamW');
    opt.dispose();
  });

  it('applies decoupled weight decay and per-group lr, betas, eps and decay (28 LoRA tensors of the hf-tiny fixture)', async () => {
    const fx = await loadLoraFixture();
    const ps = fx.shapes.map((s, i) => param(rt, fx.init[i] ?? new Float32Array(), s));
    // Even tensors in group 0 with decay, odd ones in group 1 with its own lr, betas and eps.
    const hypers: AdamWRefHyper[] = [
      { lr: 5e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 },
      { lr: 2e-2, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0 },
    ];
    const groupOf = (i: number): number => i % 2;
    const group0 = ps.filter((_, i) => groupOf(i) === 0);
    const group1 = ps.filter((_, i) => groupOf(i) === 1);
    const h1 = hypers[1];
    if (!h1) throw new Error('no second group');
    const opt = new AdamW(
      [
        { params: group0 },
        { params: group1, lr: h1.lr, betas: [h1.beta1, h1.beta2], eps: h1.eps, weightDecay: h1.weightDecay },
      ],
      { lr: 5e-3, weightDecay: 0.05 },
    );
    const refs = fx.init.map((x) => new Ref(x, fused));
    for (let step = 0; step < 20; step++) {
      ps.forEach((p, i) => {
        // Step 0 uses the gradients PyTorch computed for the fixture (lora_A's are zero there).
        const g = step === 0 ? (fx.grads[i] ?? new Float32Array()) : gradFor(p.numel, i, step, 0.01);
        setGrad(p, g);
        const h = hypers[groupOf(i)];
        if (h) refs[i]?.step(g, h);
      });
      await opt.step();
    }
    await checkAgainst(opt, ps, refs, 'groups');
    expect(opt.paramGroups[1]?.lr).toBe(h1.lr);
    opt.dispose();
  });

  it('takes the other lerp branch when 1 - beta1 >= 0.5, and a learning rate changed between steps', async () => {
    const n = 300;
    const x0 = randn(n, 5);
    const p = param(rt, x0, [n]);
    const ref = new Ref(x0, fused);
    const opt = new AdamW([p], { lr: 1e-2, betas: [0.3, 0.9], eps: 1e-7, weightDecay: 0.02 });
    for (let step = 0; step < 20; step++) {
      const lr = 1e-2 * (1 - step / 40);
      const group = opt.paramGroups[0];
      if (group) group.lr = lr;
      const g = gradFor(n, 0, step);
      setGrad(p, g);
      ref.step(g, { lr, beta1: 0.3, beta2: 0.9, eps: 1e-7, weightDecay: 0.02 });
      await opt.step();
    }
    await checkAgainst(opt, [p], [ref], 'lerp branch');
    opt.dispose();
  });

  it('skips parameters without a gradient: unchanged, and their step count does not advance', async () => {
    const a = param(rt, randn(40, 1), [40]);
    const b = param(rt, randn(50, 2), [5, 10]);
    const bBefore = (await b.toArray()) as Float32Array;
    const refA = new Ref(await a.toArray(), fused);
    const opt = new AdamW([a, b], { lr: 1e-2 });
    for (let step = 0; step < 3; step++) {
      const g = gradFor(40, 0, step);
      setGrad(a, g);
      refA.step(g, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 });
      await opt.step();
    }
    expect(Array.from((await b.toArray()) as Float32Array)).toEqual(Array.from(bBefore));
    expect(opt.stepCount(b)).toBe(0);
    expect(opt.stepCount(a)).toBe(3);
    await checkAgainst(opt, [a], [refA], 'stepped param');
    opt.zeroGrad();
    expect(a.grad).toBeNull();
    setGrad(a, new Float32Array(40).fill(1));
    opt.zeroGrad(false);
    expect(Array.from((await a.grad?.toArray()) ?? [])).toEqual(new Array<number>(40).fill(0));
    opt.dispose();
  });

  it('rejects bad parameters, gradients and settings with errors that name them', async () => {
    const p = param(rt, randn(6, 1), [2, 3]);
    const half = fromArray(rt, [1, 2], [2], 'f16', { requiresGrad: true });
    expect(() => new AdamW([half])).toThrow(DTypeError);
    expect(() => new AdamW([])).toThrow(PeftError);
    expect(() => new AdamW([p, p])).toThrow(/more than once/);
    expect(() => new AdamW([p], { betas: [1, 0.999] })).toThrow(UnsupportedError);
    expect(() => new AdamW([p], { lr: -1 })).toThrow(/lr/);
    const opt = new AdamW([p]);
    p.grad = fromArray(rt, randn(5, 2), [5], 'f32', { tag: 'grads' });
    await expect(opt.step()).rejects.toThrow(ShapeMismatchError);
    await expect(opt.step()).rejects.toThrow(/AdamW\.step\(\) gradient of parameter 0.*\[2, 3\].*\[5\]/);
    opt.dispose();
  });
});
