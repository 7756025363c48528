// Multi-tensor kernels bind every slot (spare bindings past those holding work), so a dispatch of
// any number of tensors uses one pipeline per kernel, and the results do not depend on how the
// tensors were grouped into dispatches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime, type Tensor } from '@peft-ts/tensor';
import { assertClose, randn } from '@peft-ts/tensor/testing';
import { AdamW, clipGradNorm } from '../index.js';
import { param, setGrad } from '../test-support/fixtures.js';
import { clipRef } from '../clip/clip.ref.js';

const SIZES = [5, 300, 17, 1024, 2, 999, 64, 129, 7, 513, 33];

describe('multi-tensor kernels with spare slots', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await createRuntime({ seed: 3 });
  });
  afterAll(() => rt.destroy());

  const pipelines = (name: string): string[] =>
    rt
      .compiledKernels()
      .filter((k) => k.name === name)
      .map((k) => k.variant);

  it('clips 1, 3 and 11 gradients (8 + 3 per dispatch) with one pipeline per kernel', async () => {
    for (const count of [1, 3, 11]) {
      const sizes = SIZES.slice(0, count);
      const ps = sizes.map((n) => param(rt, new Float32Array(n), [n]));
      const grads = sizes.map((n, i) => randn(n, 40 + i, 0.5));
      ps.forEach((p, i) => setGrad(p, grads[i] ?? new Float32Array()));
      const ref = clipRef(grads, 1);
      const norm = clipGradNorm(ps, 1);
      assertClose([await norm.item()], [ref.total], { atol: 1e-9, rtol: 1e-5 }, `norm of ${count}`);
      for (const [i, p] of ps.entries()) assertClose((await p.grad?.toArray()) ?? [], ref.clipped[i] ?? [], { atol: 1e-9, rtol: 1e-5 }, `grad ${i} of ${count}`);
      norm.dispose();
      for (const p of ps) p.dispose();
    }
    expect(pipelines('clip-sumsq')).toHaveLength(1);
    expect(pipelines('clip-scale')).toHaveLength(1);
  });

  it('updates 11 parameters in one optimizer exactly as 11 optimizers of one parameter each, with one AdamW pipeline', async () => {
    const make = (): Tensor[] => SIZES.map((n, i) => param(rt, randn(n, 70 + i), [n]));
    const together = make();
    const alone = make();
    const grads = SIZES.map((n, i) => randn(n, 90 + i, 0.1));
    const options = { lr: 1e-2, weightDecay: 0.01 };
    const joint = new AdamW(together, options);
    const singles = alone.map((p) => new AdamW([p], options));
    for (let step = 0; step < 2; step++) {
      together.forEach((p, i) => setGrad(p, grads[i] ?? new Float32Array()));
      alone.forEach((p, i) => setGrad(p, grads[i] ?? new Float32Array()));
      await joint.step();
      for (const o of singles) await o.step();
    }
    for (const [i, p] of together.entries()) {
      expect(await p.toArray(), `parameter ${i}`).toEqual(await alone[i]?.toArray());
    }
    expect(pipelines('adamw32')).toHaveLength(1);
    joint.dispose();
    for (const o of singles) o.dispose();
    for (const p of [...together, ...alone]) p.dispose();
  });
});
