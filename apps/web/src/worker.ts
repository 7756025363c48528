// The training worker: the GPU runtime, the model, the data and the training loop of
// @peft-ts/trainer (the one `peft-ts train` runs), reading the model from fetched or picked
// files and keeping checkpoints in OPFS, so that the page's thread only draws.
import { createRuntime, type KernelSpec, type Runtime } from '@peft-ts/tensor';
import { blobSource, memoryTree, readJson, type ByteSource, type FileTree } from '@peft-ts/safetensors';
import { BatchIterator, IGNORE_INDEX, previewMasks } from '@peft-ts/data-alpaca';
import { LoraModel } from '@peft-ts/lora';
import { loadModelFrom } from '@peft-ts/models';
import {
  evaluateLoss,
  finetune,
  generateText,
  modelLoadOptionsFrom,
  prepareFinetuneFrom,
  promptIds,
  runIdentityFrom,
  type FinetuneConfig,
  type FinetuneRun,
  type PreparedData,
  type RunIdentity,
} from '@peft-ts/trainer';
import { opfsTree, type OpfsTree } from './opfs.js';
import { finetuneConfig, maskedRuns, TRAINED_CLOSE, TRAINED_OPEN } from './settings.js';
import type { CurvePoint, DataChoice, FromWorker, ModelChoice, PreviewExample, ToWorker } from './protocol.js';

interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<ToWorker>) => void): void;
}
const scope = self as unknown as WorkerScope;
const post = (message: FromWorker, transfer: Transferable[] = []) => scope.postMessage(message, transfer);
const log = (line: string) => post({ type: 'log', line });

/** Where the run keeps its checkpoints, metrics and a copy of a picked dataset. */
const RUN_DIR = 'peft-ts/run';
const SAVED_DATA = 'data.json';
/** The loss curves up to the newest checkpoint, so that the chart survives a reload too. */
const CURVES = 'curves.json';
/**
 * The kernels an earlier run compiled on this browser's adapter, kept apart from the run (a fresh
 * run clears that folder): the next load compiles them in the background while the user looks
 * at the data, so the first step does not wait for shader compilation.
 */
const KERNELS_DIR = 'peft-ts/kernels';
const KERNELS_FILE = 'kernels.json';

interface Loaded {
  config: FinetuneConfig;
  model: FileTree;
  output: OpfsTree;
  prepared: PreparedData;
  identity: RunIdentity;
}

let runtime: Runtime | null = null;
let loaded: Loaded | null = null;
let run: FinetuneRun | null = null;
let stop: AbortController | null = null;
let precompiling: Promise<void> | null = null;

/** Starts compiling the kernel list saved on this adapter, if any; errors are logged, never thrown. */
function precompileSaved(rt: Runtime): Promise<void> {
  return (async () => {
    const source = await (await opfsTree(KERNELS_DIR)).open(KERNELS_FILE);
    if (!source) return;
    const saved = JSON.parse(new TextDecoder().decode(await source.read(0, source.size))) as { adapter?: string; kernels?: KernelSpec[] };
    if (saved.adapter !== rt.gpu.info.description || !Array.isArray(saved.kernels)) return;
    const r = await rt.precompile(saved.kernels);
    log(`precompiled ${r.created} kernels (${r.skipped} already compiled) in ${(r.ms / 1000).toFixed(1)} s, in the background`);
    post({ type: 'precompiled', created: r.created, ms: r.ms });
  })().catch((error: unknown) => log(`precompile skipped: ${message(error)}`));
}

/** Keeps the list of kernels compiled so far for the next load. */
async function saveKernels(rt: Runtime): Promise<void> {
  await (await opfsTree(KERNELS_DIR)).write(KERNELS_FILE, JSON.stringify({ adapter: rt.gpu.info.description, kernels: rt.compiledKernels() }));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function device(): Promise<Runtime> {
  if (runtime) return runtime;
  if (!('gpu' in navigator)) throw new Error('This browser has no WebGPU (navigator.gpu): use a current Chrome, Edge or Firefox, or Safari 26');
  runtime = await createRuntime({ seed: 0 });
  const info = runtime.gpu.info;
  post({
    type: 'device',
    device: { description: info.description, software: info.isSoftware, subgroupSize: info.subgroupMinSize ?? null, features: [...info.features] },
  });
  return runtime;
}

/** The demo model's files, fetched from the site beside the page (listed in demo/manifest.json). */
async function demoModel(): Promise<FileTree> {
  const base = new URL('demo/', siteRoot());
  const manifest = (await (await fetch(new URL('manifest.json', base))).json()) as { model: { dir: string; files: { name: string }[] } };
  const files = new Map<string, Blob>();
  for (const { name } of manifest.model.files) {
    const response = await fetch(new URL(`${manifest.model.dir}/${name}`, base));
    if (!response.ok) throw new Error(`demo model: ${name}: HTTP ${response.status}`);
    files.set(name, await response.blob());
  }
  return memoryTree('demo-model', files);
}

async function demoDataset(): Promise<ByteSource> {
  const url = new URL('demo/example-alpaca.json', siteRoot());
  const response = await fetch(url);
  if (!response.ok) throw new Error(`example dataset: HTTP ${response.status}`);
  return blobSource(await response.blob(), 'example-alpaca.json');
}

/** The folder the page was served from (the worker's own script sits in assets/ below it). */
function siteRoot(): URL {
  return new URL(/* @vite-ignore */ '..', import.meta.url);
}

async function modelTree(choice: ModelChoice): Promise<FileTree> {
  if (choice.kind === 'demo') return demoModel();
  return memoryTree(choice.name, new Map(choice.files.map(({ path, file }) => [path, file])));
}

async function dataSource(choice: DataChoice, output: OpfsTree): Promise<ByteSource> {
  if (choice.kind === 'demo') return demoDataset();
  if (choice.kind === 'saved') {
    const saved = await output.open(SAVED_DATA);
    if (!saved) throw new Error('Data: the dataset of the saved run is gone from this browser\'s storage; choose the file again');
    return saved;
  }
  // A copy beside the checkpoints, so that a reload can resume without asking for the file again.
  await output.write(SAVED_DATA, new Uint8Array(await choice.file.arrayBuffer()));
  return blobSource(choice.file, choice.file.name);
}

function preview(prepared: PreparedData, count: number): PreviewExample[] {
  return prepared.split.train.slice(0, count).map((example) => ({
    source: example.source ? `${example.source.file}:${example.source.line}` : 'example',
    runs: maskedRuns(previewMasks(example, prepared.tokenizer, { open: TRAINED_OPEN, close: TRAINED_CLOSE })),
    tokens: example.length,
    trainedTokens: example.labels.filter((l, t) => t > 0 && l !== IGNORE_INDEX).length,
  }));
}

async function sha256(parts: (string | Uint8Array)[]): Promise<string> {
  const encoder = new TextEncoder();
  const chunks = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  const digest = await crypto.subtle.digest('SHA-256', all);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * What a checkpoint is checked against before a resume: the model (its config.json and the
 * names and sizes of its files) and the data (every byte), so that a reload with another model
 * or dataset starts afresh instead of continuing a different run.
 */
async function runIdentity(config: FinetuneConfig, model: FileTree, data: ByteSource): Promise<RunIdentity> {
  const names = await model.list();
  const sizes: string[] = [];
  for (const name of names) sizes.push(`${name}:${(await model.open(name))?.size ?? 0}`);
  const configJson = await model.open('config.json');
  const modelPrint = await sha256([configJson ? await configJson.read(0, configJson.size) : '', sizes.join('\n')]);
  const dataPrint = await sha256([await data.read(0, data.size)]);
  return runIdentityFrom(config, { model: modelPrint, data: dataPrint });
}

async function modelSummary(tree: FileTree): Promise<string> {
  const c = (await readJson(tree, 'config.json')) as Record<string, unknown>;
  const arch = Array.isArray(c.architectures) ? String(c.architectures[0]) : String(c.model_type);
  return `${tree.name}: ${arch}, ${String(c.num_hidden_layers)} layers, hidden ${String(c.hidden_size)}, vocab ${String(c.vocab_size)}`;
}

async function latestCheckpoint(output: OpfsTree): Promise<number | null> {
  const steps = (await output.list())
    .map((name) => /^checkpoint-(\d+)\/trainer_state\.json$/.exec(name)?.[1])
    .filter((s): s is string => s !== undefined)
    .map(Number);
  return steps.length > 0 ? Math.max(...steps) : null;
}

async function savedCurves(output: OpfsTree, step: number): Promise<{ train: CurvePoint[]; validation: CurvePoint[] }> {
  const source = await output.open(CURVES);
  if (!source) return { train: [], validation: [] };
  const curves = JSON.parse(new TextDecoder().decode(await source.read(0, source.size))) as { train: CurvePoint[]; validation: CurvePoint[] };
  const upTo = (points: CurvePoint[]) => points.filter((p) => p.step <= step);
  return { train: upTo(curves.train), validation: upTo(curves.validation) };
}

async function load(m: Extract<ToWorker, { type: 'load' }>): Promise<void> {
  const rt = await device();
  precompiling ??= precompileSaved(rt);
  dropTrained();
  const output = await opfsTree(RUN_DIR);
  const model = await modelTree(m.model);
  const data = await dataSource(m.data, output);
  const config = finetuneConfig(m.settings, model.name, data.name, RUN_DIR);
  const prepared = await prepareFinetuneFrom(config, { model, data }, { log });
  const identity = await runIdentity(config, model, data);
  loaded = { config, model, output, prepared, identity };
  const step = await latestCheckpoint(output);
  const total = config.maxSteps ?? 0;
  const curves = step !== null ? await savedCurves(output, step) : null;
  post({
    type: 'loaded',
    model: { name: model.name, summary: await modelSummary(model), trainable: `${config.method === 'qlora' ? 'QLoRA' : 'LoRA'} r=${config.r} on ${config.targets === 'all-linear' ? 'every linear layer' : config.targets.join(', ')}` },
    data: { name: data.name, examples: prepared.split.train.length + prepared.split.validation.length, train: prepared.split.train.length, validation: prepared.split.validation.length, preview: preview(prepared, 3) },
    totalSteps: total,
    checkpoint: step !== null && step < total && curves ? { step, ...curves } : null,
    finished: (step === null || step >= total) && (await output.open('adapter/adapter_model.safetensors')) !== null,
  });
}

/** Everything in the run's folder but the saved dataset: a fresh run starts from nothing. */
async function clearRun(output: OpfsTree): Promise<void> {
  for (const name of new Set((await output.list()).map((n) => n.split('/')[0] ?? n))) if (name !== SAVED_DATA) await output.remove(name);
}

async function train(resume: boolean): Promise<void> {
  if (!loaded) throw new Error('Train: load a model and data first');
  const rt = await device();
  const { config, model: modelFiles, output, prepared, identity } = loaded;
  if (!resume) await clearRun(output);
  dropTrained();
  const started = performance.now();
  const model = await loadModelFrom(rt, modelFiles, await modelLoadOptionsFrom(modelFiles, config.method === 'qlora', { type: config.quantType, blocksize: config.blocksize, doubleQuant: config.doubleQuant }));
  log(`model loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  // Kernels compiling since the page loaded the data are waited for here, not at their first dispatch.
  await precompiling;
  stop = new AbortController();
  const stepTimes: number[] = [];
  const curves = resume ? await savedCurves(output, (await latestCheckpoint(output)) ?? 0) : { train: [], validation: [] };
  const begun = performance.now();
  let firstStepEnd: number | null = null;
  let last = begun;
  let lastTokens: number | null = null;
  try {
    run = await finetune(rt, config, {
      model,
      prepared,
      store: output,
      resume: resume ? 'latest' : null,
      identity,
      log,
      signal: stop.signal,
      callbacks: {
        onStepEnd: (s) => {
          // The trainer reads the loss back, so this is the step's wall time, shader compilation included.
          const now = performance.now();
          firstStepEnd ??= now;
          stepTimes.push(now - last);
          curves.train.push({ step: s.step, value: s.loss });
          // This step's rate (the trainer's own is averaged since the run started, compilation included).
          const rate = lastTokens === null ? s.tokensPerSecond : (s.tokens - lastTokens) / Math.max(1e-9, (now - last) / 1000);
          lastTokens = s.tokens;
          post({ type: 'step', step: s.step, totalSteps: config.maxSteps ?? s.step, loss: s.loss, lr: s.lr, tokensPerSecond: rate, seconds: s.elapsedSeconds, stepMs: now - last, sinceStartMs: now - begun });
          last = performance.now();
        },
        onEvaluate: (e) => {
          post({ type: 'eval', step: e.step, loss: e.valLoss });
          curves.validation.push({ step: e.step, value: e.valLoss });
          last = performance.now();
        },
        onSave: async (_where, step) => {
          await output.write(CURVES, JSON.stringify(curves));
          await saveKernels(rt);
          post({ type: 'saved', step });
          last = performance.now();
        },
      },
    });
  } catch (error) {
    model.dispose();
    throw error;
  }
  await saveKernels(rt);
  const s = run.summary;
  const steady = stepTimes.slice(1);
  post({
    type: 'done',
    steps: s.steps,
    seconds: s.seconds,
    finalLoss: s.finalLoss,
    bestValLoss: s.bestValLoss,
    interrupted: s.interrupted,
    firstStepMs: stepTimes[0] ?? null,
    startupMs: firstStepEnd === null ? null : firstStepEnd - begun,
    meanStepMs: steady.length > 0 ? steady.reduce((a, b) => a + b, 0) / steady.length : null,
  });
}

/** What evaluation and generation need of a trained run. */
type Trained = Pick<FinetuneRun, 'model' | 'lora' | 'tokenizer' | 'validation'>;
/** A finished run's adapter read back from the browser's storage after a reload. */
let restoredRun: Trained | null = null;

function dropTrained(): void {
  run?.model.dispose();
  run = null;
  restoredRun?.model.dispose();
  restoredRun = null;
}

/** The run trained in this page, else the finished one in storage (its model loaded with the saved adapter). */
async function trained(): Promise<Trained> {
  if (run) return run;
  if (restoredRun) return restoredRun;
  if (!loaded) throw new Error('load a model and data first');
  const adapter = await opfsTree(`${RUN_DIR}/adapter`);
  if (!(await adapter.open('adapter_model.safetensors'))) throw new Error('train the adapter first');
  const rt = await device();
  const { config, model: modelFiles, prepared } = loaded;
  const model = await loadModelFrom(rt, modelFiles, await modelLoadOptionsFrom(modelFiles, config.method === 'qlora', { type: config.quantType, blocksize: config.blocksize, doubleQuant: config.doubleQuant }));
  const lora = new LoraModel(model);
  await lora.loadAdapterFrom(adapter);
  log('the finished run\'s adapter was loaded from this browser\'s storage');
  restoredRun = { model, lora, tokenizer: prepared.tokenizer, validation: prepared.split.validation };
  return restoredRun;
}

async function evaluate(): Promise<void> {
  const r = await trained();
  const c = loaded?.config;
  if (!c) throw new Error('Evaluate: load a model and data first');
  const batches = new BatchIterator(r.validation, { batchSize: c.batchSize, padId: r.tokenizer.padId, seed: c.seed, shuffle: false, maxLength: c.maxLength });
  const result = await evaluateLoss(r.model, { numBatches: (e) => batches.numBatches(e), batchAt: (e, i) => batches.batchAt(e, i) }, { lora: r.lora });
  post({ type: 'evaluated', loss: result.loss, tokens: result.tokens });
}

async function generate(m: Extract<ToWorker, { type: 'generate' }>): Promise<void> {
  const r = await trained();
  r.lora.train(false);
  await generateText(r.model, r.tokenizer, promptIds(r.tokenizer, 'alpaca', m.instruction, m.input), {
    maxNewTokens: m.maxNewTokens,
    onText: (delta) => post({ type: 'text', delta, done: false }),
  });
  post({ type: 'text', delta: '', done: true });
}

/** The adapter the run wrote (`adapter/` in its store, as `peft-ts train` writes it), else the one in memory. */
async function exportAdapter(): Promise<void> {
  const output = loaded?.output ?? (await opfsTree(RUN_DIR));
  const files: { name: string; bytes: Uint8Array }[] = [];
  for (const name of ['adapter_config.json', 'adapter_model.safetensors']) {
    const source = await output.open(`adapter/${name}`);
    if (source) files.push({ name, bytes: await source.read(0, source.size) });
  }
  if (files.length < 2) {
    const out = memoryTree('adapter');
    await (await trained()).lora.saveAdapterTo(out);
    files.length = 0;
    for (const name of ['adapter_config.json', 'adapter_model.safetensors']) {
      const value = out.files.get(name);
      if (value === undefined) throw new Error(`Download: the adapter has no ${name}`);
      files.push({ name, bytes: typeof value === 'string' ? new TextEncoder().encode(value) : value instanceof Uint8Array ? value : new Uint8Array(await value.arrayBuffer()) });
    }
  }
  post({ type: 'adapter', files }, files.map((f) => f.bytes.buffer));
}

async function forget(): Promise<void> {
  await clearRun(loaded?.output ?? (await opfsTree(RUN_DIR)));
  log('the saved run was deleted from this browser');
}

// One task at a time, in order; `stop` is the exception, so that it reaches a running training.
let queue: Promise<void> = Promise.resolve();
scope.addEventListener('message', (event) => {
  const m = event.data;
  if (m.type === 'stop') {
    stop?.abort();
    return;
  }
  queue = queue.then(async () => {
    try {
      if (m.type === 'load') await load(m);
      else if (m.type === 'train') await train(m.resume);
      else if (m.type === 'evaluate') await evaluate();
      else if (m.type === 'generate') await generate(m);
      else if (m.type === 'export') await exportAdapter();
      else await forget();
    } catch (error) {
      post({ type: 'error', message: message(error) });
    }
  });
});
device().catch((error: unknown) => post({ type: 'error', message: message(error) }));
