// Benchmark harness: runs the chosen suites on the GPU peft-ts picks and writes JSON + markdown,
// each result tagged with the adapter it was measured on.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createRuntime, formatDeviceInfo, type DeviceInfo, type Runtime } from '@peft-ts/tensor';
import type { BenchResult } from './suites/types.js';
import { runMatmulBench } from './suites/matmul.js';
import { runAttentionBench } from './suites/attention.js';
import { runOptimBench } from './suites/optim.js';
import { runNf4Bench } from './suites/nf4.js';

type Suite = (rt: Runtime, opts: { quick: boolean }) => Promise<BenchResult[]>;

const SUITES: Record<string, Suite> = {
  matmul: runMatmulBench,
  attention: runAttentionBench,
  optim: runOptimBench,
  nf4: runNf4Bench,
};

const HELP = `Usage: bench [--suite ${Object.keys(SUITES).join(',')}|all] [--quick] [--out DIR]

Runs kernel and end-to-end benchmarks and writes DIR/bench.json and DIR/bench.md (default
bench-results). --quick uses small shapes, for a smoke run on a software adapter.
`;

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function markdown(info: DeviceInfo, results: BenchResult[], date: string): string {
  const rows = results.map((r) => `| ${r.suite} | ${r.name} | ${r.value.toPrecision(4)} | ${r.unit} | ${r.detail ?? ''} |`);
  return [`# peft-ts benchmark (${date})`, '', '```', formatDeviceInfo(info), '```', '', '| suite | case | value | unit | detail |', '| --- | --- | --- | --- | --- |', ...rows, ''].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { suite: { type: 'string' }, quick: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const names = !values.suite || values.suite === 'all' ? Object.keys(SUITES) : values.suite.split(',');
  const unknown = names.filter((n) => !(n in SUITES));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown suite ${unknown.join(', ')}; have ${Object.keys(SUITES).join(', ')}\n`);
    return 2;
  }
  const outDir = values.out ?? 'bench-results';
  const rt = await createRuntime();
  try {
    process.stdout.write(`${formatDeviceInfo(rt.gpu.info)}\n\n`);
    const results: BenchResult[] = [];
    for (const name of names) {
      const suite = SUITES[name];
      if (!suite) continue;
      process.stdout.write(`suite ${name}${values.quick ? ' (quick)' : ''}\n`);
      for (const r of await suite(rt, { quick: values.quick === true })) {
        results.push(r);
        process.stdout.write(`  ${r.name}: ${r.value.toPrecision(4)} ${r.unit}${r.detail ? ` (${r.detail})` : ''}\n`);
      }
    }
    mkdirSync(outDir, { recursive: true });
    const date = new Date().toISOString();
    writeAtomic(join(outDir, 'bench.json'), `${JSON.stringify({ date, device: rt.gpu.info, quick: values.quick === true, results }, null, 2)}\n`);
    writeAtomic(join(outDir, 'bench.md'), markdown(rt.gpu.info, results, date));
    process.stdout.write(`\nwrote ${join(outDir, 'bench.json')} and bench.md (${results.length} results)\n`);
  } finally {
    rt.destroy();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
