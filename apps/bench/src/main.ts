// The benchmark harness: runs the chosen suites on the GPU peft-ts picks and writes JSON +
// markdown, each result tagged with the adapter it was measured on; compares with a baseline run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRuntime, formatDeviceInfo, type Runtime } from '@peft-ts/tensor';
import type { BenchResult, SuiteOptions } from './suites/types.js';
import { runMatmulBench } from './suites/matmul.js';
import { runAttentionBench } from './suites/attention.js';
import { runOptimBench } from './suites/optim.js';
import { runNf4Bench } from './suites/nf4.js';
import { runTrainBench, TRAIN_CASES } from './suites/train.js';
import { runGenerateBench } from './suites/generate.js';
import { COMPILE_CASES, runCompileBench } from './suites/compile.js';
import { compareRuns, formatComparison, type BenchRun } from './compare.js';

type Suite = (rt: Runtime, opts: SuiteOptions) => Promise<BenchResult[]>;

const SUITES: Record<string, Suite> = {
  matmul: runMatmulBench,
  attention: runAttentionBench,
  optim: runOptimBench,
  nf4: runNf4Bench,
  train: runTrainBench,
  generate: runGenerateBench,
  compile: runCompileBench,
};

/** Bumped whenever a field of bench.json changes meaning. */
export const SCHEMA_VERSION = 2;

const HELP = `Usage: peft-ts-bench [--suite ${Object.keys(SUITES).join(',')}|all] [--case NAMES] [--quick]
                     [--out DIR] [--compare BASELINE.json [--max-regression 0.15]]

Runs kernel and end-to-end benchmarks on the GPU peft-ts picks and writes DIR/bench.json and
DIR/bench.md (default DIR: bench-results). Every timed result is a median over its iterations,
with min, max and the count.

  --suite S            suites to run (default all)
  --case NAMES         train cases, comma-separated names or prefixes (e.g. "small", "tiny llama");
                       default: every case that suits the device (the real-size ones need a GPU)
  --quick              fewer iterations and small kernel shapes, for a smoke run
  --compare FILE       compare with an earlier bench.json from the same adapter: prints ratios
                       and exits 1 when a result is worse than the baseline by more than
                       --max-regression (default 0.15, i.e. 15%)
  --against FILE       with --compare: compare that bench.json instead of running anything

Train cases: ${TRAIN_CASES.map((c) => c.name).join('; ')}.
Compile cases (first-step pipeline compiles on a fresh device): ${COMPILE_CASES.map((c) => c.name).join('; ')}.

Exit codes: 0 done, 1 a regression past the threshold or a failure, 2 usage error, 3 bad baseline file.
`;

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function gitCommit(): string | null {
  if (process.env.PEFT_TS_COMMIT) return process.env.PEFT_TS_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    return null;
  }
}

function webgpuVersion(): string | null {
  try {
    const req = createRequire(import.meta.url);
    const main = req.resolve('webgpu');
    const pkg = JSON.parse(readFileSync(join(dirname(main), 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? null;
  } catch {
    return null;
  }
}

const fmt = (v: number): string => (Math.abs(v) >= 1e6 ? v.toExponential(3) : v.toPrecision(4));

function markdown(run: BenchRun): string {
  const rows = run.results.map((r) => {
    const spread = r.min !== undefined && r.max !== undefined ? `${fmt(r.min)} – ${fmt(r.max)}` : '';
    return `| ${r.suite} | ${r.name} | ${fmt(r.value)} | ${r.unit} | ${spread} | ${r.iterations ?? ''} | ${r.detail ?? ''} |`;
  });
  return [
    `# peft-ts benchmark (${run.date})`,
    '',
    `commit ${run.commit ?? 'unknown'}, Node ${run.node}, webgpu ${run.webgpu ?? 'unknown'}`,
    '',
    '```',
    formatDeviceInfo(run.device),
    '```',
    '',
    '| suite | case | median | unit | min – max | n | detail |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

function readBaseline(path: string): BenchRun {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new BaselineError(`${path}: cannot read it as JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const run = parsed as Partial<BenchRun>;
  if (typeof run !== 'object' || run === null || !Array.isArray(run.results) || typeof run.device !== 'object') {
    throw new BaselineError(`${path}: expected a bench.json with "device" and "results"`);
  }
  return run as BenchRun;
}

class BaselineError extends Error {}

/** Runs the benchmark command line; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        suite: { type: 'string' },
        case: { type: 'string' },
        quick: { type: 'boolean' },
        out: { type: 'string' },
        compare: { type: 'string' },
        against: { type: 'string' },
        'max-regression': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`peft-ts-bench: ${error instanceof Error ? error.message : String(error)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const names = !values.suite || values.suite === 'all' ? Object.keys(SUITES) : values.suite.split(',');
  const unknown = names.filter((n) => !(n in SUITES));
  if (unknown.length > 0) {
    process.stderr.write(`peft-ts-bench: unknown suite ${unknown.join(', ')}; have ${Object.keys(SUITES).join(', ')}\n`);
    return 2;
  }
  const maxRegression = values['max-regression'] === undefined ? 0.15 : Number(values['max-regression']);
  if (!Number.isFinite(maxRegression) || maxRegression < 0) {
    process.stderr.write(`peft-ts-bench: --max-regression expects a number >= 0 (a fraction, e.g. 0.15); got "${values['max-regression']}"\n`);
    return 2;
  }
  if (values.case) {
    const caseNames = [...TRAIN_CASES, ...COMPILE_CASES].map((c) => c.name);
    const known = values.case.split(',').filter((f) => caseNames.some((c) => c === f || c.startsWith(`${f} `)));
    if (known.length !== values.case.split(',').length) {
      process.stderr.write(`peft-ts-bench: --case "${values.case}" matches no train or compile case; have: ${caseNames.join('; ')}\n`);
      return 2;
    }
  }
  let baseline: BenchRun | null = null;
  try {
    if (values.compare) baseline = readBaseline(values.compare);
  } catch (error) {
    if (error instanceof BaselineError) {
      process.stderr.write(`peft-ts-bench: --compare ${error.message}\n`);
      return 3;
    }
    throw error;
  }
  if (values.against !== undefined) {
    if (!baseline) {
      process.stderr.write('peft-ts-bench: --against needs --compare BASELINE.json\n');
      return 2;
    }
    let current: BenchRun;
    try {
      current = readBaseline(values.against);
    } catch (error) {
      if (error instanceof BaselineError) {
        process.stderr.write(`peft-ts-bench: --against ${error.message}\n`);
        return 3;
      }
      throw error;
    }
    const cmp = compareRuns(baseline, current, maxRegression);
    process.stdout.write(`${formatComparison(cmp, maxRegression)}\n`);
    return cmp.error ? 3 : cmp.regressions > 0 ? 1 : 0;
  }
  const outDir = values.out ?? 'bench-results';
  const rt = await createRuntime();
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    log(formatDeviceInfo(rt.gpu.info));
    log('');
    const results: BenchResult[] = [];
    const run: BenchRun = {
      schemaVersion: SCHEMA_VERSION,
      date: new Date().toISOString(),
      commit: gitCommit(),
      node: process.version,
      webgpu: webgpuVersion(),
      device: rt.gpu.info,
      quick: values.quick === true,
      results,
    };
    mkdirSync(outDir, { recursive: true });
    // Saved after every case, so a run stopped part-way still leaves what it measured.
    const save = (): void => {
      writeAtomic(join(outDir, 'bench.json'), `${JSON.stringify(run, null, 2)}\n`);
      writeAtomic(join(outDir, 'bench.md'), markdown(run));
    };
    const show = (r: BenchResult): void => {
      const spread = r.min !== undefined && r.max !== undefined ? ` [${fmt(r.min)} – ${fmt(r.max)}, n=${r.iterations ?? '?'}]` : '';
      log(`  ${r.name}: ${fmt(r.value)} ${r.unit}${spread}${r.detail ? ` (${r.detail})` : ''}`);
    };
    for (const name of names) {
      const suite = SUITES[name];
      if (!suite) continue;
      log(`suite ${name}${values.quick ? ' (quick)' : ''}`);
      let emitted = 0;
      const emit = (rs: BenchResult[]): void => {
        for (const r of rs) show(r);
        results.push(...rs);
        emitted += rs.length;
        save();
      };
      const all = await suite(rt, { quick: values.quick === true, ...(values.case ? { cases: values.case } : {}), log, emit });
      // Suites that do not emit as they go hand everything over at the end.
      if (emitted === 0) emit(all);
    }
    save();
    log(`\nwrote ${join(outDir, 'bench.json')} and bench.md (${results.length} results)`);
    if (baseline) {
      const cmp = compareRuns(baseline, run, maxRegression);
      log('');
      log(formatComparison(cmp, maxRegression));
      if (cmp.error) return 3;
      if (cmp.regressions > 0) return 1;
    }
  } finally {
    rt.destroy();
  }
  return 0;
}
