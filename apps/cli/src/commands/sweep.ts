// `peft-ts sweep`: one training per grid point (rank, target modules, any numeric key) and seed,
// on one base model loaded once, run after run; each finished run is recorded so a rerun goes on
// where it stopped, and a report with a table and plots is written after every run.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat as statFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import { add, cast, createRuntime, noGrad, tidy, type Runtime } from '@peft-ts/tensor';
import { DenseLinear, loadModel, type CausalLM } from '@peft-ts/models/node';
import { type LoraModel } from '@peft-ts/lora';
import { loraDelta } from '@peft-ts/merge';
import { dequantize4bitGpu, Linear4bit } from '@peft-ts/nf4-quant/gpu';
import { BatchIterator } from '@peft-ts/data-alpaca';
import { batchLogits, checkInputFile, DEFAULT_CONFIG, evaluateLoss, modelLoadOptions, prepareFinetune, resolveFinetuneConfig, runFinetune, type FinetuneConfig } from '@peft-ts/trainer/node';
import { type Tensor } from '@peft-ts/tensor';
import { out, parse, UsageError } from '../args.js';
import { EXIT_CODES_HELP } from '../errors.js';
import { readConfigFile } from './train.js';
import { writeFileAtomic } from '../report/write-atomic.js';
import { sweepHtml, sweepMarkdown, type SweepMeta, type SweepRunResult } from '../report/sweep-report.js';

export const SWEEP_HELP = `Usage: peft-ts sweep --config <base.yaml> --grid <key=v1,v2,...> [--grid ...] [options]

Trains one adapter per point of the grid (and per seed), one after the other on one GPU, with
the base model loaded (and quantized) once and reused; each run's memory is released before the
next. Writes <output>/report.md and <output>/report.html (one self-contained page with inline
SVG plots), updated after every run. Running the same command again skips finished runs.

Options:
  --config <file>      the base training configuration (JSON or YAML, as for peft-ts train);
                       its output key is ignored
  --grid <key=values>  a configuration key and comma-separated values, repeatable:
                         r=4,8,16,32   alpha=16,32   lr=1e-4,2e-4   dropout=0,0.05
                         targets=attn,attn+o,attn+mlp,all-linear
                       target groups: attn = q_proj,k_proj,v_proj; o = o_proj;
                       mlp = gate_proj,up_proj,down_proj; or module names joined with +
  --seeds <list>       seeds to repeat every point with (default: the config's seed); the
                       table then shows mean ± std and the plots error bars
  --output <dir>       where runs and the report go (default ./sweep)

Per run: trainable parameters, adapter bytes, peak GPU memory, tokens/s, time per epoch, best
validation loss and perplexity with their step, the final adapter's validation loss, and a
merge check (max |logits with the adapter - logits with the adapter merged|; a 4-bit base is
dequantized for it, as the adapter saw it in training).

${EXIT_CODES_HELP}`;

const FLAGS = {
  config: { type: 'string' },
  grid: { type: 'string', multiple: true },
  seeds: { type: 'string' },
  output: { type: 'string' },
} as const;

/** Keys the grid may not vary: the base is loaded once, and the sweep owns outputs and seeds. */
const FIXED = new Set(['model', 'data', 'output', 'method', 'quantType', 'blocksize', 'doubleQuant', 'resume', 'overwrite', 'seed']);

const TARGET_GROUPS: Record<string, string[]> = {
  attn: ['q_proj', 'k_proj', 'v_proj'],
  o: ['o_proj'],
  mlp: ['gate_proj', 'up_proj', 'down_proj'],
};

/** A targets value of the grid as a config value: all-linear, or the modules of its +-joined parts. */
export function expandTargets(value: string): 'all-linear' | string[] {
  if (value === 'all-linear') return 'all-linear';
  const modules = value.split('+').flatMap((part) => TARGET_GROUPS[part] ?? [part]);
  return [...new Set(modules.filter((m) => m.length > 0))];
}

export interface GridAxis {
  key: keyof FinetuneConfig;
  values: (string | number)[];
}

function canonicalKey(key: string): string {
  return key.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `--grid r=4,8` as an axis; the key must be a configuration key the sweep may vary. */
export function parseGrid(spec: string): GridAxis {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new UsageError(`peft-ts sweep: --grid ${JSON.stringify(spec)}: expected key=value1,value2,... (e.g. r=4,8,16)`);
  const key = canonicalKey(spec.slice(0, eq).trim());
  if (!(key in DEFAULT_CONFIG)) throw new UsageError(`peft-ts sweep: --grid ${spec}: expected a configuration key (r, alpha, dropout, targets, lr, ...), got ${JSON.stringify(key)}`);
  if (FIXED.has(key)) throw new UsageError(`peft-ts sweep: --grid ${spec}: ${key} cannot vary in a sweep (${key === 'seed' ? 'use --seeds' : 'one base and output for all runs'})`);
  const values = spec
    .slice(eq + 1)
    .split(',')
    .map((v) => v.trim());
  if (values.some((v) => v === '')) throw new UsageError(`peft-ts sweep: --grid ${spec}: expected non-empty comma-separated values`);
  const numeric = typeof (DEFAULT_CONFIG as Record<string, unknown>)[key] === 'number' || key === 'maxSteps' || key === 'evalEvery' || key === 'earlyStoppingPatience' || key === 'saveEvery' || key === 'optimizerBudgetMb';
  return {
    key: key as keyof FinetuneConfig,
    values: values.map((v) => {
      if (!numeric) return v;
      const n = Number(v);
      if (!Number.isFinite(n)) throw new UsageError(`peft-ts sweep: --grid ${spec}: ${key}: expected numbers, got ${JSON.stringify(v)}`);
      return n;
    }),
  };
}

/** Every combination of the axes' values, the first axis varying slowest. */
export function gridPoints(axes: readonly GridAxis[]): Record<string, string | number>[] {
  let points: Record<string, string | number>[] = [{}];
  for (const axis of axes) points = points.flatMap((p) => axis.values.map((v) => ({ ...p, [axis.key]: v })));
  return points;
}

/** The configuration of one run: the base, the point's values and the seed. */
export function runConfig(base: Record<string, unknown>, source: string, point: Record<string, string | number>, seed: number, output: string): FinetuneConfig {
  const raw: Record<string, unknown> = { ...base, seed, output, overwrite: true, resume: null };
  for (const [k, v] of Object.entries(point)) raw[k] = k === 'targets' ? expandTargets(String(v)) : v;
  try {
    return resolveFinetuneConfig(raw, source);
  } catch (error) {
    if (error instanceof FormatError && error.field in point) throw new UsageError(`peft-ts sweep: --grid ${error.field}=${point[error.field]}: expected ${error.expected}`);
    throw error;
  }
}

export function runId(point: Record<string, string | number>, seed: number): string {
  return [...Object.entries(point).map(([k, v]) => `${k}=${v}`), `seed=${seed}`].join('_').replace(/[^A-Za-z0-9=+._-]/g, '-');
}

function configKey(config: FinetuneConfig): string {
  const { output: _output, overwrite: _overwrite, resume: _resume, ...rest } = config;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

/** Takes the adapter out of the shared base: every LoRA layer back to its base linear. */
function releaseAdapter(model: CausalLM, lora: LoraModel): void {
  const layers = lora.loraLayers();
  for (const name of [...lora.adapterNames]) lora.deleteAdapter(name);
  for (const layer of layers) model.setLinear(layer.name, layer.base);
}

/**
 * Logits with the adapter against logits with it merged, on one batch. Each adapted layer is
 * swapped for a dense one holding W + scale * B @ A (a 4-bit W dequantized first, as the adapter
 * saw it in training; a 16-bit W rounded back to its dtype, as a merge writes it), then put back:
 * the shared base is never written to.
 */
async function mergeCheck(model: CausalLM, lora: LoraModel, batch: Parameters<typeof batchLogits>[1]): Promise<{ diff: number | null; note: string | null }> {
  const name = lora.activeAdapter ?? 'default';
  const layers = lora.loraLayers();
  lora.train(false);
  const adapted = tidy(() => noGrad(() => batchLogits(model, batch)));
  const swapped: { layer: (typeof layers)[number]; dense: DenseLinear }[] = [];
  let merged: Tensor | null = null;
  try {
    for (const layer of layers) {
      const w = layer.adapters.get(name);
      if (!w) continue;
      const base = layer.base;
      let weight: Tensor;
      if (base instanceof DenseLinear) {
        const source = base.weight;
        weight = tidy(() => noGrad(() => {
          const sum = add(source.dtype === 'f32' ? source : cast(source, 'f32'), loraDelta(w.A, w.B, w.scale));
          return source.dtype === 'f32' ? sum : cast(sum, source.dtype);
        }));
      } else if (base instanceof Linear4bit) {
        weight = tidy(() => noGrad(() => add(dequantize4bitGpu(base.weight), loraDelta(w.A, w.B, w.scale))));
      } else {
        return { diff: null, note: `n/a (${layer.name}: a base layer of a kind that cannot be merged in memory)` };
      }
      weight.keep();
      const dense = new DenseLinear(layer.name, weight, base instanceof DenseLinear || base instanceof Linear4bit ? base.bias : null);
      model.setLinear(layer.name, dense);
      swapped.push({ layer, dense });
    }
    merged = tidy(() => noGrad(() => batchLogits(model, batch)));
    const [a, m] = [await adapted.toArray(), await merged.toArray()];
    let diff = 0;
    for (let i = 0; i < a.length; i += 1) diff = Math.max(diff, Math.abs((a[i] ?? 0) - (m[i] ?? 0)));
    return { diff, note: null };
  } finally {
    for (const { layer, dense } of swapped) {
      model.setLinear(layer.name, layer);
      // The bias belongs to the base layer: only the merged weight is this check's own.
      dense.weight.dispose();
    }
    adapted.dispose();
    merged?.dispose();
    lora.train(true);
  }
}

async function readCurves(dir: string): Promise<{ train: { step: number; loss: number }[]; val: { step: number; loss: number }[] }> {
  const text = await readFile(join(dir, 'metrics.jsonl'), 'utf8').catch(() => '');
  const train: { step: number; loss: number }[] = [];
  const val: { step: number; loss: number }[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const r = JSON.parse(line) as { type?: string; step?: number; loss?: number; valLoss?: number };
    if (r.type === 'train' && typeof r.step === 'number' && typeof r.loss === 'number') train.push({ step: r.step, loss: r.loss });
    if (r.type === 'eval' && typeof r.step === 'number' && typeof r.valLoss === 'number') val.push({ step: r.step, loss: r.valLoss });
  }
  return { train, val };
}

async function readResult(path: string): Promise<SweepRunResult | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as SweepRunResult;
  } catch {
    return null;
  }
}

/** The finite numbers of a result, so JSON keeps them (NaN becomes null). */
const finite = (v: number | null): number | null => (v !== null && Number.isFinite(v) ? v : null);

async function oneRun(rt: Runtime, model: CausalLM, config: FinetuneConfig, point: Record<string, string | number>, log: (line: string) => void): Promise<SweepRunResult> {
  const prepared = await prepareFinetune(config, { log });
  rt.resetPeak();
  const run = await runFinetune(rt, config, { log, prepared, base: model });
  try {
    const s = run.summary;
    const trainableParams = run.lora.trainableParametersSummary().trainable;
    const adapterBytes = (await statFile(join(s.adapterDir, 'adapter_model.safetensors'))).size;
    const tokensPerEpoch = run.train.reduce((a, e) => a + e.length, 0);
    const epochs = tokensPerEpoch > 0 ? s.tokens / tokensPerEpoch : 0;
    const heldOut = run.validation.length > 0 ? run.validation : run.train.slice(0, config.batchSize);
    const it = new BatchIterator(heldOut, { batchSize: config.batchSize, padId: run.tokenizer.padId, seed: 0, shuffle: false, maxLength: config.maxLength });
    const finalValLoss = run.validation.length > 0 ? (await evaluateLoss(run.model, it, { lora: run.lora })).loss : null;
    const merge = await mergeCheck(run.model, run.lora, it.batchAt(0, 0));
    const curves = await readCurves(config.output);
    return {
      id: runId(point, config.seed),
      point,
      seed: config.seed,
      configKey: configKey(config),
      trainableParams,
      adapterBytes,
      peakGpuBytes: s.peakGpuBytes,
      tokensPerSecond: s.tokens / Math.max(s.seconds, 1e-9),
      secondsPerEpoch: epochs > 0 ? s.seconds / epochs : 0,
      seconds: s.seconds,
      steps: s.steps,
      bestValLoss: finite(s.bestValLoss),
      bestStep: s.bestStep,
      finalValLoss: finite(finalValLoss),
      mergeMaxAbsDiff: merge.diff,
      mergeNote: merge.note,
      trainCurve: curves.train,
      valCurve: curves.val,
    };
  } finally {
    releaseAdapter(model, run.lora);
  }
}

export async function sweep(argv: string[]): Promise<number> {
  const { values, positionals } = parse('sweep', argv, FLAGS);
  if (values.help) {
    out(SWEEP_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`peft-ts sweep: unexpected argument ${JSON.stringify(positionals[0])} (use --config and --grid)`);
  if (typeof values.config !== 'string') throw new UsageError('peft-ts sweep: --config is required: expected a base training configuration (JSON or YAML)');
  const specs = Array.isArray(values.grid) ? values.grid : [];
  if (specs.length === 0) throw new UsageError('peft-ts sweep: --grid is required: expected key=value1,value2,... (e.g. --grid r=4,8,16)');
  const axes = specs.map(parseGrid);
  const repeated = axes.find((a, i) => axes.findIndex((b) => b.key === a.key) !== i);
  if (repeated) throw new UsageError(`peft-ts sweep: --grid ${repeated.key} is given twice; expected one --grid per key`);
  const output = resolve(typeof values.output === 'string' ? values.output : 'sweep');
  await checkInputFile(values.config, 'a configuration file (JSON or YAML)', '--config');
  const base = await readConfigFile(values.config);
  const baseConfig = resolveFinetuneConfig({ ...base, output: output }, values.config);
  let seeds = [baseConfig.seed];
  if (typeof values.seeds === 'string') {
    const parts = values.seeds.split(',').map((s) => s.trim());
    if (parts.some((s) => !/^\d+$/.test(s))) throw new UsageError(`peft-ts sweep: --seeds: expected comma-separated integers >= 0, got ${JSON.stringify(values.seeds)}`);
    seeds = [...new Set(parts.map(Number))];
  }
  // Every run's configuration is resolved before the GPU is touched: a bad grid value fails now.
  const plan = gridPoints(axes).flatMap((point) => seeds.map((seed) => ({ point, seed, dir: join(output, 'runs', runId(point, seed)) })));
  const runs = plan.map((p) => ({ ...p, config: runConfig(base, values.config as string, p.point, p.seed, p.dir) }));
  const meta: SweepMeta = { config: values.config, model: baseConfig.model, data: baseConfig.data, method: baseConfig.method, grid: Object.fromEntries(axes.map((a) => [a.key, a.values])), seeds };
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };

  const results: SweepRunResult[] = [];
  const todo: typeof runs = [];
  for (const r of runs) {
    const stored = await readResult(join(r.dir, 'result.json'));
    if (stored?.configKey === configKey(r.config)) results.push(stored);
    else {
      if (stored) log(`sweep: ${runId(r.point, r.seed)}: its configuration changed since it ran; running it again`);
      else if (existsSync(r.dir)) log(`sweep: ${runId(r.point, r.seed)}: did not finish before; starting it again`);
      todo.push(r);
    }
  }
  log(`sweep: ${runs.length} runs (${gridPoints(axes).length} grid points x ${seeds.length} seed${seeds.length > 1 ? 's' : ''}), ${results.length} already done, ${todo.length} to train; output ${output}`);
  const writeReport = async (): Promise<void> => {
    const ordered = runs.map((r) => results.find((x) => x.id === runId(r.point, r.seed))).filter((x): x is SweepRunResult => x !== undefined);
    await writeFileAtomic(join(output, 'report.md'), sweepMarkdown(meta, ordered));
    await writeFileAtomic(join(output, 'report.html'), sweepHtml(meta, ordered));
  };
  if (todo.length > 0) {
    const rt = await createRuntime({ seed: baseConfig.seed });
    try {
      log(`sweep: loading ${baseConfig.model} once for all runs${baseConfig.method === 'qlora' ? ' (quantizing to 4-bit)' : ''}`);
      const model = await loadModel(rt, baseConfig.model, await modelLoadOptions(baseConfig.model, baseConfig.method === 'qlora', { type: baseConfig.quantType, blocksize: baseConfig.blocksize, doubleQuant: baseConfig.doubleQuant }));
      const baseBytes = rt.memoryStats().liveBytes;
      try {
        for (const [i, r] of todo.entries()) {
          const id = runId(r.point, r.seed);
          log(`\nsweep: run ${i + 1} of ${todo.length}: ${id}`);
          const result = await oneRun(rt, model, r.config, r.point, log);
          await writeFileAtomic(join(r.dir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
          results.push(result);
          await writeReport();
          const live = rt.memoryStats().liveBytes;
          log(`sweep: ${id} done: best validation loss ${result.bestValLoss?.toFixed(4) ?? 'n/a'}, merge check ${result.mergeMaxAbsDiff?.toExponential(2) ?? 'n/a'}; live GPU memory after release ${live} bytes (the base: ${baseBytes})`);
        }
      } finally {
        model.dispose();
      }
    } finally {
      rt.destroy();
    }
  }
  await writeReport();
  out(`sweep: ${runs.length} runs; report: ${join(output, 'report.md')} and ${join(output, 'report.html')}`);
  return 0;
}
