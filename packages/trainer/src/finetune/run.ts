// Node-only: a run from a FinetuneConfig's paths, as `peft-ts train` runs it. Checks the paths
// before any GPU work, reads the tokenizer, config and data from disk, loads the model, then
// trains through `finetune` (the same call a browser makes) into the output directory, with a
// progress bar on stderr.
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileByteSource, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { dirTree } from '@peft-ts/safetensors/node';
import { type Runtime } from '@peft-ts/tensor';
import { loadModel, loadModelConfig, type CausalLM, type LoadModelOptions } from '@peft-ts/models/node';
import type { Example, TokenizedExample, Tokenizer } from '@peft-ts/data-alpaca';
import type { LoraModel } from '@peft-ts/lora';
import { finetune, modelLoadOptionsFor, prepareExamples, readTrainingData, type FinetuneRun, type PreparedData } from './finetune.js';
import { checkTokenizerFits } from './model-fit.js';
import { clearEarlierRun, preflightFinetune, type Preflight, type PreflightOptions } from './preflight.js';
import { outputDirStore } from './output-dir.js';
import { removeStaleTemporaries, withPath } from './paths.js';
import type { TrainerCallbacks } from '../train/types.js';
import type { ProgressStream } from '../observe/progress.js';
import type { FinetuneConfig } from './config.js';

export interface FinetuneOptions {
  /** Plain progress and log lines (default stderr). */
  log?: (line: string) => void;
  /** Where the progress bar is drawn (default stderr); false for none. */
  progress?: ProgressStream | false;
  callbacks?: TrainerCallbacks;
  /** Stops training after the current step, with a resumable checkpoint (Ctrl-C, SIGTERM). */
  signal?: AbortSignal;
  /** How configuration keys are named in path errors (e.g. as command-line flags). */
  names?: PreflightOptions['name'];
  /** The result of prepareFinetune for this config (else it is run here). */
  prepared?: PreparedFinetune;
  /**
   * A base already loaded from config.model as modelLoadOptions says for this config (e.g. one
   * shared by the runs of a sweep): used instead of loading it again. The adapter stays injected
   * when the run returns; the caller takes it out before the next run.
   */
  base?: CausalLM;
  /** Called after the model and adapter exist, before training (e.g. for an evaluation before). */
  beforeTrain?: (ctx: { model: CausalLM; lora: LoraModel; tokenizer: Tokenizer; validation: TokenizedExample[]; validationExamples: Example[] }) => Promise<void>;
}

/** How a model directory is loaded: a bitsandbytes checkpoint stays 4-bit; QLoRA quantizes a 16-bit one on load. */
export async function modelLoadOptions(dir: string, qlora: boolean, quant: { type?: 'nf4' | 'fp4'; blocksize?: number; doubleQuant?: boolean } = {}): Promise<LoadModelOptions> {
  const configPath = join(dir, 'config.json');
  const raw = existsSync(configPath) ? (JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>) : {};
  return modelLoadOptionsFor(raw, qlora, quant);
}

/** Everything a run needs before the GPU: checked paths, tokenizer, data, split and warnings. */
export interface PreparedFinetune extends PreparedData {
  preflight: Preflight;
}

const stderrLog = (line: string) => process.stderr.write(`${line}\n`);

/**
 * The part of a run that needs no GPU: paths, tokenizer against the model's config, the data
 * (every invalid record reported), tokenization and the split. Its errors come before any
 * device is acquired; pass the result to runFinetune as `prepared`.
 */
export async function prepareFinetune(config: FinetuneConfig, options: Pick<FinetuneOptions, 'log' | 'names'> = {}): Promise<PreparedFinetune> {
  const log = options.log ?? stderrLog;
  const preflight = await preflightFinetune(config, options.names ? { name: options.names } : {});
  const tokenizer = await tokenizerFromDir(config.model);
  const modelConfig = await loadModelConfig(config.model);
  checkTokenizerFits(tokenizer, modelConfig, config.model);
  const dataset = await readTrainingData(config, await fileByteSource(config.data), { log, ...(options.names ? { names: options.names } : {}) });
  return { preflight, ...prepareExamples(config, tokenizer, dataset, { log, modelConfig }) };
}

/**
 * Fine-tunes as `peft-ts train` does: preflight, data and model from the config's paths, then
 * `finetune` into config.output (checkpoints, adapter/, metrics.jsonl, loss.svg, summary.json,
 * each written atomically), resuming from config.resume.
 */
export async function runFinetune(rt: Runtime, config: FinetuneConfig, options: FinetuneOptions = {}): Promise<FinetuneRun> {
  const log = options.log ?? stderrLog;
  rt.manualSeed(config.seed);
  const prepared = options.prepared ?? (await prepareFinetune(config, options));
  const { preflight } = prepared;

  if (preflight.outputNonEmpty && config.overwrite && preflight.resumeDir === null) {
    const removed = await clearEarlierRun(config.output);
    if (removed.length > 0) log(`output: replaced the earlier run in ${config.output} (${removed.join(', ')})`);
  }
  const model = options.base ?? (await loadModel(rt, config.model, await modelLoadOptions(config.model, config.method === 'qlora', { type: config.quantType, blocksize: config.blocksize, doubleQuant: config.doubleQuant })));
  await withPath(config.output, 'an output directory that can be created', () => mkdir(config.output, { recursive: true }));
  // What a killed run left half-written (temporaries of atomic writes) is of no use to anyone.
  await removeStaleTemporaries(config.output);
  return finetune(rt, config, {
    model,
    prepared,
    store: outputDirStore(config.output),
    resume: preflight.resumeDir === null ? null : dirTree(preflight.resumeDir),
    identity: preflight.identity,
    log,
    progress: options.progress ?? process.stderr,
    ...(options.callbacks ? { callbacks: options.callbacks } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.beforeTrain ? { beforeTrain: options.beforeTrain } : {}),
  });
}
