// `peft-ts eval`: loss and perplexity on held-out data, the base and the base with an adapter
// side by side, on response tokens only or on every token. The sweep scores its runs with it.
import { IGNORE_INDEX, BatchIterator, loadDataset, splitDataset, Tokenizer, tokenizeExamples, type TokenizedExample, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { FormatError } from '@peft-ts/errors';
import { createRuntime } from '@peft-ts/tensor';
import { loadModel, loadModelConfig, type CausalLM } from '@peft-ts/models/node';
import { LoraModel } from '@peft-ts/lora/node';
import { checkInputDir, checkInputFile, checkTokenizerFits, evaluateLoss, modelLoadOptions, type EvaluationResult } from '@peft-ts/trainer/node';
import { choiceFlag, numberFlag, out, parse, UsageError } from '../args.js';
import { EXIT_CODES_HELP } from '../errors.js';
import { adapterBaseMismatch } from '../adapter-base.js';
import { progressBar } from '../progress.js';

export const EVAL_HELP = `Usage: peft-ts eval --model <dir> --data <file> [--adapter <dir>] [options]

Loss and perplexity on held-out data: the base model, and with --adapter the base with the
adapter beside it. The loss is the mean cross-entropy over the scored tokens, as the trainer's
validation loss; perplexity is its exponential.

Options:
  --model <dir>               Hugging Face model directory (the base)
  --data <file>               held-out data: Alpaca / Dolly / chat messages / ShareGPT, JSON or JSONL
  --adapter <dir>             a PEFT LoRA adapter to score beside the base
  --tokens <what>             response (default): score response tokens only, as training does;
                              all: score every token
  --template <t>              auto (default), alpaca, chat, model
  --max-length <n>            truncate examples to n tokens (default 512)
  --batch-size <n>            examples per forward pass (default 4; the result does not depend on it)
  --qlora                     load the base in 4-bit NF4 (as QLoRA training does); use it for an
                              adapter trained with QLoRA
  --validation-split <f>      score only the part of --data that \`peft-ts train\` holds out with this
  --seed <n>                  validation split and seed (default seed 42), e.g. to check a run
  --json                      print one JSON object instead of the table

${EXIT_CODES_HELP}`;

const FLAGS = {
  model: { type: 'string' },
  data: { type: 'string' },
  adapter: { type: 'string' },
  tokens: { type: 'string' },
  template: { type: 'string' },
  'max-length': { type: 'string' },
  'batch-size': { type: 'string' },
  qlora: { type: 'boolean' },
  'validation-split': { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export interface HeldOutOptions {
  template: 'auto' | 'alpaca' | 'chat' | 'model';
  tokens: 'response' | 'all';
  maxLength: number;
  /** With a fraction, only the examples `train` holds out with this split and seed. */
  validationSplit?: number;
  seed?: number;
}

/**
 * The held-out examples tokenized as training tokenizes them. Examples with no scored token are
 * left out, as training drops them; with a split, the same examples training holds out.
 */
export async function loadHeldOut(data: string, tokenizer: Tokenizer, o: HeldOutOptions): Promise<TokenizedExample[]> {
  const dataset = await loadDataset(data);
  const { examples } = tokenizeExamples(dataset.examples, tokenizer, { ...(o.template === 'auto' ? {} : { template: o.template }), trainOn: o.tokens, maxLength: o.maxLength });
  const usable = examples.map((_, i) => i).filter((i) => examples[i]?.labels.some((l, t) => t > 0 && l !== IGNORE_INDEX) ?? false);
  const picked = o.validationSplit !== undefined && o.validationSplit > 0 ? splitDataset(usable, { fraction: o.validationSplit, seed: o.seed ?? 42 }).validation : usable;
  const result = picked.map((i) => examples[i]).filter((e): e is TokenizedExample => e !== undefined);
  if (result.length === 0) throw new FormatError({ file: data, field: 'records', expected: `at least one example with a scored token within max length ${o.maxLength}`, got: 'none' });
  return result;
}

/** Loss over the examples in batches of `batchSize`, in file order. */
export async function scoreExamples(model: CausalLM, examples: readonly TokenizedExample[], tokenizer: Tokenizer, batchSize: number, maxLength: number, lora?: LoraModel, label = 'eval'): Promise<EvaluationResult> {
  const it = new BatchIterator([...examples], { batchSize, padId: tokenizer.padId, seed: 0, shuffle: false, maxLength });
  const bar = progressBar(label, 'batches');
  const result = await evaluateLoss(model, { numBatches: (e) => it.numBatches(e), batchAt: (e, i) => it.batchAt(e, i) }, { ...(lora ? { lora } : {}), onBatch: (done, total) => bar.update(done, total) });
  bar.finish();
  return result;
}

export async function evalCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('eval', argv, FLAGS);
  if (values.help) {
    out(EVAL_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`peft-ts eval: unexpected argument ${JSON.stringify(positionals[0])} (use --model and --data)`);
  if (typeof values.model !== 'string') throw new UsageError('peft-ts eval: --model is required: expected a model directory');
  if (typeof values.data !== 'string') throw new UsageError('peft-ts eval: --data is required: expected a held-out data file');
  const tokens = choiceFlag('eval', 'tokens', values.tokens, ['response', 'all'] as const) ?? 'response';
  const template = choiceFlag('eval', 'template', values.template, ['auto', 'alpaca', 'chat', 'model'] as const) ?? 'auto';
  const maxLength = numberFlag('eval', 'max-length', values['max-length'], { integer: true, min: 8 }) ?? 512;
  const batchSize = numberFlag('eval', 'batch-size', values['batch-size'], { integer: true, min: 1 }) ?? 4;
  const split = numberFlag('eval', 'validation-split', values['validation-split'], { min: 0 });
  if (split !== undefined && split > 0.5) throw new UsageError(`peft-ts eval: --validation-split: expected a fraction in [0, 0.5], got ${split}`);
  const seed = numberFlag('eval', 'seed', values.seed, { integer: true, min: 0 }) ?? 42;
  const model = values.model;
  const adapter = typeof values.adapter === 'string' ? values.adapter : undefined;
  await checkInputDir(model, 'a model directory', ['config.json', 'tokenizer.json'], '--model');
  await checkInputFile(values.data, 'a data file (JSON or JSONL)', '--data');
  if (adapter !== undefined) {
    await checkInputDir(adapter, 'a PEFT adapter directory', ['adapter_config.json', 'adapter_model.safetensors'], '--adapter');
    const mismatch = await adapterBaseMismatch(model, adapter);
    if (mismatch) process.stderr.write(`peft-ts eval: warning: ${mismatch}\n`);
  }
  const tokenizer = await tokenizerFromDir(model);
  checkTokenizerFits(tokenizer, await loadModelConfig(model), model);
  const examples = await loadHeldOut(values.data, tokenizer, { template, tokens, maxLength, ...(split !== undefined ? { validationSplit: split, seed } : {}) });
  const rt = await createRuntime({ seed });
  try {
    const lm = await loadModel(rt, model, await modelLoadOptions(model, values.qlora === true));
    const base = await scoreExamples(lm, examples, tokenizer, batchSize, maxLength, undefined, 'eval base');
    let adapted: EvaluationResult | null = null;
    if (adapter !== undefined) {
      const lora = new LoraModel(lm);
      await lora.loadAdapter(adapter);
      adapted = await scoreExamples(lm, examples, tokenizer, batchSize, maxLength, lora, 'eval adapter');
    }
    lm.dispose();
    if (values.json === true) {
      const row = (r: EvaluationResult): Record<string, number> => ({ loss: r.loss, perplexity: r.perplexity });
      out(JSON.stringify({ data: values.data, examples: examples.length, tokens: base.tokens, scored: tokens, base: row(base), ...(adapted ? { adapter: row(adapted) } : {}) }));
    } else out(evalTable(values.data, examples.length, tokens, base, adapted));
  } finally {
    rt.destroy();
  }
  return 0;
}

/** The result as a small table: one row per model, and the change the adapter makes. */
export function evalTable(data: string, examples: number, tokens: 'response' | 'all', base: EvaluationResult, adapted: EvaluationResult | null): string {
  const row = (name: string, r: EvaluationResult): string => `${name.padEnd(9)} ${r.loss.toFixed(4).padStart(9)} ${r.perplexity.toFixed(2).padStart(11)}`;
  const lines = [
    `${data}: ${examples} examples, ${base.tokens.toLocaleString('en-US')} scored tokens (${tokens === 'response' ? 'responses only' : 'all tokens'})`,
    `${'model'.padEnd(9)} ${'loss'.padStart(9)} ${'perplexity'.padStart(11)}`,
    row('base', base),
  ];
  if (adapted) {
    lines.push(row('adapter', adapted));
    lines.push(`adapter - base: loss ${(adapted.loss - base.loss >= 0 ? '+' : '') + (adapted.loss - base.loss).toFixed(4)}, perplexity x${(adapted.perplexity / base.perplexity).toFixed(3)}`);
  }
  return lines.join('\n');
}
