// Parameters larger than one storage binding (128 MiB on lavapipe): the update is split into
// binding windows at aligned offsets, resident and paged, f32 and 8-bit. Big shapes, so this runs
// in the gpu project; each check compares sampled 256-element blocks with the references (the
// update is elementwise, blockwise for 8-bit, so a sample is checked exactly as a whole would be).
import { beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '@peft-ts/tensor';
import { assertClose, randn, testRuntime } from '@peft-ts/tensor/testing';
import { AdamW } from '../index.js';
import { deviceFusesFma, maxAbs, param, setGrad } from '../test-support/fixtures.js';
import { adamwRefInit, adamwRefStep, type AdamWRefHyper } from './adamw.ref.js';
import { adam8RefInit, adam8RefStep } from './adamw8bit.ref.js';

const HYPER: AdamWRefHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
const STEPS = 3;

describe('parameters larger than one binding', () => {
  let rt: Runtime;
  let n: number;
  let blocks: number[];
  beforeAll(async () => {
    rt = await testRuntime();
    // A little over one binding of f32 elements, with a partial last block.
    n = Math.floor(rt.maxBindingBytes / 4) + 445_555;
    const last = Math.ceil(n / 256) - 1;
    const split = Math.floor((rt.maxBindingBytes - 256) / 4 / 256);
    blocks = [0, 1, 777, split - 2, split - 1, split, split + 1, last - 1, last];
  });

  const gather = (x: ArrayLike<number>): Float32Array => {
    const out: number[] = [];
    for (const b of blocks) for (let i = b * 256; i < Math.min(n, (b + 1) * 256); i++) out.push(x[i] ?? 0);
    return Float32Array.from(out);
  };

  for (const bits of [32, 8] as const) {
    for (const paged of [false, true]) {
      it(`AdamW ${bits}-bit, ${paged ? 'paged' : 'resident'}`, async () => {
        const fused = await deviceFusesFma(rt);
        const x0 = randn(n, 1);
        const p = param(rt, x0, [n]);
        const opt = new AdamW([p], { lr: HYPER.lr, weightDecay: HYPER.weightDecay, bits, ...(paged ? { paging: { budgetBytes: 64 * 2 ** 20 } } : {}) });
        const ref32 = adamwRefInit(gather(x0));
        const ref8 = adam8RefInit(gather(x0));
        for (let step = 0; step < STEPS; step++) {
          const g = randn(n, 100 + step);
          setGrad(p, g);
          if (bits === 32) adamwRefStep(ref32, gather(g), HYPER, fused);
          else adam8RefStep(ref8, gather(g), HYPER);
          await opt.step();
        }
        expect(opt.isPaged).toBe(paged);
        const got = gather(await p.toArray());
        const ref = bits === 32 ? ref32.p : ref8.p;
        assertClose(got, ref, { atol: 1e-6 * maxAbs(ref), rtol: 1e-6 }, `${bits}-bit params`);
        const st = await opt.readState(p);
        if (bits === 32) assertClose(gather(st.exp_avg ?? []), ref32.m, { atol: 1e-9, rtol: 1e-6 }, 'exp_avg');
        else expect(Array.from(gather(st.state1 ?? []))).toEqual(Array.from(ref8.state1));
        opt.dispose();
        p.dispose();
      }, 600_000);
    }
  }
});
