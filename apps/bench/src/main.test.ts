// The bench command end to end on the tiny train case: the JSON it writes, and --compare gating
// on a baseline that claims the same work ran twice as fast.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from './main.js';
import { compareRuns, type BenchRun } from './compare.js';

const dir = mkdtempSync(join(tmpdir(), 'peft-ts-bench-'));

async function bench(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    return { code: await main(argv), out };
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
}

describe('peft-ts-bench', () => {
  let run: BenchRun;
  beforeAll(async () => {
    const r = await bench(['--suite', 'train', '--case', 'tiny llama', '--quick', '--out', join(dir, 'a')]);
    expect(r.code, r.out).toBe(0);
    run = JSON.parse(readFileSync(join(dir, 'a', 'bench.json'), 'utf8')) as BenchRun;
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one train step of the tiny Llama with its metadata, median, spread and counts', () => {
    expect(run.schemaVersion).toBe(2);
    expect(run.node).toBe(process.version);
    expect(run.device.description.length).toBeGreaterThan(0);
    const step = run.results.find((r) => r.name === 'tiny llama lora step');
    expect(step?.unit).toBe('ms');
    expect(step?.better).toBe('lower');
    expect(step?.iterations).toBeGreaterThanOrEqual(3);
    expect(step?.min).toBeLessThanOrEqual(step?.value ?? NaN);
    expect(step?.max).toBeGreaterThanOrEqual(step?.value ?? NaN);
    // The same seeded weights and tokens every run: a random 256-token vocabulary starts near ln(256) = 5.545.
    expect(step?.detail).toMatch(/step-0 loss 5\.5\d{3}/);
    const tput = run.results.find((r) => r.name === 'tiny llama lora throughput');
    expect(tput?.value).toBeCloseTo((2 * 32 * 1000) / (step?.value ?? NaN), 6);
    const counts = run.results.find((r) => r.name === 'tiny llama lora per step');
    expect(counts?.value).toBeGreaterThan(50);
    expect(counts?.detail).toMatch(/submits, 2\.0 readbacks/);
    const peak = run.results.find((r) => r.name === 'tiny llama lora peak memory');
    expect(peak?.value).toBeGreaterThan(100_000);
  });

  it('--compare exits 1 on an injected 2x slowdown and 0 on the same numbers, from files or while running', async () => {
    // The measured run with every timing doubled (and every rate halved): a 2x slowdown.
    const slower: BenchRun = {
      ...run,
      results: run.results.map((r) => (r.unit === 'ms' ? { ...r, value: r.value * 2 } : r.unit === 'tok/s' ? { ...r, value: r.value / 2 } : r)),
    };
    const slowFile = join(dir, 'slower.json');
    writeFileSync(slowFile, JSON.stringify(slower));
    const baseline = join(dir, 'a', 'bench.json');
    const slow = await bench(['--compare', baseline, '--against', slowFile]);
    expect(slow.code, slow.out).toBe(1);
    expect(slow.out).toMatch(/\| train: tiny llama lora step \| .* \| 2\.00x worse \*\*REGRESSION\*\* \|/);
    expect(slow.out).toMatch(/\| train: tiny llama lora throughput \| .* \| 2\.00x worse \*\*REGRESSION\*\* \|/);
    expect(slow.out).toMatch(/2 result\(s\) worse than the baseline by more than 15%/);
    // Within a looser threshold the same slowdown passes.
    expect((await bench(['--compare', baseline, '--against', slowFile, '--max-regression', '1.5'])).code).toBe(0);
    // Compared with itself nothing regresses.
    const same = await bench(['--compare', baseline, '--against', baseline]);
    expect(same.code, same.out).toBe(0);
    expect(same.out).toMatch(/\| train: tiny llama lora step \| .* \| the same \|/);
    // While running, the table comes after the run (timings vary; a loose threshold keeps this exit code fixed).
    const live = await bench(['--suite', 'train', '--case', 'tiny llama', '--quick', '--out', join(dir, 'c'), '--compare', baseline, '--max-regression', '1000']);
    expect(live.code, live.out).toBe(0);
    expect(live.out).toMatch(/\| train: tiny llama lora step \| /);
  }, 300_000);

  it('refuses to compare results from another adapter, and a baseline that is not a bench.json', async () => {
    const other: BenchRun = { ...run, device: { ...run.device, description: 'another GPU' } };
    const cmp = compareRuns(other, run, 0.15);
    expect(cmp.error).toMatch(/different adapters/);
    expect(cmp.rows).toHaveLength(0);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"results": 3}');
    const r = await bench(['--suite', 'train', '--case', 'tiny llama', '--compare', bad]);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/bad\.json: expected a bench\.json with "device" and "results"/);
  });

  it('rejects an unknown case or suite as a usage error', async () => {
    expect((await bench(['--case', 'huge'])).code).toBe(2);
    expect((await bench(['--suite', 'nope'])).code).toBe(2);
    expect((await bench(['--max-regression', 'x'])).code).toBe(2);
  });
});
