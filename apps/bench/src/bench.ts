// Benchmark harness: runs the named suites on the GPU peft-ts picks and writes JSON + markdown.
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { formatDeviceInfo, getDevice, type DeviceInfo } from '@peft-ts/tensor';

export interface BenchResult {
  suite: string;
  name: string;
  value: number;
  unit: string;
  detail?: string;
}

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function markdown(info: DeviceInfo, results: BenchResult[]): string {
  const rows = results.map((r) => `| ${r.suite} | ${r.name} | ${r.value.toPrecision(4)} | ${r.unit} | ${r.detail ?? ''} |`);
  return [`# peft-ts benchmark`, '', '```', formatDeviceInfo(info), '```', '', '| suite | case | value | unit | detail |', '| --- | --- | --- | --- | --- |', ...rows, ''].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const outIndex = argv.indexOf('--out');
  const outDir = outIndex >= 0 ? argv[outIndex + 1] : 'bench-results';
  if (outDir === undefined) throw new Error('--out needs a directory');
  const gpu = await getDevice();
  try {
    process.stdout.write(`${formatDeviceInfo(gpu.info)}\n`);
    const results: BenchResult[] = [];
    mkdirSync(outDir, { recursive: true });
    const stamp = new Date().toISOString();
    writeAtomic(join(outDir, 'bench.json'), `${JSON.stringify({ date: stamp, device: gpu.info, results }, null, 2)}\n`);
    writeAtomic(join(outDir, 'bench.md'), markdown(gpu.info, results));
    process.stdout.write(`wrote ${join(outDir, 'bench.json')} and bench.md (${results.length} results)\n`);
  } finally {
    gpu.destroy();
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
