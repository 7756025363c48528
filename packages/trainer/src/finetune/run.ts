// One call from a FinetuneConfig to a trained adapter: tokenizer, data, model (NF4 for QLoRA),
// LoRA injection, optimizer and the training loop, reporting as it goes.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchIterator, Dataset, IGNORE_INDEX, splitDataset, type Tokenizer, tokenizeExamples, type Example, type TokenizedExample } from '@peft-ts/data-alpaca';
import { readExamples, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { FormatError, PeftError } from '@peft-ts/errors';
import { type Runtime, type Tensor } from '@peft-ts/tensor';
import { loadModel, loadModelConfig, type CausalLM, type LoadModelOptions } from '@peft-ts/models';
import { LoraModel } from '@peft-ts/lora';
import { bnb4bitLinearHook, nf4LinearHook } from '@peft-ts/nf4-quant/gpu';
import { createOptimizer } from './optimizer.js';
import { checkPositionsFit, checkTokenizerFits } from './model-fit.js';
import { clearEarlierRun, preflightFinetune, type Preflight, type PreflightOptions } from './preflight.js';
import { Trainer } from '../train/trainer.js';
import type { BatchSource, TrainerCallbacks, TrainSummary } from '../train/types.js';
import type { ProgressStream } from '../observe/progress.js';
import type { FinetuneConfig } from './config.js';

export interface FinetuneRun {
  summary: TrainSummary;
  model: CausalLM;
  lora: LoraModel;
  tokenizer: Tokenizer;
  train: TokenizedExample[];
  validation: TokenizedExample[];
  /** The held-out records as loaded (same order as `validation`), e.g. for generation-based evaluation. */
  validationExamples: Example[];
}

export interface FinetuneOptions {
  /** Plain progress and log lines (default stderr). */
  log?: (line: string) => void;
  progress?: ProgressStream | false;
  callbacks?: TrainerCallbacks;
  /** Stops training after the current step, with a resumable checkpoint (Ctrl-C, SIGTERM). */
  signal?: AbortSignal;
  /** How configuration keys are named in path errors (e.g. as command-line flags). */
  names?: PreflightOptions['name'];
  /** The result of prepareFinetune for this config (else it is run here). */
  prepared?: PreparedFinetune;
  /** Called after the model and adapter exist, before training (e.g. for an evaluation before). */
  /**
   * A base already loaded from config.model as modelLoadOptions says for this config (e.g. one
   * shared by the runs of a sweep): used instead of loading it again. The adapter stays injected
   * when the run returns; the caller takes it out before the next run.
   */
  base?: CausalLM;
  beforeTrain?: (ctx: { model: CausalLM; lora: LoraModel; tokenizer: Tokenizer; validation: TokenizedExample[]; validationExamples: Example[] }) => Promise<void>;
}

/** How a model directory is loaded: a bitsandbytes checkpoint stays 4-bit; QLoRA quantizes a 16-bit one on load. */
export async function modelLoadOptions(dir: string, qlora: boolean, quant: { type?: 'nf4' | 'fp4'; blocksize?: number; doubleQuant?: boolean } = {}): Promise<LoadModelOptions> {
  const configPath = join(dir, 'config.json');
  const raw = existsSync(configPath) ? (JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>) : {};
  if (raw.quantization_config !== undefined) return { linearHook: bnb4bitLinearHook() };
  if (qlora) return { linearHook: nf4LinearHook({ type: quant.type ?? 'nf4', blocksize: quant.blocksize ?? 64, doubleQuant: quant.doubleQuant ?? true }) };
  return {};
}

/** How many invalid records are listed one by one; the rest are counted. */
const LISTED_INVALID = 10;

/**
 * Reads the whole dataset, collecting every invalid record (file:line and field, the first
 * LISTED_INVALID listed, the rest counted): with onInvalid 'error' they fail the run together,
 * with 'skip' they are dropped with that list as a warning.
 */
async function loadTrainingData(config: FinetuneConfig, log: (line: string) => void, name: (key: keyof FinetuneConfig) => string): Promise<Dataset> {
  const examples: Example[] = [];
  const reader = readExamples(config.data, {
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
      throw new PeftError('INVALID_RECORDS', `${config.data}: ${count} (fix them, or pass ${name('onInvalid')} skip to train without them):\n${list}`);
    }
    log(`data: warning: skipped ${count} of ${summary.invalid + examples.length}:\n${list}`);
  }
  if (examples.length === 0) {
    throw new FormatError({ file: config.data, field: 'records', expected: 'at least one valid record', got: summary.invalid > 0 ? `all ${summary.invalid} records invalid` : 'no records' });
  }
  return new Dataset(examples, summary);
}

/** Whether a label survives the causal shift (position 0 is never predicted). */
function hasTrainedToken(e: TokenizedExample | undefined): boolean {
  return e?.labels.some((l, t) => t > 0 && l !== IGNORE_INDEX) ?? false;
}

function source(it: BatchIterator): BatchSource {
  return { numBatches: (e) => it.numBatches(e), batchAt: (e, i) => it.batchAt(e, i) };
}

/** Everything a run needs before the GPU: checked paths, tokenizer, data, split and warnings. */
export interface PreparedFinetune {
  preflight: Preflight;
  tokenizer: Tokenizer;
  positionWarning: string | null;
  split: { train: TokenizedExample[]; validation: TokenizedExample[] };
  validationExamples: Example[];
}

/**
 * The part of a run that needs no GPU: paths, tokenizer against the model's config, the data
 * (every invalid record reported), tokenization and the split. Its errors come before any
 * device is acquired; pass the result to runFinetune as `prepared`.
 */
export async function prepareFinetune(config: FinetuneConfig, options: Pick<FinetuneOptions, 'log' | 'names'> = {}): Promise<PreparedFinetune> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const preflight = await preflightFinetune(config, options.names ? { name: options.names } : {});
  const tokenizer = await tokenizerFromDir(config.model);
  const modelConfig = await loadModelConfig(config.model);
  checkTokenizerFits(tokenizer, modelConfig, config.model);
  const ds = await loadTrainingData(config, log, options.names ?? ((k) => k));
  const template = config.template === 'auto' ? undefined : config.template;
  const { examples } = tokenizeExamples(ds.examples, tokenizer, {
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
  const validationExamples = pick(ds.examples, parts.validation);
  log(`data: ${ds.examples.length} examples from ${config.data} (${ds.format})${dropped > 0 ? `, ${dropped} dropped` : ''}: ${split.train.length} train, ${split.validation.length} validation`);

  const longest = config.pack ? config.maxLength : examples.reduce((m, e) => Math.max(m, e.length), 0);
  const positionWarning = checkPositionsFit(modelConfig, config.model, longest, config.maxLength);
  if (positionWarning) log(`model: warning: ${positionWarning}`);
  return { preflight, tokenizer, positionWarning, split, validationExamples };
}

export async function runFinetune(rt: Runtime, config: FinetuneConfig, options: FinetuneOptions = {}): Promise<FinetuneRun> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  rt.manualSeed(config.seed);
  const { preflight, tokenizer, positionWarning, split, validationExamples } = options.prepared ?? (await prepareFinetune(config, options));

  if (preflight.outputNonEmpty && config.overwrite && preflight.resumeDir === null) {
    const removed = await clearEarlierRun(config.output);
    if (removed.length > 0) log(`output: replaced the earlier run in ${config.output} (${removed.join(', ')})`);
  }

  const model = options.base ?? (await loadModel(rt, config.model, await modelLoadOptions(config.model, config.method === 'qlora', { type: config.quantType, blocksize: config.blocksize, doubleQuant: config.doubleQuant })));
  model.activationDtype = config.activationDtype;
  // Already reported above, with the advice that fits training.
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
    outputDir: config.output,
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
    ...(preflight.resumeDir !== null ? { resumeFrom: preflight.resumeDir } : {}),
    runIdentity: preflight.identity,
    gradientCheckpointing: config.gradientCheckpointing,
    ...(options.callbacks ? { callbacks: options.callbacks } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.progress !== undefined ? { progress: options.progress } : {}),
  });
  log(`train: ${trainer.steps} optimizer steps (batch ${config.batchSize} x accumulation ${config.gradientAccumulation}), ${config.optimizer}, lr ${config.lr} ${config.schedule}`);
  if (preflight.resumeDir !== null) log(`resume: continuing from ${preflight.resumeDir} (step ${preflight.resumeStep} of ${trainer.steps})`);
  const summary = await trainer.train();
  return { summary, model, lora, tokenizer, train: split.train, validation: split.validation, validationExamples };
}
