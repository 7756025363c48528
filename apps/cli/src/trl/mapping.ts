// How each key of the fine-tuning config becomes a TRL, PEFT, bitsandbytes or transformers
// argument (or a step of the generated script), and which values have no equivalent there.
import { FormatError } from '@peft-ts/errors';
import type { FinetuneConfig, OptimizerName } from '@peft-ts/trainer';

/** The TRL release the generated recipe is written against (and the libraries it needs). */
export const TRL_TARGET = {
  trl: '1.9',
  transformers: '5',
  peft: '0.17',
  bitsandbytes: '0.46',
  accelerate: '1.4',
  datasets: '4.7',
} as const;

/** What a key's value becomes for this config: a plain mapping, or one that names its nearest equivalent. */
export interface KeyVerdict {
  /** A line for the user when the recipe can only approximate this value (printed and put in README.md). */
  nearest?: string;
}

export interface KeyMapping {
  /** The argument (or script step) it maps to, as the README table shows it. */
  to: string;
  /** How the semantics differ from peft-ts, if at all. */
  difference: string;
  /**
   * Values TRL cannot express: returns the reason (then the export is refused), or null.
   * Checked before `nearest`.
   */
  refuse?: (c: FinetuneConfig) => { expected: string; got: unknown } | null;
  /** A value that maps only to a nearest equivalent: the line that says so, or null. */
  nearest?: (c: FinetuneConfig) => string | null;
}

/** transformers' `optim` name for each peft-ts optimizer. */
export const OPTIM_NAMES: Record<OptimizerName, string> = {
  adamw: 'adamw_torch',
  adamw8bit: 'adamw_8bit',
  paged_adamw: 'paged_adamw_32bit',
  paged_adamw8bit: 'paged_adamw_8bit',
  sgd: 'sgd',
};

/** The optimizer the recipe uses: a GPU budget for optimizer state pages it in peft-ts, so it becomes the paged variant. */
export function trlOptimizer(c: FinetuneConfig): string {
  if (c.optimizerBudgetMb !== null && c.optimizer === 'adamw') return OPTIM_NAMES.paged_adamw;
  if (c.optimizerBudgetMb !== null && c.optimizer === 'adamw8bit') return OPTIM_NAMES.paged_adamw8bit;
  return OPTIM_NAMES[c.optimizer];
}

/** transformers' `lr_scheduler_type` for each schedule (warmup comes from warmup_steps in all three). */
export const SCHEDULER_NAMES: Record<FinetuneConfig['schedule'], string> = {
  constant: 'constant_with_warmup',
  linear: 'linear',
  cosine: 'cosine',
};

/** The save cadence of the recipe: early stopping needs a checkpoint at every evaluation. */
export function trlSaveSteps(c: FinetuneConfig): number | null {
  if (c.earlyStoppingPatience !== null && c.evalEvery !== null) {
    return c.saveEvery !== null && c.saveEvery % c.evalEvery === 0 ? c.saveEvery : c.evalEvery;
  }
  return c.saveEvery;
}

/**
 * Every configuration key, mapped. The type makes a new key a compile error here, and the test
 * over the resolved schema fails until the key is added.
 */
export const TRL_MAPPING: Record<keyof FinetuneConfig, KeyMapping> = {
  model: {
    to: '`AutoModelForCausalLM.from_pretrained(MODEL)`, `AutoTokenizer.from_pretrained(MODEL)`',
    difference: 'The path is written as given and read relative to the directory the run is launched from, as `train` reads it.',
  },
  data: {
    to: '`DATA`, read by the script (JSON array or JSONL) into a `datasets.Dataset`',
    difference: 'The same file, referenced as is. Alpaca, Dolly, chat `messages` and ShareGPT records are recognised by their fields as `train` recognises them.',
  },
  output: {
    to: '`SFTConfig.output_dir`; the final adapter goes to `<output>/adapter`',
    difference: 'Checkpoints are TRL\'s `checkpoint-N` directories (adapter + optimizer + scheduler state in PyTorch\'s format), not resumable by `train`; their adapters load anywhere a PEFT adapter does.',
  },
  method: {
    to: '`qlora`: `BitsAndBytesConfig(load_in_4bit=True, ...)` as `quantization_config`; `lora`: no quantization',
    difference: 'A checkpoint that is already 4-bit (with `quantization_config` in config.json) loads 4-bit either way, in both.',
  },
  template: {
    to: '`alpaca`: prompt-completion records with the same prompt text; `model`: conversational `messages` with the tokenizer\'s chat template; `chat`: conversational `messages` with the `<|role|>` tag format set as the tokenizer\'s chat template; `auto`: as `train` chooses per record',
    difference: 'For `model`, TRL renders and masks the conversation itself: an EOS is not appended after the last turn when the template closes it with another token, and the system prompt a template adds is the same. For `chat` and `alpaca` the text is character for character the same.',
  },
  trainOn: {
    to: '`response`: `SFTConfig.completion_only_loss=True` (prompt-completion) or `assistant_only_loss=True` (conversational); `all`: both False',
    difference: '`assistant_only_loss` needs `{% generation %}` markers in the chat template; TRL swaps in a training template for the models it knows and refuses others (use `alpaca` or `chat` then).',
  },
  onInvalid: {
    to: 'the script\'s record check: `error` stops listing the invalid records, `skip` drops them with a count',
    difference: 'The script checks the same fields (non-empty instruction/output, known roles, an assistant turn); the messages are shorter.',
  },
  r: { to: '`LoraConfig.r`', difference: 'None.' },
  alpha: {
    to: '`LoraConfig.lora_alpha` (with `use_rslora=False`)',
    difference: 'None: both scale the update by alpha / r.',
  },
  dropout: { to: '`LoraConfig.lora_dropout`', difference: 'Same rate; the random masks differ.' },
  targets: {
    to: '`LoraConfig.target_modules` (the list, or `"all-linear"`)',
    difference: 'None: PEFT resolves `all-linear` as peft-ts does (every linear layer but the output head) and writes the resolved names into adapter_config.json.',
  },
  modulesToSave: { to: '`LoraConfig.modules_to_save`', difference: 'None.' },
  lr: { to: '`SFTConfig.learning_rate`', difference: 'None.' },
  schedule: {
    to: '`SFTConfig.lr_scheduler_type`: `constant_with_warmup`, `linear`, `cosine`',
    difference: 'None: peft-ts implements transformers\' schedules (decay to zero over the total optimizer steps).',
  },
  warmupRatio: {
    to: '`SFTConfig.warmup_steps` as a fraction below 1',
    difference: 'None: transformers rounds the fraction of the total steps up, as peft-ts does (transformers 5 reads a `warmup_steps` below 1 as a ratio; `warmup_ratio` is deprecated).',
  },
  warmupSteps: { to: '`SFTConfig.warmup_steps` (when > 0, it wins over the ratio, as in peft-ts)', difference: 'None.' },
  epochs: { to: '`SFTConfig.num_train_epochs`', difference: 'None (fractions allowed in both).' },
  maxSteps: { to: '`SFTConfig.max_steps` (-1 when unset)', difference: 'None: it overrides epochs in both.' },
  batchSize: {
    to: '`SFTConfig.per_device_train_batch_size` and `per_device_eval_batch_size`',
    difference: 'Per GPU: with N processes the global batch is N x batchSize x gradientAccumulation. Divide gradientAccumulation by N to keep the batch of the single-GPU run.',
  },
  gradientAccumulation: {
    to: '`SFTConfig.gradient_accumulation_steps`, with `average_tokens_across_devices=True`',
    difference: 'None: both average the loss over the trained tokens of the whole accumulated batch (across GPUs too), not the mean of micro-batch means.',
  },
  maxLength: {
    to: '`SFTConfig.max_length` (truncation keeps the start)',
    difference: 'None: examples longer than max_length are cut at the end and examples with no trained token left are dropped, in both.',
  },
  pack: {
    to: '`SFTConfig.packing=True`, `packing_strategy="bfd"`, `eval_packing=False`; the model loads with `attn_implementation="flash_attention_2"`',
    difference: 'TRL packs best-fit decreasing, peft-ts first-fit in data order: rows hold other example groups. Attention stays inside one example in both (TRL needs FlashAttention for that).',
  },
  maxGradNorm: { to: '`SFTConfig.max_grad_norm`', difference: 'None (0 turns clipping off in both).' },
  optimizer: {
    to: '`SFTConfig.optim`: `adamw_torch`, `adamw_8bit`, `paged_adamw_32bit`, `paged_adamw_8bit`, `sgd`; betas (0.9, 0.999) and eps 1e-8 as in peft-ts',
    difference: 'The 8-bit and paged optimizers are bitsandbytes\'; peft-ts\' 8-bit state uses the same blockwise dynamic quantization, and paging moves state to host memory on demand (CUDA unified memory) rather than beyond a budget.',
  },
  weightDecay: {
    to: '`SFTConfig.weight_decay`',
    difference: 'transformers exempts biases and norm weights from decay; LoRA matrices are decayed in both, modules_to_save norms only in peft-ts.',
  },
  optimizerBudgetMb: {
    to: 'no budget in bitsandbytes: a set budget selects the paged optimizer (`paged_adamw_32bit` / `paged_adamw_8bit`)',
    difference: 'bitsandbytes pages optimizer state on demand when GPU memory runs out, with no fixed budget.',
    refuse: (c) => (c.optimizerBudgetMb !== null && c.optimizer === 'sgd' ? { expected: 'null with optimizer sgd (bitsandbytes has no paged SGD)', got: c.optimizerBudgetMb } : null),
    nearest: (c) =>
      c.optimizerBudgetMb === null
        ? null
        : `optimizerBudgetMb ${c.optimizerBudgetMb}: bitsandbytes has no GPU budget for optimizer state; the nearest equivalent is its paged optimizer, ${trlOptimizer(c)}, which moves state to host memory on demand`,
  },
  validationSplit: {
    to: '`Dataset.train_test_split(test_size=validationSplit, seed=seed)` as `eval_dataset`',
    difference: 'The same fraction is held out, but not the same records (a different seeded shuffle).',
    nearest: (c) => (c.validationSplit > 0 ? `validationSplit ${c.validationSplit}: datasets' train_test_split holds out the same fraction but not the same records as train's seeded split` : null),
  },
  evalEvery: {
    to: '`SFTConfig.eval_strategy="steps"`, `eval_steps`, `eval_on_start=True`; the script evaluates once more after the last step',
    difference: 'None: evaluation before training, every N optimizer steps and at the end, as in peft-ts.',
  },
  earlyStoppingPatience: {
    to: '`EarlyStoppingCallback(early_stopping_patience)` with `load_best_model_at_end=True`, `metric_for_best_model="eval_loss"`',
    difference: 'transformers needs a checkpoint at every evaluation for this (save_steps becomes a multiple of eval_steps) and ends with the best adapter loaded, so `<output>/adapter` is the best one; peft-ts keeps the last in `adapter` and the best in `best-adapter`.',
    nearest: (c) =>
      c.earlyStoppingPatience === null
        ? null
        : `earlyStoppingPatience ${c.earlyStoppingPatience}: transformers' EarlyStoppingCallback loads the best checkpoint at the end, so <output>/adapter is the best adapter (train writes it to best-adapter), and checkpoints are saved every ${String(trlSaveSteps(c))} steps for it`,
  },
  saveEvery: {
    to: '`SFTConfig.save_strategy="steps"`, `save_steps`, `save_total_limit=2`; unset: `save_strategy="no"`',
    difference: 'None beyond the checkpoint format (see output); peft-ts also keeps the newest two.',
  },
  resume: {
    to: 'refused: `--init-adapter <checkpoint>` starts TRL from a checkpoint\'s adapter weights',
    difference: 'Optimizer state, schedule position and data order of a peft-ts checkpoint have no TRL form.',
    refuse: (c) =>
      c.resume === null ? null : { expected: 'null: TRL cannot continue a peft-ts checkpoint\'s optimizer and schedule; pass --init-adapter <checkpoint dir> to start from its adapter weights', got: c.resume },
  },
  overwrite: {
    to: 'the script\'s start: a non-empty output directory is refused unless `OVERWRITE = True`',
    difference: 'None.',
  },
  seed: {
    to: '`SFTConfig.seed` and `data_seed`, `LoraConfig` init under that seed, the split\'s seed',
    difference: 'Same seed, different generators: initial adapter weights, dropout masks and data order differ.',
  },
  gradientCheckpointing: {
    to: '`SFTConfig.gradient_checkpointing` with `use_reentrant=False`',
    difference: 'None (TRL switches to reentrant checkpointing under DeepSpeed ZeRO-3).',
  },
  activationDtype: {
    to: '`f32`: float32 weights and compute (`dtype`, `bnb_4bit_compute_dtype`), `bf16=False`, `fp16=False`, `tf32=False` (bf16 with `pack`); `f16`: float16 compute with `fp16=True` mixed precision',
    difference: 'peft-ts keeps 16-bit weights and computes in f32; PyTorch computes in the weights\' dtype, so `f32` loads non-quantized weights as float32 (twice the memory of bf16). `f16` is approximated by fp16 mixed precision; a packed run computes in bf16, as FlashAttention needs.',
    nearest: (c) => {
      if (c.activationDtype === 'f16') return 'activationDtype f16: PyTorch has no f16 storage between layers with f32 compute; the nearest equivalent is fp16 mixed precision (fp16=True, bnb_4bit_compute_dtype float16)';
      if (c.pack) return 'activationDtype f32 with pack: FlashAttention, which keeps attention inside each packed example, has no f32 kernels; the nearest equivalent computes in bf16 (bf16=True, bnb_4bit_compute_dtype bfloat16)';
      return null;
    },
  },
  quantType: { to: '`BitsAndBytesConfig.bnb_4bit_quant_type` (`nf4` / `fp4`)', difference: 'None (unused with method lora, in both).' },
  doubleQuant: { to: '`BitsAndBytesConfig.bnb_4bit_use_double_quant`', difference: 'None (unused with method lora, in both).' },
  blocksize: {
    to: 'bitsandbytes\' fixed 4-bit block size, 64',
    difference: 'transformers\' BitsAndBytesConfig has no block size: only 64 maps.',
    refuse: (c) => (c.method === 'qlora' && c.blocksize !== 64 ? { expected: '64: bitsandbytes quantizes 4-bit weights in blocks of 64 when transformers loads them', got: c.blocksize } : null),
  },
};

/** The keys the mapping covers. */
export function mappedKeys(): string[] {
  return Object.keys(TRL_MAPPING);
}

/**
 * Checks every key's value: throws a FormatError naming the config file and the first key TRL
 * cannot express; returns the nearest-equivalent lines, in key order.
 */
export function checkTrlMapping(c: FinetuneConfig, source: string): string[] {
  const notes: string[] = [];
  for (const [key, m] of Object.entries(TRL_MAPPING) as [keyof FinetuneConfig, KeyMapping][]) {
    const refused = m.refuse?.(c) ?? null;
    if (refused) throw new FormatError({ file: source, field: key, expected: refused.expected, got: refused.got });
    const line = m.nearest?.(c) ?? null;
    if (line !== null) notes.push(line);
  }
  return notes;
}

/** The mapping as the markdown table in the trainer README. */
export function mappingTableMarkdown(): string {
  const escape = (s: string) => s.replaceAll('|', '\\|');
  const rows = Object.entries(TRL_MAPPING).map(([key, m]) => `| \`${key}\` | ${escape(m.to)} | ${escape(m.difference)} |`);
  return ['| peft-ts key | TRL / PEFT / bitsandbytes / transformers | difference |', '| --- | --- | --- |', ...rows].join('\n');
}
