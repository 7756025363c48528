// add_weighted_adapter: linear, cat and svd against a float64 reference of the updates.
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runtime } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel } from '@peft-ts/models/node';
import { LoraModel } from '@peft-ts/lora/node';
import { addWeightedAdapter } from '../index.js';
import { mat, matmul, qr, svd, transpose } from './linalg.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

/** scale * B @ A in float64. */
function update(f: { A: Float32Array; B: Float32Array; r: number; scale: number }): Float64Array {
  const inF = f.A.length / f.r;
  const outF = f.B.length / f.r;
  const out = new Float64Array(outF * inF);
  for (let o = 0; o < outF; o++)
    for (let k = 0; k < f.r; k++) {
      const b = (f.B[o * f.r + k] ?? 0) * f.scale;
      for (let i = 0; i < inF; i++) out[o * inF + i] = (out[o * inF + i] ?? 0) + b * (f.A[k * inF + i] ?? 0);
    }
  return out;
}

const frob = (a: Float64Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));

describe('linear algebra', () => {
  it('QR and SVD reconstruct their input', () => {
    const a = mat(7, 4, Array.from({ length: 28 }, (_, i) => Math.sin(i * 1.7) + (i % 5) * 0.1));
    const { q, r } = qr(a);
    expect(Math.max(...matmul(q, r).data.map((x, i) => Math.abs(x - (a.data[i] ?? 0))))).toBeLessThan(1e-12);
    const qtq = matmul(transpose(q), q);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(qtq.data[i * 4 + j]).toBeCloseTo(i === j ? 1 : 0, 12);
    const b = mat(4, 4, a.data.slice(0, 16));
    const { u, s, v } = svd(b);
    const us = mat(4, 4, u.data.map((x, i) => x * (s[i % 4] ?? 0)));
    const back = matmul(us, transpose(v));
    expect(Math.max(...back.data.map((x, i) => Math.abs(x - (b.data[i] ?? 0))))).toBeLessThan(1e-12);
    for (let i = 1; i < 4; i++) expect(s[i - 1]).toBeGreaterThanOrEqual(s[i] ?? 0);
  });
});

describe('addWeightedAdapter', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  it('cat gives exactly the weighted sum of updates; linear follows PEFT; svd is the best low-rank fit', async () => {
    const model = await loadModel(rt, join(fixtures, 'llama', 'model'));
    const lm = new LoraModel(model);
    await lm.loadAdapter(join(fixtures, 'llama', 'adapter'), 'a');
    lm.addAdapter('b', { r: 4, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'], init_lora_weights: false }, { seed: 9 });
    const fa = await lm.factors('a');
    const fb = await lm.factors('b');
    const module = 'model.layers.1.self_attn.q_proj';
    const ua = update(fa.get(module) ?? { A: new Float32Array(), B: new Float32Array(), r: 1, scale: 0 });
    const ub = update(fb.get(module) ?? { A: new Float32Array(), B: new Float32Array(), r: 1, scale: 0 });
    const target = ua.map((x, i) => 0.7 * x + 0.3 * (ub[i] ?? 0));

    await addWeightedAdapter(lm, ['a', 'b'], [0.7, 0.3], 'cat', 'cat');
    const cat = (await lm.factors('cat')).get(module);
    expect(cat?.r).toBe(8);
    expect(cat?.scale).toBe(1);
    const catUpdate = update(cat ?? { A: new Float32Array(), B: new Float32Array(), r: 1, scale: 0 });
    expect(Math.max(...catUpdate.map((x, i) => Math.abs(x - (target[i] ?? 0))))).toBeLessThan(1e-6);
    // A module only adapter "a" targets keeps its update (weighted), padded to the new rank.
    const down = (await lm.factors('cat')).get('model.layers.0.mlp.down_proj');
    expect(down?.r).toBe(8);

    await addWeightedAdapter(lm, ['a', 'b'], [0.7, 0.3], 'svd2', 'svd', { svdRank: 2 });
    const s2 = (await lm.factors('svd2')).get(module);
    expect(s2?.r).toBe(2);
    const err2 = frob(update(s2 ?? { A: new Float32Array(), B: new Float32Array(), r: 1, scale: 0 }).map((x, i) => x - (target[i] ?? 0)));
    // Eckart-Young: the error equals the norm of the discarded singular values of the exact update.
    const dense = mat(64, 64, target);
    const { s } = svd(dense);
    const tail = Math.sqrt(Array.from(s).slice(2).reduce((acc, x) => acc + x * x, 0));
    expect(err2).toBeCloseTo(tail, 5);
    await addWeightedAdapter(lm, ['a', 'b'], [0.7, 0.3], 'svd8', 'svd', { svdRank: 8 });
    const s8 = update((await lm.factors('svd8')).get(module) ?? { A: new Float32Array(), B: new Float32Array(), r: 1, scale: 0 });
    expect(Math.max(...s8.map((x, i) => Math.abs(x - (target[i] ?? 0))))).toBeLessThan(1e-6);

    lm.addAdapter('c', { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], init_lora_weights: false }, { seed: 11 });
    await addWeightedAdapter(lm, ['b', 'c'], [0.5, 2], 'lin', 'linear');
    const fbq = fb.get(module);
    const fc = (await lm.factors('c')).get(module);
    const lin = (await lm.factors('lin')).get(module);
    if (!fbq || !fc || !lin) throw new Error('missing factors');
    const kb = Math.sqrt(0.5 * fbq.scale);
    const kc = Math.sqrt(2 * fc.scale);
    for (let i = 0; i < lin.A.length; i += 17) expect(lin.A[i]).toBeCloseTo(kb * (fbq.A[i] ?? 0) + kc * (fc.A[i] ?? 0), 6);
    for (let i = 0; i < lin.B.length; i += 13) expect(lin.B[i]).toBeCloseTo(kb * (fbq.B[i] ?? 0) + kc * (fc.B[i] ?? 0), 6);
    await expect(addWeightedAdapter(lm, ['a', 'b'], [1, 1], 'bad', 'linear')).resolves.toBeUndefined();
    await expect(addWeightedAdapter(lm, ['a', 'cat'], [1, 1], 'bad2', 'linear')).rejects.toThrow(/same rank/);
    model.dispose();
  });
});
