// `peft-ts sweep` over r = 2, 4, 8 on the demo model (LoRA, 4 steps each, to stay quick on a
// software GPU), then again with two seeds: trainable parameters as the analytic count, merge
// checks, a self-contained HTML report, finished runs not repeated, mean ± std with seeds.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleDatasetPath } from '@peft-ts/data-alpaca/node';
import { createDemoAssets, DEMO_MODEL_SHAPE } from '../demo/assets.js';
import { expandTargets, parseGrid, sweep } from './sweep.js';
import type { SweepRunResult } from '../report/sweep-report.js';
import { captureOutput } from '../testing/capture.js';


/** LoRA parameters of every linear layer of the demo model: r * (in + out) each. */
function analyticTrainable(r: number): number {
  const s = DEMO_MODEL_SHAPE;
  const h = s.hidden_size;
  const q = s.num_attention_heads * s.head_dim;
  const kv = s.num_key_value_heads * s.head_dim;
  const perLayer = h + q + (h + kv) * 2 + (q + h) + (h + s.intermediate_size) * 3;
  return s.num_hidden_layers * r * perLayer;
}

describe('peft-ts sweep', () => {
  let work: string;
  let config: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'peft-cli-sweep-'));
    const model = (await createDemoAssets(join(work, 'model'))).dir;
    config = join(work, 'base.yaml');
    await writeFile(
      config,
      [
        `model: ${model}`,
        `data: ${exampleDatasetPath()}`,
        'method: lora',
        'alpha: 8',
        'lr: 0.01',
        'schedule: constant',
        'warmup_ratio: 0',
        'max_steps: 4',
        'eval_every: 2',
        'batch_size: 2',
        'gradient_accumulation: 1',
        'max_length: 96',
        'optimizer: adamw',
        'seed: 0',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await rm(work, { recursive: true, force: true });
  });

  it('runs r = 2, 4, 8 on one base and reports them; a rerun with seeds trains only the new runs', async () => {
    const output = join(work, 'sweep');
    let cap = captureOutput();
    expect(await sweep(['--config', config, '--grid', 'r=2,4,8', '--output', output])).toBe(0);
    vi.restoreAllMocks();
    let text = cap.stderr();
    expect(text).toContain('sweep: 3 runs (3 grid points x 1 seed), 0 already done, 3 to train');
    expect(text.match(/loading .* once for all runs/g)).toHaveLength(1);
    // Each run's adapter is taken out again and its buffers freed before the next run.
    const released = [...text.matchAll(/live GPU memory after release (\d+) bytes \(the base: (\d+)\)/g)];
    expect(released).toHaveLength(3);
    for (const m of released) expect(m[1]).toBe(m[2]);

    const results = [2, 4, 8].map((r) => JSON.parse(readFileSync(join(output, 'runs', `r=${r}_seed=0`, 'result.json'), 'utf8')) as SweepRunResult);
    for (const [i, r] of [2, 4, 8].entries()) {
      const res = results[i];
      if (!res) throw new Error(`no result for r=${r}`);
      expect(res.trainableParams).toBe(analyticTrainable(r));
      // f32 A and B, plus the safetensors header.
      expect(res.adapterBytes).toBeGreaterThan(4 * analyticTrainable(r));
      expect(res.adapterBytes).toBeLessThan(4 * analyticTrainable(r) + 16384);
      expect(res.mergeMaxAbsDiff).not.toBeNull();
      expect(res.mergeMaxAbsDiff ?? 1).toBeLessThanOrEqual(1e-4);
      expect(res.steps).toBe(4);
      expect(res.trainCurve).toHaveLength(4);
      expect(res.valCurve.map((v) => v.step)).toEqual([0, 2, 4]);
      expect(res.bestValLoss).toBe(Math.min(...res.valCurve.slice(1).map((v) => v.loss)));
      // The final adapter scored by eval's code is the trainer's last evaluation.
      expect(res.finalValLoss).toBeCloseTo(res.valCurve[2]?.loss ?? 0, 4);
      expect(res.peakGpuBytes).toBeGreaterThan(0);
      expect(res.tokensPerSecond).toBeGreaterThan(0);
    }
    // The base is shared and left untouched: every run starts from the same validation loss.
    expect(results[1]?.valCurve[0]?.loss).toBe(results[0]?.valCurve[0]?.loss);
    expect(results[2]?.valCurve[0]?.loss).toBe(results[0]?.valCurve[0]?.loss);

    const md = readFileSync(join(output, 'report.md'), 'utf8');
    for (const r of [2, 4, 8]) expect(md).toContain(`| r=${r} | 0 | ${analyticTrainable(r).toLocaleString('en-US')} |`);
    const html = readFileSync(join(output, 'report.html'), 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(3);
    expect(html).not.toMatch(/https?:|\bsrc=|<link|<script|@import|url\(/i);
    expect(html).toContain('Best validation loss vs trainable parameters');

    const finished = statSync(join(output, 'runs', 'r=2_seed=0', 'result.json')).mtimeMs;
    cap = captureOutput();
    expect(await sweep(['--config', config, '--grid', 'r=2,4', '--seeds', '0,1', '--output', output])).toBe(0);
    vi.restoreAllMocks();
    text = cap.stderr();
    expect(text).toContain('sweep: 4 runs (2 grid points x 2 seeds), 2 already done, 2 to train');
    expect(text).toContain('run 1 of 2: r=2_seed=1');
    expect(text).toContain('run 2 of 2: r=4_seed=1');
    expect(statSync(join(output, 'runs', 'r=2_seed=0', 'result.json')).mtimeMs).toBe(finished);
    const seeded = readFileSync(join(output, 'report.md'), 'utf8');
    expect(seeded).toMatch(new RegExp(`\\| r=2 \\| 0,1 \\| ${analyticTrainable(2).toLocaleString('en-US')} \\| [\\d,]+ \\| [^|]+ ± [^|]+ \\|`));
    expect(seeded).not.toContain('| r=8 |');
    const s0 = JSON.parse(readFileSync(join(output, 'runs', 'r=2_seed=1', 'result.json'), 'utf8')) as SweepRunResult;
    const [a, b] = [results[0]?.bestValLoss ?? 0, s0.bestValLoss ?? 0];
    const mean = (a + b) / 2;
    const std = Math.abs(a - b) / Math.SQRT2;
    expect(seeded).toContain(`${mean.toFixed(4)} ± ${std.toFixed(4)}`);
    // The report itself is not rerun work: nothing to train, the report is still written.
    cap = captureOutput();
    expect(await sweep(['--config', config, '--grid', 'r=2,4', '--seeds', '0,1', '--output', output])).toBe(0);
    vi.restoreAllMocks();
    expect(cap.stderr()).toContain('4 already done, 0 to train');
  });

  it('checks the merge of a QLoRA run against its dequantized 4-bit base', async () => {
    const qlora = join(work, 'qlora.yaml');
    await writeFile(qlora, readFileSync(config, 'utf8').replace('method: lora', 'method: qlora').replace('max_steps: 4', 'max_steps: 2'));
    const output = join(work, 'sweep-qlora');
    const cap = captureOutput();
    expect(await sweep(['--config', qlora, '--grid', 'targets=attn+o', '--seeds', '0,1', '--output', output])).toBe(0);
    vi.restoreAllMocks();
    expect(cap.stderr()).toContain('(quantizing to 4-bit)');
    // The same after each run: nothing grows from run to run. Above the base by the 4-bit code
    // tables, made once per runtime when the merge check first dequantizes.
    const released = [...cap.stderr().matchAll(/live GPU memory after release (\d+) bytes \(the base: (\d+)\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(released).toHaveLength(2);
    expect(released[1]).toEqual(released[0]);
    const [live = 0, base = 0] = released[0] ?? [];
    expect(live - base).toBeGreaterThanOrEqual(0);
    expect(live - base).toBeLessThan(4096);
    const res = JSON.parse(readFileSync(join(output, 'runs', 'targets=attn+o_seed=0', 'result.json'), 'utf8')) as SweepRunResult;
    const s = DEMO_MODEL_SHAPE;
    const q = s.num_attention_heads * s.head_dim;
    const kv = s.num_key_value_heads * s.head_dim;
    // r = 16 (the default) on q, k, v and o of both layers.
    expect(res.trainableParams).toBe(s.num_hidden_layers * 16 * (s.hidden_size + q + 2 * (s.hidden_size + kv) + q + s.hidden_size));
    expect(res.mergeMaxAbsDiff).not.toBeNull();
    expect(res.mergeMaxAbsDiff ?? 1).toBeLessThanOrEqual(1e-4);
  });

  it('reads target groups and names a bad grid', () => {
    expect(expandTargets('attn+o')).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
    expect(expandTargets('attn+mlp')).toEqual(['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(expandTargets('q_proj+v_proj')).toEqual(['q_proj', 'v_proj']);
    expect(parseGrid('r=4,8')).toEqual({ key: 'r', values: [4, 8] });
    expect(() => parseGrid('rank=4')).toThrow('peft-ts sweep: --grid rank=4: expected a configuration key');
    expect(() => parseGrid('seed=1,2')).toThrow('use --seeds');
    expect(() => parseGrid('r=4,x')).toThrow('--grid r=4,x: r: expected numbers, got "x"');
  });

  it('refuses a grid value the configuration does not accept, before any training', async () => {
    await expect(sweep(['--config', config, '--grid', 'r=0,4', '--output', join(work, 'bad')])).rejects.toThrow('peft-ts sweep: --grid r=0: expected an integer >= 1');
    await expect(sweep(['--grid', 'r=4'])).rejects.toThrow('peft-ts sweep: --config is required');
  });
});
