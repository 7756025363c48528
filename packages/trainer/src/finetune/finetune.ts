// One call from a FinetuneConfig, a loaded model, its tokenizer and the data to a trained
// adapter: tokenization and the split, LoRA injection, optimizer and the training loop. Runs
// wherever the model runs (Node, or a browser's Web Worker); `runFinetune` of
// @peft-ts/trainer/node adds the paths, the progress bar and Ctrl-C around this same call.
import { BatchIterator, Dataset, IGNORE_INDEX, readExamplesFrom, splitDataset, Tokenizer, tokenizeExamples, type ByteSource, type Example, type TokenizedExample } from '@peft-ts/data-alpaca';
import { FormatError, PeftError } from '@peft-ts/errors';
import type { FileTree } from '@peft-ts/safetensors';
import type { Runtime, Tensor } from '@peft-ts/tensor';
import { loadModelConfigFrom, type CausalLM, type LoadModelOptions, type ModelConfig } from '@peft-ts/models';
import { LoraModel } from '@peft-ts/lora';
import { bnb4bitLinearHook, nf4LinearHook } from '@peft-ts/nf4-quant/gpu';
import { createOptimizer } from './optimizer.js';
import { checkPositionsFit, checkTokenizerFits } from './model-fit.js';
import type { RunIdentity } from './identity.js';
import type { FinetuneConfig } from './config.js';
import { Trainer } from '../train/trainer.js';
import { memoryRunStore, readStoreText, subTree, whereIn, type RunStore } from '../train/run-store.js';
import type { BatchSource, TrainerCallbacks, TrainSummary } from '../train/types.js';
import type { ProgressStream } from '../observe/progress.js';

/** What a run produced. */
export interface FinetuneRun {
  summary: TrainSummary;
  model: CausalLM;
  lora: LoraModel;
  tokenizer: Tokenizer;
  train: TokenizedExample[];
  validation: TokenizedExample[];
  /** The held-out records as loaded (same order as `validation`), e.g. for generation-based evaluation. */
  validationExamples: Example[];
  /** Where the run wrote: `adapter/` (adapter_config.json, adapter_model.safetensors), checkpoints, metrics. */
  store: RunStore;
}

/** The data of a run, tokenized and split: everything a run needs besides the model. */
export interface PreparedData {
  tokenizer: Tokenizer;
  /** A warning when rows are longer than the model's positions (rotary models), else null. */
  positionWarning: string | null;
  split: { train: TokenizedExample[]; validation: TokenizedExample[] };
  validationExamples: Example[];
}

/** How the model of a run is loaded, from its config.json: a bitsandbytes checkpoint stays 4-bit; QLoRA quantizes a 16-bit one on load. */
export function modelLoadOptionsFor(
  configJson: Record<string, unknown>,
  qlora: boolean,
  quant: { type?: 'nf4' | 'fp4'; blocksize?: number; doubleQuant?: boolean } = {},
): LoadModelOptions {
  if (configJson.quantization_config !== undefined) return { linearHook: bnb4bitLinearHook() };
  if (qlora) return { linearHook: nf4LinearHook({ type: quant.type ?? 'nf4', blocksize: quant.blocksize ?? 64, doubleQuant: quant.doubleQuant ?? true }) };
  return {};
}

/** modelLoadOptionsFor the config.json of a model tree (none: a plain load, or QLoRA's NF4). */
export async function modelLoadOptionsFrom(tree: FileTree, qlora: boolean, quant: { type?: 'nf4' | 'fp4'; blocksize?: number; doubleQuant?: boolean } = {}): Promise<LoadModelOptions> {
  const source = await tree.open('config.json');
  let json: Record<string, unknown> = {};
  if (source) {
    try {
      json = JSON.parse(new TextDecoder().decode(await source.read(0, source.size))) as Record<string, unknown>;
    } finally {
      await source.close?.();
    }
  }
  return modelLoadOptionsFor(json, qlora, quant);
}

/** How many invalid records are listed one by one; the rest are counted. */
const LISTED_INVALID = 10;

export interface ReadDataOptions {
  /** Plain log lines (warnings about the data). */
  log?: (line: string) => void;
  /** How configuration keys are named to the user (e.g. as command-line flags). */
  names?: (key: keyof FinetuneConfig) => string;
}

/**
 * Reads the whole dataset, collecting every invalid record (file:line and field, the first
 * LISTED_INVALID listed, the rest counted): with config.onInvalid 'error' they fail the run
 * together, with 'skip' they are dropped with that list as a warning. The source's name stands
 * for the file in messages.
 */
export async function readTrainingData(config: FinetuneConfig, data: ByteSource, options: ReadDataOptions = {}): Promise<Dataset> {
  const log = options.log ?? (() => undefined);
  const name = options.names ?? ((k: keyof FinetuneConfig) => k);
  const examples: Example[] = [];
  const reader = readExamplesFrom(data, {
    onInvalid: 'skip',
    maxReasons: LISTED_INVALID,
    onWarning: (w) => (w.code === 'invalid-records-skipped' ? undefined : log(`data: ${w.message}`)),
  });
  let step = await reader.next();
  while (!step.done) {
    examples.push(step.value);
    step = await reader.next();
  }
  const summary = step.value;
  if (summary.invalid > 0) {
    const more = summary.invalid - summary.invalidReasons.length;
    const list = [...summary.invalidReasons.map((e) => `  ${e.message}`), ...(more > 0 ? [`  ... and ${more} more`] : [])].join('\n');
    const count = `${summary.invalid} invalid record${summary.invalid === 1 ? '' : 's'}`;
    if (config.onInvalid === 'error') {
      throw new PeftError('INVALID_RECORDS', `${data.name}: ${count} (fix them, or pass ${name('onInvalid')} skip to train without them):\n${list}`);
    }
    log(`data: warning: skipped ${count} of ${summary.invalid + examples.length}:\n${list}`);
  }
  if (examples.length === 0) {
    throw new FormatError({ file: data.name, field: 'records', expected: 'at least one valid record', got: summary.invalid > 0 ? `all ${summary.invalid} records invalid` : 'no records' });
  }
  return new Dataset(examples, summary);
}

/** Whether a label survives the causal shift (position 0 is never predicted). */
function hasTrainedToken(e: TokenizedExample | undefined): boolean {
  return e?.labels.some((l, t) => t > 0 && l !== IGNORE_INDEX) ?? false;
}

export interface PrepareDataOptions {
  log?: (line: string) => void;
  /** The model's config: the tokenizer's ids and the rows' positions are checked against it. */
  modelConfig?: ModelConfig;
}

/**
 * Tokenizes and splits a run's data as config says (template, trainOn, maxLength, the seeded
 * validation split), dropping examples with no trained token (counted in a warning). Needs no
 * GPU, so its errors and the masked preview come before any device work.
 */
export function prepareExamples(config: FinetuneConfig, tokenizer: Tokenizer, dataset: Dataset, options: PrepareDataOptions = {}): PreparedData {
  const log = options.log ?? (() => undefined);
  if (options.modelConfig) checkTokenizerFits(tokenizer, options.modelConfig, config.model);
  const template = config.template === 'auto' ? undefined : config.template;
  const { examples } = tokenizeExamples(dataset.examples, tokenizer, {
    ...(template ? { template } : {}),
    trainOn: config.trainOn,
    maxLength: config.maxLength,
    // Examples with nothing to learn from are dropped below, with their own line.
    onWarning: (w) => (w.code === 'no-trained-tokens' ? undefined : log(`data: ${w.message}`)),
  });
  // An example with no trained token (after the causal shift) adds nothing to the loss, yet
  // would cost an optimizer and a schedule step: drop it, counted; with none left, stop.
  const usable = examples.map((_, i) => i).filter((i) => hasTrainedToken(examples[i]));
  const dropped = examples.length - usable.length;
  if (dropped > 0) {
    const first = examples.find((e) => !hasTrainedToken(e))?.source;
    const where = first ? ` (first: ${first.file}:${first.line})` : '';
    const why = `no trained token left after truncation to maxLength ${config.maxLength}${config.trainOn === 'response' ? ' (only response tokens are trained)' : ''}`;
    if (usable.length === 0) {
      throw new FormatError({ file: config.data, field: 'records', expected: `at least one example with a trained token within maxLength ${config.maxLength} (raise maxLength or shorten the prompts)`, got: `all ${examples.length} examples have ${why}${where}` });
    }
    log(`data: warning: dropped ${dropped} of ${examples.length} examples with ${why}${where}`);
  }
  // Split indices, so the tokenized examples and the records they came from stay paired.
  const indices = usable;
  const parts = config.validationSplit > 0 ? splitDataset(indices, { fraction: config.validationSplit, seed: config.seed }) : { train: indices, validation: [] };
  const pick = <T>(items: readonly T[], at: readonly number[]): T[] => at.map((i) => items[i]).filter((x): x is T => x !== undefined);
  const split = { train: pick(examples, parts.train), validation: pick(examples, parts.validation) };
  const validationExamples = pick(dataset.examples, parts.validation);
  log(`data: ${dataset.examples.length} examples from ${config.data} (${dataset.format})${dropped > 0 ? `, ${dropped} dropped` : ''}: ${split.train.length} train, ${split.validation.length} validation`);

  let positionWarning: string | null = null;
  if (options.modelConfig) {
    const longest = config.pack ? config.maxLength : examples.reduce((m, e) => Math.max(m, e.length), 0);
    positionWarning = checkPositionsFit(options.modelConfig, config.model, longest, config.maxLength);
    if (positionWarning) log(`model: warning: ${positionWarning}`);
  }
  return { tokenizer, positionWarning, split, validationExamples };
}

/**
 * The GPU-free part of a run from a model tree and a data source (a browser's picked folder and
 * file, OPFS, memory): the tokenizer checked against the model's config.json, the data (every
 * invalid record reported), tokenization and the split.
 */
export async function prepareFinetuneFrom(config: FinetuneConfig, io: { model: FileTree; data: ByteSource }, options: ReadDataOptions = {}): Promise<PreparedData> {
  const tokenizer = await Tokenizer.fromTree(io.model);
  const modelConfig = await loadModelConfigFrom(io.model);
  checkTokenizerFits(tokenizer, modelConfig, config.model);
  const dataset = await readTrainingData(config, io.data, options);
  return prepareExamples(config, tokenizer, dataset, { ...(options.log ? { log: options.log } : {}), modelConfig });
}

/** The checkpoint a resume starts from and its step, for the log (the trainer checks it in full). */
async function resumePoint(store: RunStore, resume: FileTree | 'latest'): Promise<{ where: string; step: number } | null> {
  let tree = resume === 'latest' ? null : resume;
  if (resume === 'latest') {
    const steps = (await store.list()).map((n) => /^checkpoint-(\d+)\/trainer_state\.json$/.exec(n)?.[1]).filter((s): s is string => s !== undefined).map(Number);
    if (steps.length === 0) return null;
    const name = `checkpoint-${Math.max(...steps)}`;
    tree = subTree(store, name, whereIn(store, name));
  }
  if (!tree) return null;
  const text = await readStoreText(tree, 'trainer_state.json');
  const step = text === null ? 0 : ((JSON.parse(text) as { step?: unknown }).step ?? 0);
  return { where: tree.name, step: typeof step === 'number' ? step : 0 };
}

function source(it: BatchIterator): BatchSource {
  return { numBatches: (e) => it.numBatches(e), batchAt: (e, i) => it.batchAt(e, i) };
}

export interface FinetuneInputs {
  /** The base model, loaded as modelLoadOptionsFor says for this config (NF4 for QLoRA). */
  model: CausalLM;
  /** The data: prepared (prepareExamples, prepareFinetuneFrom), or loaded records and their tokenizer. */
  prepared?: PreparedData;
  tokenizer?: Tokenizer;
  dataset?: Dataset;
  /** Where checkpoints, `adapter/`, metrics.jsonl, loss.svg and summary.json go (default: memory). */
  store?: RunStore;
  /**
   * Resume from this checkpoint, or 'latest' for the newest in `store`; default 'latest' when
   * config.resume is 'latest', else a fresh run.
   */
  resume?: FileTree | 'latest' | null;
  /** Stored in each checkpoint; a resume from a checkpoint of another run is refused. */
  identity?: RunIdentity;
  /** Plain log lines (what is trained, how many steps). */
  log?: (line: string) => void;
  /** Per-step and per-evaluation metrics, saves, the end; return 'stop' to end after a step. */
  callbacks?: TrainerCallbacks;
  /** Stops training after the current step, with a resumable checkpoint (needs a store that keeps it). */
  signal?: AbortSignal;
  /** A stream for a progress bar (none by default). */
  progress?: ProgressStream | false;
  /** Called after the adapter exists, before training (e.g. for an evaluation before). */
  beforeTrain?: (ctx: { model: CausalLM; lora: LoraModel; tokenizer: Tokenizer; validation: TokenizedExample[]; validationExamples: Example[] }) => Promise<void>;
}

/**
 * Trains a LoRA adapter on an already-loaded model: the same data order, seeds, LoRA
 * initialisation, optimizer and adapter bytes as `peft-ts train` with the same config (whose
 * runFinetune calls this). The adapter stays injected in `model` when it returns; its files are
 * in `store` under `adapter/` (or in the last checkpoint when stopped by `signal`).
 */
export async function finetune(rt: Runtime, config: FinetuneConfig, options: FinetuneInputs): Promise<FinetuneRun> {
  const log = options.log ?? (() => undefined);
  const prepared = options.prepared ?? (options.tokenizer && options.dataset ? prepareExamples(config, options.tokenizer, options.dataset, { log, modelConfig: options.model.config }) : null);
  if (!prepared) throw new PeftError('BAD_OPTION', 'finetune: expected `prepared`, or `tokenizer` and `dataset`, got neither');
  const { tokenizer, positionWarning, split, validationExamples } = prepared;
  let resume = options.resume;
  if (resume === undefined) {
    if (config.resume !== null && config.resume !== 'latest') {
      throw new PeftError('BAD_OPTION', `finetune: resume: expected 'latest' or the checkpoint as a FileTree in options.resume, got the path ${config.resume}`);
    }
    resume = config.resume === 'latest' ? 'latest' : null;
  }
  const store = options.store ?? memoryRunStore(config.output);
  // Dropout draws from the runtime's counter-based RNG: the run starts it from the seed.
  rt.manualSeed(config.seed);
  const model = options.model;
  model.activationDtype = config.activationDtype;
  // Already reported with the data, with the advice that fits training.
  if (positionWarning) model.onWarning = () => undefined;
  const lora = LoraModel.inject(
    model,
    { r: config.r, lora_alpha: config.alpha, lora_dropout: config.dropout, target_modules: config.targets, modules_to_save: config.modulesToSave, base_model_name_or_path: config.model },
    'default',
    { seed: config.seed },
  );
  log(`model: ${model.config.className}${config.method === 'qlora' ? ` (${config.quantType.toUpperCase()} base${config.doubleQuant ? ', double quant' : ''})` : ''}; ${lora.trainableParametersSummary().line}`);

  const trainIt = new BatchIterator(split.train, { batchSize: config.batchSize, padId: tokenizer.padId, seed: config.seed, maxLength: config.maxLength, pack: config.pack });
  const valIt = split.validation.length > 0 ? new BatchIterator(split.validation, { batchSize: config.batchSize, padId: tokenizer.padId, seed: config.seed, shuffle: false, maxLength: config.maxLength }) : null;
  await options.beforeTrain?.({ model, lora, tokenizer, validation: split.validation, validationExamples });
  const trainer = new Trainer({
    model,
    lora,
    train: source(trainIt),
    ...(valIt ? { validation: source(valIt) } : {}),
    createOptimizer: (params: Map<string, Tensor>) =>
      createOptimizer(rt, [...params.values()], {
        name: config.optimizer,
        lr: config.lr,
        weightDecay: config.weightDecay,
        ...(config.optimizerBudgetMb !== null ? { budgetBytes: config.optimizerBudgetMb * 2 ** 20 } : {}),
      }),
    output: store,
    lr: config.lr,
    schedule: config.schedule,
    ...(config.warmupSteps > 0 ? { warmupSteps: config.warmupSteps } : { warmupRatio: config.warmupRatio }),
    epochs: config.epochs,
    ...(config.maxSteps !== null ? { maxSteps: config.maxSteps } : {}),
    gradientAccumulation: config.gradientAccumulation,
    maxGradNorm: config.maxGradNorm,
    ...(config.evalEvery !== null && valIt ? { evalEvery: config.evalEvery, evalOnStart: true } : {}),
    ...(config.earlyStoppingPatience !== null ? { earlyStoppingPatience: config.earlyStoppingPatience } : {}),
    ...(config.saveEvery !== null ? { saveEvery: config.saveEvery } : {}),
    ...(resume !== null ? { resumeFrom: resume } : {}),
    ...(options.identity ? { runIdentity: options.identity } : {}),
    gradientCheckpointing: config.gradientCheckpointing,
    ...(options.callbacks ? { callbacks: options.callbacks } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.progress ? { progress: options.progress } : {}),
  });
  log(`train: ${trainer.steps} optimizer steps (batch ${config.batchSize} x accumulation ${config.gradientAccumulation}), ${config.optimizer}, lr ${config.lr} ${config.schedule}`);
  const point = resume === null ? null : await resumePoint(store, resume);
  if (point) log(`resume: continuing from ${point.where} (step ${point.step} of ${trainer.steps})`);
  const summary = await trainer.train();
  return { summary, model, lora, tokenizer, train: split.train, validation: split.validation, validationExamples, store };
}
