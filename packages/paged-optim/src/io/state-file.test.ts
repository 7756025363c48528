// Saving and loading optimizer state: save -> load -> continue equals an uninterrupted run bit for
// bit (AdamW f32 with groups, 8-bit into a paged optimizer, SGD), and files that do not fit the
// parameters, come from different saves, or are missing fail naming what is wrong.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { memoryTree } from '@peft-ts/safetensors';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import type { Runtime, Tensor } from '@peft-ts/tensor';
import { randn, testRuntime } from '@peft-ts/tensor/testing';
import { AdamW, SGD, STATE_JSON_FILE, STATE_TENSORS_FILE, type GroupBase, type Optimizer } from '../index.js';
import { loadOptimizerState, saveOptimizerState } from '../node.js';
import { gradFor, param, setGrad } from '../test-support/fixtures.js';

const SHAPES = [[7, 13], [4099], [3, 257], [1]];

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('optimizer state files', () => {
  let rt: Runtime;
  let dir: string;
  beforeAll(async () => {
    rt = await testRuntime();
    dir = await mkdtemp(join(tmpdir(), 'paged-optim-state-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const fresh = (seed: number): Tensor[] => SHAPES.map((s, i) => param(rt, randn(s.reduce((a, b) => a * b, 1), seed + i), s));

  async function steps(opt: Optimizer<GroupBase>, ps: readonly Tensor[], from: number, to: number): Promise<void> {
    for (let step = from; step < to; step++) {
      ps.forEach((p, i) => setGrad(p, gradFor(p.numel, i, step)));
      await opt.step();
    }
  }

  async function snapshot(opt: Optimizer<GroupBase>, ps: readonly Tensor[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const p of ps) {
      out.push(bytesOf(await p.toArray()));
      for (const v of Object.values(await opt.readState(p))) out.push(bytesOf(v));
    }
    return out;
  }

  /**
   * Runs 10 steps straight, and 5 + save + load into a new optimizer + 5; both must agree exactly.
   * The state goes through the directory `sub`, or through a tree in memory when `sub` is null.
   */
  async function resumeEqualsUninterrupted(make: (ps: Tensor[], resumed: boolean) => Optimizer<GroupBase>, sub: string | null): Promise<void> {
    const a = fresh(300);
    const straight = make(a, false);
    await steps(straight, a, 0, 10);
    const expected = await snapshot(straight, a);

    const b = fresh(300);
    const first = make(b, false);
    await steps(first, b, 0, 5);
    const memory = memoryTree('checkpoint');
    const at = sub === null ? null : join(dir, sub);
    if (at === null) await first.saveStateTo(memory);
    else await saveOptimizerState(first, at);
    first.dispose();
    const resumed = make(b, true);
    if (at === null) await resumed.loadStateFrom(memory);
    else await loadOptimizerState(resumed, at);
    for (const p of b) expect(resumed.stepCount(p)).toBe(5);
    await steps(resumed, b, 5, 10);
    const got = await snapshot(resumed, b);
    expect(got.length).toBe(expected.length);
    got.forEach((x, i) => expect(Buffer.compare(x, expected[i] ?? new Uint8Array()), `tensor ${i}`).toBe(0));
    straight.dispose();
    resumed.dispose();
  }

  it('AdamW with two parameter groups: save -> load -> continue equals uninterrupted, hyperparameters restored', async () => {
    await resumeEqualsUninterrupted((ps, resumed) => {
      // The resumed optimizer starts with other settings: loading brings the saved ones back.
      const lr = resumed ? 0.5 : 1e-2;
      return new AdamW(
        [
          { params: ps.slice(0, 2), lr },
          { params: ps.slice(2), lr: lr / 2, betas: [0.8, 0.99], weightDecay: 0 },
        ],
        { weightDecay: 0.05 },
      );
    }, 'adamw');
    const json = JSON.parse(await readFile(join(dir, 'adamw', STATE_JSON_FILE), 'utf8')) as { paramGroups: { lr: number; betas: number[]; params: number[] }[]; state: Record<string, { step: number }> };
    expect(json.paramGroups.map((g) => [g.lr, g.params])).toEqual([
      [1e-2, [0, 1]],
      [5e-3, [2, 3]],
    ]);
    expect(json.paramGroups[1]?.betas).toEqual([0.8, 0.99]);
    expect(json.state['3']?.step).toBe(5);
    const file = await SafetensorsFile.open(join(dir, 'adamw', STATE_TENSORS_FILE));
    expect(file.info('state.1.exp_avg_sq')).toMatchObject({ dtype: 'F32', shape: [4099] });
    await file.close();
  });

  it('8-bit AdamW saved resident and loaded into a paged optimizer continues exactly', async () => {
    await resumeEqualsUninterrupted(
      (ps, resumed) => new AdamW(ps, { lr: 1e-3, bits: 8, ...(resumed ? { paging: { budgetBytes: 8192, chunkBytes: 520 } } : {}) }),
      'adamw8',
    );
    const file = await SafetensorsFile.open(join(dir, 'adamw8', STATE_TENSORS_FILE));
    expect(file.info('state.1.state1')).toMatchObject({ dtype: 'U8', shape: [4099] });
    expect(file.info('state.1.absmax2')).toMatchObject({ dtype: 'F32', shape: [17] });
    expect(file.info('state.0.exp_avg')).toMatchObject({ dtype: 'F32', shape: [7, 13] });
    await file.close();
  });

  it('8-bit AdamW state kept in a memory tree (as a browser keeps it) continues exactly, and reads like the files on disk', async () => {
    await resumeEqualsUninterrupted((ps) => new AdamW(ps, { lr: 1e-3, bits: 8 }), null);
    const ps = fresh(7);
    const opt = new AdamW(ps, { lr: 1e-3, bits: 8 });
    await steps(opt, ps, 0, 2);
    const at = join(dir, 'memory-vs-disk');
    await saveOptimizerState(opt, at);
    const fromDisk = memoryTree('copied', {
      [STATE_JSON_FILE]: await readFile(join(at, STATE_JSON_FILE), 'utf8'),
      [STATE_TENSORS_FILE]: new Uint8Array(await readFile(join(at, STATE_TENSORS_FILE))),
    });
    const others = fresh(7);
    const copy = new AdamW(others, { lr: 1e-3, bits: 8 });
    await copy.loadStateFrom(fromDisk);
    for (const [i, p] of ps.entries()) {
      const theirs = await copy.readState(others[i] ?? p);
      const mine = await opt.readState(p);
      expect(Object.keys(theirs)).toEqual(Object.keys(mine));
      for (const [k, v] of Object.entries(mine)) expect(Buffer.compare(bytesOf(theirs[k] ?? new Uint8Array()), bytesOf(v)), `${i}.${k}`).toBe(0);
    }
    await expect(copy.loadStateFrom(memoryTree('empty'))).rejects.toThrow(/^empty\/optimizer\.json: \(file\): expected an optimizer state JSON, got no such file$/);
    opt.dispose();
    copy.dispose();
  });

  it('SGD with momentum: save -> load -> continue equals uninterrupted', async () => {
    await resumeEqualsUninterrupted((ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, dampening: 0.1 }), 'sgd');
  });

  it('writes through temporary files and leaves only the two state files', async () => {
    const ps = fresh(1);
    const opt = new AdamW(ps);
    await steps(opt, ps, 0, 1);
    const at = join(dir, 'atomic');
    await saveOptimizerState(opt, at);
    await saveOptimizerState(opt, at);
    expect((await readdir(at)).sort()).toEqual([STATE_JSON_FILE, STATE_TENSORS_FILE].sort());
    opt.dispose();
  });

  it('fails naming the tensor when a state file does not fit the parameters', async () => {
    const ps = [param(rt, randn(20, 1), [4, 5])];
    const opt = new AdamW(ps);
    await steps(opt, ps, 0, 2);
    const at = join(dir, 'shapes');
    await saveOptimizerState(opt, at);
    const other = new AdamW([param(rt, randn(20, 2), [5, 4])]);
    const error: unknown = await loadOptimizerState(other, at).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as Error).message).toMatch(/tensor "state\.0\.exp_avg": expected F32 \[5, 4\] for parameter 0 of shape \[5, 4\], got F32 \[4, 5\]/);
    // A different number of parameters is caught before any tensor is read.
    const more = new AdamW([param(rt, randn(20, 3), [4, 5]), param(rt, randn(3, 4), [3])]);
    await expect(loadOptimizerState(more, at)).rejects.toThrow(/paramGroups\[0\]\.params: expected \[0,1\], got \[0\]/);
    // 8-bit state does not load into a 32-bit optimizer.
    const eight = new AdamW([param(rt, randn(20, 5), [4, 5])], { bits: 8 });
    await expect(loadOptimizerState(eight, at)).rejects.toThrow(/settings\.bits: expected 8, got 32/);
    for (const o of [opt, other, more, eight]) o.dispose();
  });

  it('notices a JSON and a tensors file from different saves, and a missing file', async () => {
    const ps = [param(rt, randn(10, 1), [10])];
    const opt = new AdamW(ps);
    await steps(opt, ps, 0, 1);
    const a = join(dir, 'mix-a');
    const b = join(dir, 'mix-b');
    await saveOptimizerState(opt, a);
    await saveOptimizerState(opt, b);
    await writeFile(join(a, STATE_JSON_FILE), await readFile(join(b, STATE_JSON_FILE)));
    await expect(loadOptimizerState(opt, a)).rejects.toThrow(/__metadata__\.stateId: expected [0-9a-f]+ \(the stateId of/);
    await expect(loadOptimizerState(opt, join(dir, 'nowhere'))).rejects.toThrow(/optimizer\.json: \(file\): expected an optimizer state JSON, got no such file/);
    opt.dispose();
  });
});
