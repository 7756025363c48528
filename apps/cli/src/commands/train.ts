// `peft-ts train`: LoRA or QLoRA fine-tuning from a config file (JSON or YAML) plus flags.
import { readFile } from 'node:fs/promises';
import { formatBytes, FormatError } from '@peft-ts/errors';
import { createRuntime } from '@peft-ts/tensor';
import { DEFAULT_CONFIG, prepareFinetune, resolveFinetuneConfig, runFinetune, type FinetuneConfig, type TrainSummary } from '@peft-ts/trainer/node';
import { parse as parseYaml } from 'yaml';
import { out, parse, UsageError } from '../args.js';
import { EXIT_CODES_HELP } from '../errors.js';
import { formatRate } from '../progress.js';

export const TRAIN_HELP = `Usage: peft-ts train [--config file.(json|yaml)] [options]

Fine-tunes a Hugging Face model directory on instruction data with LoRA or QLoRA and writes a
PEFT adapter (adapter_config.json + adapter_model.safetensors) that PEFT and vLLM load as is.
Flags override the config file; every key is checked before the GPU is touched.

Data and model:
  --model <dir>               Hugging Face model directory (config.json, safetensors, tokenizer.json)
  --data <file>               Alpaca / Dolly / chat messages / ShareGPT, JSON or JSONL
  --template <t>              auto (default), alpaca, chat, model (the tokenizer's chat template)
  --train-on <what>           response (default) or all
  --on-invalid <what>         invalid records: error (default; every one is listed) or skip
  --max-length <n>            truncate examples to n tokens (default ${DEFAULT_CONFIG.maxLength})
  --pack                      pack several examples per row
  --validation-split <f>      fraction held out for evaluation (default ${DEFAULT_CONFIG.validationSplit})
Method:
  --qlora | --lora            4-bit NF4 base (default) or the base in its stored dtype
  --r <n>  --alpha <a>        LoRA rank and alpha (default ${DEFAULT_CONFIG.r} / ${DEFAULT_CONFIG.alpha})
  --dropout <p>               LoRA dropout (default ${DEFAULT_CONFIG.dropout})
  --targets <list>            all-linear (default) or comma-separated module names (q_proj,v_proj)
  --modules-to-save <list>    modules trained in full and saved with the adapter (embed_tokens)
Optimisation:
  --lr <x>                    peak learning rate (default ${DEFAULT_CONFIG.lr})
  --schedule <s>              constant, linear, cosine (default ${DEFAULT_CONFIG.schedule})
  --warmup-ratio <f> | --warmup-steps <n>
  --epochs <n> | --max-steps <n>
  --batch-size <n>            micro-batch size (default ${DEFAULT_CONFIG.batchSize})
  --grad-accum <n>            gradient accumulation steps (default ${DEFAULT_CONFIG.gradientAccumulation})
  --max-grad-norm <x>         clipping (default ${DEFAULT_CONFIG.maxGradNorm}; 0 = off)
  --optimizer <o>             adamw, adamw8bit, paged_adamw (default), paged_adamw8bit, sgd
  --weight-decay <x>          decoupled weight decay (default 0)
  --optimizer-budget-mb <n>   GPU memory for optimizer state; the rest is paged to host memory
  --no-gradient-checkpointing
  --f16-activations           keep the residual stream in f16 between layers (half the checkpointed memory)
Run:
  --output <dir>              where adapters, checkpoints, metrics.jsonl and loss.svg go
                              (default ./peft-ts-output)
  --eval-every <n>            evaluate every n steps
  --early-stopping <n>        stop after n evaluations without improvement
  --save-every <n>            checkpoint every n steps (resumable)
  --resume <dir|latest>       continue from a checkpoint
  --overwrite                 replace an earlier run in --output (a non-empty --output is
                              refused otherwise, unless --resume continues it)
  --seed <n>
  --json                      print the final summary as one JSON object on stdout (steps,
                              seconds, tokens, tokens_per_second, final_loss, best_val_loss,
                              peak_gpu_bytes, adapter_dir, ...); progress stays on stderr

${EXIT_CODES_HELP}`;

const FLAGS = {
  config: { type: 'string' },
  model: { type: 'string' },
  data: { type: 'string' },
  template: { type: 'string' },
  'train-on': { type: 'string' },
  'on-invalid': { type: 'string' },
  'max-length': { type: 'string' },
  pack: { type: 'boolean' },
  'validation-split': { type: 'string' },
  qlora: { type: 'boolean' },
  lora: { type: 'boolean' },
  r: { type: 'string' },
  alpha: { type: 'string' },
  dropout: { type: 'string' },
  targets: { type: 'string' },
  'modules-to-save': { type: 'string' },
  lr: { type: 'string' },
  schedule: { type: 'string' },
  'warmup-ratio': { type: 'string' },
  'warmup-steps': { type: 'string' },
  epochs: { type: 'string' },
  'max-steps': { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  'max-grad-norm': { type: 'string' },
  optimizer: { type: 'string' },
  'weight-decay': { type: 'string' },
  'optimizer-budget-mb': { type: 'string' },
  'no-gradient-checkpointing': { type: 'boolean' },
  'f16-activations': { type: 'boolean' },
  output: { type: 'string' },
  'eval-every': { type: 'string' },
  'early-stopping': { type: 'string' },
  'save-every': { type: 'string' },
  resume: { type: 'string' },
  overwrite: { type: 'boolean' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Flag name -> config key, and whether its value is a number. */
const MAP: Record<string, [string, 'num' | 'str' | 'bool']> = {
  model: ['model', 'str'],
  data: ['data', 'str'],
  template: ['template', 'str'],
  'train-on': ['trainOn', 'str'],
  'on-invalid': ['onInvalid', 'str'],
  'max-length': ['maxLength', 'num'],
  pack: ['pack', 'bool'],
  'validation-split': ['validationSplit', 'num'],
  r: ['r', 'num'],
  alpha: ['alpha', 'num'],
  dropout: ['dropout', 'num'],
  lr: ['lr', 'num'],
  schedule: ['schedule', 'str'],
  'warmup-ratio': ['warmupRatio', 'num'],
  'warmup-steps': ['warmupSteps', 'num'],
  epochs: ['epochs', 'num'],
  'max-steps': ['maxSteps', 'num'],
  'batch-size': ['batchSize', 'num'],
  'grad-accum': ['gradientAccumulation', 'num'],
  'max-grad-norm': ['maxGradNorm', 'num'],
  optimizer: ['optimizer', 'str'],
  'weight-decay': ['weightDecay', 'num'],
  'optimizer-budget-mb': ['optimizerBudgetMb', 'num'],
  output: ['output', 'str'],
  'eval-every': ['evalEvery', 'num'],
  'early-stopping': ['earlyStoppingPatience', 'num'],
  'save-every': ['saveEvery', 'num'],
  resume: ['resume', 'str'],
  overwrite: ['overwrite', 'bool'],
  seed: ['seed', 'num'],
};

/** Configuration keys set by flags outside MAP (their values are rewritten before resolving). */
const OTHER_FLAGS: Record<string, string> = { targets: 'targets', modulesToSave: 'modules-to-save', method: 'qlora', gradientCheckpointing: 'no-gradient-checkpointing', activationDtype: 'f16-activations' };

/** A configuration key as the user spells it on the command line. */
export function flagName(key: keyof FinetuneConfig): string {
  const flag = Object.entries(MAP).find(([, [k]]) => k === key)?.[0] ?? OTHER_FLAGS[key];
  return flag ? `--${flag}` : key;
}

/**
 * The configuration resolved, with the errors about what the command line said turned into usage
 * errors (exit 2) that name the flag: a required key given nowhere, or a bad flag value. A bad
 * value read from the config file stays an input error (exit 3) naming the file.
 */
function resolveFromCommandLine(raw: Record<string, unknown>, source: string, fromFlags: ReadonlySet<string>): FinetuneConfig {
  try {
    return resolveFinetuneConfig(raw, source);
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
    const flag = flagName(error.field as keyof FinetuneConfig);
    const inFile = source === 'command line' ? '' : ` (or ${error.field} in ${source})`;
    if (error.got === 'nothing (it is required)') throw new UsageError(`peft-ts train: ${flag} is required${inFile}: expected ${error.expected}`);
    if (fromFlags.has(error.field)) throw new UsageError(`peft-ts train: ${flag}: expected ${error.expected}, got ${error.got}`);
    throw error;
  }
}

export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new FormatError({ file: path, field: '(file)', expected: 'a readable config file', got: (cause as NodeJS.ErrnoException).code ?? String(cause), cause });
  }
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (cause) {
    throw new FormatError({ file: path, field: '(syntax)', expected: /\.ya?ml$/i.test(path) ? 'valid YAML' : 'valid JSON', got: (cause as Error).message.split('\n')[0] ?? '', cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FormatError({ file: path, field: '(root)', expected: 'a mapping of configuration keys', got: value });
  return value as Record<string, unknown>;
}

export async function train(argv: string[]): Promise<number> {
  const { values, positionals } = parse('train', argv, FLAGS);
  if (values.help) {
    out(TRAIN_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`peft-ts train: unexpected argument ${JSON.stringify(positionals[0])} (use --model and --data)`);
  if (values.qlora && values.lora) throw new UsageError('peft-ts train: --qlora and --lora exclude each other');
  const source = typeof values.config === 'string' ? values.config : 'command line';
  const raw: Record<string, unknown> = typeof values.config === 'string' ? await readConfigFile(values.config) : {};
  const fromFlags = new Set<string>();
  for (const [flag, [key, kind]] of Object.entries(MAP)) {
    const v = values[flag];
    if (v === undefined) continue;
    fromFlags.add(key);
    if (kind === 'num') {
      const n = Number(v);
      if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`peft-ts train: --${flag}: expected a number, got ${JSON.stringify(v)}`);
      raw[key] = n;
    } else raw[key] = v;
  }
  if (values.qlora) raw.method = 'qlora';
  if (values.lora) raw.method = 'lora';
  if (typeof values['modules-to-save'] === 'string') raw.modulesToSave = values['modules-to-save'].split(',').map((s) => s.trim());
  if (typeof values.targets === 'string') raw.targets = values.targets === 'all-linear' ? 'all-linear' : values.targets.split(',').map((s) => s.trim());
  if (values['no-gradient-checkpointing']) raw.gradientCheckpointing = false;
  if (values['f16-activations']) raw.activationDtype = 'f16';
  for (const key of Object.keys(OTHER_FLAGS)) if (key in raw && values[OTHER_FLAGS[key] ?? ''] !== undefined) fromFlags.add(key);
  const config = resolveFromCommandLine(raw, source, fromFlags);
  // Paths, tokenizer, data and its tokenization first: their errors come before any GPU work.
  const prepared = await prepareFinetune(config, { names: flagName });
  const rt = await createRuntime({ seed: config.seed });
  const stop = stopOnSignals();
  try {
    const run = await runFinetune(rt, config, { names: flagName, signal: stop.signal, prepared });
    const s = run.summary;
    if (values.json === true) out(JSON.stringify(summaryJson(s, config.output)));
    if (s.interrupted) {
      run.model.dispose();
      process.stderr.write(`\npeft-ts train: stopped by ${stop.received ?? 'a signal'} after step ${s.steps}; checkpoint ${s.checkpointDir ?? '(none)'}\n`);
      process.stderr.write(`resume with: ${resumeCommand(argv)}\n`);
      return stop.received === 'SIGTERM' ? 143 : 130;
    }
    if (values.json !== true) out(summaryLines(s, config.output));
    run.model.dispose();
  } finally {
    stop.dispose();
    rt.destroy();
  }
  return 0;
}

/** The final summary of a run as --json prints it (snake_case keys, as the metrics file). */
export function summaryJson(s: TrainSummary, output: string): Record<string, unknown> {
  return {
    steps: s.steps,
    epochs_completed: s.epochsCompleted,
    seconds: s.seconds,
    tokens: s.tokens,
    trained_tokens: s.trainedTokens,
    tokens_per_second: s.tokens / Math.max(s.seconds, 1e-9),
    final_loss: s.finalLoss,
    best_val_loss: s.bestValLoss,
    best_step: s.bestStep,
    stopped_early: s.stoppedEarly,
    interrupted: s.interrupted,
    checkpoint_dir: s.checkpointDir,
    peak_gpu_bytes: s.peakGpuBytes,
    adapter_dir: s.adapterDir,
    metrics: `${output}/metrics.jsonl`,
    loss_curve: `${output}/loss.svg`,
  };
}

/** The final summary of a finished run as text. */
export function summaryLines(s: TrainSummary, output: string): string {
  return [
    `\ntrained ${s.steps} steps in ${s.seconds.toFixed(1)} s (${s.tokens.toLocaleString('en-US')} tokens, ${formatRate(s.tokens / Math.max(s.seconds, 1e-9))} tok/s)`,
    `final loss ${s.finalLoss?.toFixed(4) ?? 'n/a'}${s.bestValLoss !== null ? `; best validation loss ${s.bestValLoss.toFixed(4)} at step ${s.bestStep}` : ''}${s.stoppedEarly ? ' (stopped early)' : ''}`,
    `peak GPU memory ${formatBytes(s.peakGpuBytes)} (tensor accounting)`,
    `adapter: ${s.adapterDir}; metrics: ${output}/metrics.jsonl; loss curve: ${output}/loss.svg`,
  ].join('\n');
}

/**
 * The first SIGINT or SIGTERM asks training to stop after the current step (with a resumable
 * checkpoint); a second one exits at once.
 */
function stopOnSignals(): { signal: AbortSignal; received: NodeJS.Signals | null; dispose: () => void } {
  const controller = new AbortController();
  const state = {
    signal: controller.signal,
    received: null as NodeJS.Signals | null,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
  const handler = (name: NodeJS.Signals): void => {
    if (state.received !== null) {
      process.stderr.write(`\npeft-ts train: ${name} again: exiting now, without a checkpoint of the current step\n`);
      process.exit(name === 'SIGTERM' ? 143 : 130);
    }
    state.received = name;
    controller.abort();
    process.stderr.write(`\npeft-ts train: ${name}: finishing this step and saving a checkpoint (send it again to exit at once)\n`);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return state;
}

/** The command line that continues this run: the same flags with --resume latest. */
export function resumeCommand(argv: readonly string[]): string {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i] ?? '';
    if (a === '--resume' || a === '--overwrite') {
      if (a === '--resume') i += 1;
      continue;
    }
    if (a.startsWith('--resume=')) continue;
    kept.push(a);
  }
  const quote = (x: string): string => (/^[\w@%+=:,./-]+$/.test(x) ? x : `'${x.replace(/'/g, "'\\''")}'`);
  return ['peft-ts', 'train', ...kept, '--resume', 'latest'].map(quote).join(' ');
}
