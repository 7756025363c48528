// 8-bit AdamW: the GPU kernel against a TypeScript reference of bitsandbytes' blockwise update
// (codes, absmax and parameters over 20 steps), the f32 path for small tensors, how closely 8-bit
// tracks 32-bit AdamW, and the state memory it saves.
import { beforeAll, describe, expect, it } from 'vitest';
import { DYNAMIC_MAP_SIGNED, DYNAMIC_MAP_UNSIGNED, dequantizeBlockwise8 } from '@peft-ts/nf4-quant';
import type { Runtime } from '@peft-ts/tensor';
import { assertClose, randn, testRuntime } from '@peft-ts/tensor/testing';
import { AdamW, AdamW8bit, MIN_8BIT_SIZE, STATE_BLOCK } from '../index.js';
import { deviceFusesFma, gradFor, maxAbs, param, setGrad } from '../test-support/fixtures.js';
import { adamwRefInit, adamwRefStep, type AdamWRefHyper } from './adamw.ref.js';
import { adam8RefInit, adam8RefStep } from './adamw8bit.ref.js';

const HYPER: AdamWRefHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

describe('AdamW with 8-bit state', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('matches the blockwise 8-bit reference over 20 steps: codes, absmax and parameters', async () => {
    // 4096 (exact blocks), 5000 (a 136-element tail block), 33 x 129 (odd), all 8-bit.
    const shapes = [[4096], [5000], [33, 129]];
    const init = shapes.map((s, i) => randn(s.reduce((a, b) => a * b, 1), 40 + i));
    const ps = shapes.map((s, i) => param(rt, init[i] ?? new Float32Array(), s));
    const refs = init.map((x) => adam8RefInit(x));
    const opt = new AdamW8bit(ps, { lr: HYPER.lr, weightDecay: HYPER.weightDecay });
    for (let step = 0; step < 20; step++) {
      ps.forEach((p, i) => {
        const g = gradFor(p.numel, i, step);
        // A non-finite gradient zeroes that element's state and leaves the parameter alone.
        if (step === 5 && i === 1) g[17] = Infinity;
        setGrad(p, g);
        const ref = refs[i];
        if (ref) adam8RefStep(ref, g, HYPER);
      });
      await opt.step();
    }
    for (const [i, p] of ps.entries()) {
      const ref = refs[i];
      if (!ref) continue;
      const st = await opt.readState(p);
      const { state1, state2, absmax1, absmax2 } = st;
      if (!(state1 instanceof Uint8Array) || !(state2 instanceof Uint8Array) || !(absmax1 instanceof Float32Array) || !(absmax2 instanceof Float32Array)) {
        throw new Error(`parameter ${i}: 8-bit state missing`);
      }
      // The kernel does the reference's f32 operations in the same order, so the codes agree
      // exactly; the values to round-off (rtol 1e-6, atol 1e-6 * max|ref| for values near zero).
      expect(Array.from(state1)).toEqual(Array.from(ref.state1));
      expect(Array.from(state2)).toEqual(Array.from(ref.state2));
      assertClose(absmax1, ref.absmax1, { atol: 0, rtol: 1e-6 }, `absmax1 ${i}`);
      assertClose(absmax2, ref.absmax2, { atol: 0, rtol: 1e-6 }, `absmax2 ${i}`);
      assertClose(await p.toArray(), ref.p, { atol: 1e-6 * maxAbs(ref.p), rtol: 1e-6 }, `param ${i}`);
      expect(absmax1.length).toBe(Math.ceil(p.numel / STATE_BLOCK));
    }
    opt.dispose();
  });

  it('keeps f32 PyTorch state for tensors under min8bitSize, and tracks 32-bit AdamW over 20 steps', async () => {
    const fused = await deviceFusesFma(rt);
    const shapes = [[100], [64, 100], [4095]];
    const init = shapes.map((s, i) => randn(s.reduce((a, b) => a * b, 1), 70 + i, 0.5));
    const p8 = shapes.map((s, i) => param(rt, init[i] ?? new Float32Array(), s));
    const p32 = shapes.map((s, i) => param(rt, init[i] ?? new Float32Array(), s));
    const opt8 = new AdamW(p8, { lr: HYPER.lr, weightDecay: HYPER.weightDecay, bits: 8 });
    const opt32 = new AdamW(p32, { lr: HYPER.lr, weightDecay: HYPER.weightDecay });
    const small = adamwRefInit(init[0] ?? new Float32Array());
    for (let step = 0; step < 20; step++) {
      for (let i = 0; i < shapes.length; i++) {
        const g = gradFor(p8[i]?.numel ?? 0, i, step);
        const a = p8[i];
        const b = p32[i];
        if (a) setGrad(a, g);
        if (b) setGrad(b, g);
        if (i === 0) adamwRefStep(small, g, HYPER, fused);
      }
      await opt8.step();
      await opt32.step();
    }
    // Under 4096 elements: f32 state with PyTorch's update.
    const st0 = await opt8.readState(p8[0] ?? p8[1] ?? p8[2] ?? param(rt, new Float32Array(1), [1]));
    expect(Object.keys(st0).sort()).toEqual(['exp_avg', 'exp_avg_sq']);
    assertClose((await p8[0]?.toArray()) ?? [], small.p, { atol: 1e-9, rtol: 1e-6 }, 'small tensor param');
    expect(Object.keys(await opt8.readState(p8[2] ?? param(rt, new Float32Array(1), [1]))).sort()).toEqual(['exp_avg', 'exp_avg_sq']);
    expect(MIN_8BIT_SIZE).toBe(4096);

    // The 8-bit tensor: each step moves a parameter by about lr; quantized m and v change the step
    // by a few percent. Stated tolerance after 20 steps: every element within 0.1 * 20 * lr of the
    // 32-bit result, the mean difference within 0.02 * 20 * lr, and the total update direction the same.
    const a8 = (await p8[1]?.toArray()) as Float32Array;
    const a32 = (await p32[1]?.toArray()) as Float32Array;
    const x0 = init[1] ?? new Float32Array();
    let maxDiff = 0;
    let sumDiff = 0;
    let dot = 0;
    let n8 = 0;
    let n32 = 0;
    for (let i = 0; i < a8.length; i++) {
      const d = Math.abs((a8[i] ?? 0) - (a32[i] ?? 0));
      maxDiff = Math.max(maxDiff, d);
      sumDiff += d;
      const u8 = (a8[i] ?? 0) - (x0[i] ?? 0);
      const u32 = (a32[i] ?? 0) - (x0[i] ?? 0);
      dot += u8 * u32;
      n8 += u8 * u8;
      n32 += u32 * u32;
    }
    const budget = 20 * HYPER.lr;
    expect(maxDiff).toBeLessThan(0.1 * budget);
    expect(sumDiff / a8.length).toBeLessThan(0.02 * budget);
    expect(dot / Math.sqrt(n8 * n32)).toBeGreaterThan(0.999);

    // The dequantized 8-bit m stays close to the f32 m: within 2% of the block's absmax.
    const st8 = await opt8.readState(p8[1] ?? param(rt, new Float32Array(1), [1]));
    const st32 = await opt32.readState(p32[1] ?? param(rt, new Float32Array(1), [1]));
    const m8 = dequantizeBlockwise8(st8.state1 as Uint8Array, st8.absmax1 as Float32Array, DYNAMIC_MAP_SIGNED, STATE_BLOCK);
    const v8 = dequantizeBlockwise8(st8.state2 as Uint8Array, st8.absmax2 as Float32Array, DYNAMIC_MAP_UNSIGNED, STATE_BLOCK);
    assertClose(m8, st32.exp_avg as Float32Array, { atol: 0.02 * maxAbs(st32.exp_avg as Float32Array), rtol: 0.05 }, 'dequantized m vs f32 m');
    assertClose(v8, st32.exp_avg_sq as Float32Array, { atol: 0.02 * maxAbs(st32.exp_avg_sq as Float32Array), rtol: 0.1 }, 'dequantized v vs f32 v');
    opt8.dispose();
    opt32.dispose();
  });

  it('keeps about 2 bytes of state per parameter (+ absmax) instead of 8, in the memory accounting', async () => {
    const n = 40 * STATE_BLOCK;
    const run = async (bits: 8 | 32): Promise<number> => {
      const p = param(rt, randn(n, 9), [40, STATE_BLOCK]);
      const opt = new AdamW([p], { bits });
      const before = rt.memoryStats().byTag.optimizer;
      setGrad(p, gradFor(n, 0, 0));
      await opt.step();
      const bytes = rt.memoryStats().byTag.optimizer - before;
      expect(bytes).toBe(opt.stateBytes().gpu);
      opt.dispose();
      expect(rt.memoryStats().byTag.optimizer).toBe(before);
      p.dispose();
      return bytes;
    };
    const b32 = await run(32);
    const b8 = await run(8);
    expect(b32).toBe(8 * n);
    // Two code bytes per parameter, two f32 absmax per 256 parameters, and the two 256-entry code maps.
    expect(b8).toBe(2 * n + 2 * 4 * (n / STATE_BLOCK) + 2 * 256 * 4);
    // About 75% less: (2 + 8/256) / 8 of the f32 state, the code maps aside.
    expect((b8 - 2 * 256 * 4) / b32).toBeCloseTo((2 + 8 / 256) / 8, 10);
    expect((b8 - 2 * 256 * 4) / b32).toBeLessThan(0.26);
  });
});
