// `peft-ts generate`: text from a base model, a base model plus an adapter, or a merged model, streamed.
import { tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { createRuntime } from '@peft-ts/tensor';
import { loadModel, loadModelConfig } from '@peft-ts/models/node';
import { LoraModel } from '@peft-ts/lora/node';
import { mergeAdapter } from '@peft-ts/merge';
import { checkInputDir, checkTokenizerFits, generateText, modelLoadOptions, promptIds } from '@peft-ts/trainer/node';
import { choiceFlag, numberFlag, out, parse, requirePositionals, UsageError } from '../args.js';
import { EXIT_CODES_HELP } from '../errors.js';
import { adapterBaseMismatch } from '../adapter-base.js';


export const GENERATE_HELP = `Usage: peft-ts generate <model-dir> --prompt <text> [options]

Generates a continuation, streaming tokens to stdout as they come. <model-dir> is a base model,
a merged model, or a base with --adapter.

Options:
  --prompt <text>            the instruction (required)
  --input <text>             Alpaca "input" context for the instruction
  --adapter <dir>            a PEFT LoRA adapter to apply
  --template <t>             alpaca (default), chat, model (the tokenizer's chat template), raw
  --qlora                    load the base weights in 4-bit NF4 (as in QLoRA training)
  --merge-in-memory          with --adapter on a dense base: add the adapter into the base
                             weights after loading (W + scale * B @ A, as merge does), so each
                             token costs what the base alone costs; outputs equal the unmerged
                             adapter's to float32 round-off
  --max-new-tokens <n>       default 128
  --temperature <t>          sample with this temperature (default: greedy)
  --top-k <n>, --top-p <p>   sampling filters
  --repetition-penalty <r>   > 1 discourages repeats
  --seed <n>                 sampling seed (default 0)
  --stop <text>              stop when the output contains this text (repeatable)
  --json                     print one JSON object (prompt_ids, output_ids, text, finish_reason)
                             instead of streaming text

The prompt is tokenized as training tokenizes it: one BOS (if the tokenizer adds one) and no
EOS, or exactly what the model's chat template writes for --template model.

${EXIT_CODES_HELP}`;

export async function generateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('generate', argv, {
    prompt: { type: 'string' },
    input: { type: 'string' },
    adapter: { type: 'string' },
    template: { type: 'string' },
    qlora: { type: 'boolean' },
    'merge-in-memory': { type: 'boolean' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    'repetition-penalty': { type: 'string' },
    seed: { type: 'string' },
    stop: { type: 'string', multiple: true },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(GENERATE_HELP);
    return 0;
  }
  const [dir = ''] = requirePositionals('generate', positionals, ['<model-dir>'], GENERATE_HELP);
  if (typeof values.prompt !== 'string') throw new UsageError(`peft-ts generate: --prompt is required\n\n${GENERATE_HELP}`);
  const template = choiceFlag('generate', 'template', values.template, ['alpaca', 'chat', 'model', 'raw'] as const) ?? ('alpaca');
  const temperature = numberFlag('generate', 'temperature', values.temperature, { min: 0 });
  const topK = numberFlag('generate', 'top-k', values['top-k'], { integer: true, min: 0 });
  const topP = numberFlag('generate', 'top-p', values['top-p'], { min: 0 });
  const repetitionPenalty = numberFlag('generate', 'repetition-penalty', values['repetition-penalty'], { min: 0 });
  const maxNewTokens = numberFlag('generate', 'max-new-tokens', values['max-new-tokens'], { integer: true, min: 1 }) ?? 128;
  const seed = numberFlag('generate', 'seed', values.seed, { integer: true, min: 0 }) ?? 0;
  const json = values.json === true;
  const mergeInMemory = values['merge-in-memory'] === true;
  if (mergeInMemory && typeof values.adapter !== 'string') throw new UsageError(`peft-ts generate: --merge-in-memory needs --adapter\n\n${GENERATE_HELP}`);
  if (mergeInMemory && values.qlora === true) {
    throw new UsageError('peft-ts generate: --merge-in-memory needs dense base weights; with --qlora the base is 4-bit (merge into a checkpoint with `peft-ts merge` instead)');
  }
  await checkInputDir(dir, 'a model directory', ['config.json', 'tokenizer.json'], '<model-dir>');
  if (typeof values.adapter === 'string') {
    await checkInputDir(values.adapter, 'a PEFT adapter directory', ['adapter_config.json', 'adapter_model.safetensors'], '--adapter');
    const mismatch = await adapterBaseMismatch(dir, values.adapter);
    if (mismatch) process.stderr.write(`peft-ts generate: warning: ${mismatch}\n`);
  }
  const tokenizer = await tokenizerFromDir(dir);
  checkTokenizerFits(tokenizer, await loadModelConfig(dir), dir);
  const rt = await createRuntime({ seed });
  try {
    const model = await loadModel(rt, dir, await modelLoadOptions(dir, values.qlora === true));
    if (typeof values.adapter === 'string') {
      const lora = new LoraModel(model);
      await lora.loadAdapter(values.adapter);
      // Inference: LoRA dropout off, as PEFT's model.eval().
      lora.train(false);
      if (mergeInMemory) mergeAdapter(lora);
    }
    const prompt = promptIds(tokenizer, template, values.prompt, typeof values.input === 'string' ? values.input : '');
    const sampling = temperature !== undefined && temperature > 0;
    const r = await generateText(model, tokenizer, prompt, {
      maxNewTokens,
      seed,
      doSample: sampling,
      ...(sampling ? { temperature } : {}),
      ...(topK !== undefined ? { topK } : {}),
      ...(topP !== undefined ? { topP } : {}),
      ...(repetitionPenalty !== undefined ? { repetitionPenalty } : {}),
      ...(Array.isArray(values.stop) ? { stopStrings: values.stop } : {}),
      ...(json ? {} : { onText: (t: string) => process.stdout.write(t) }),
    });
    if (json) out(JSON.stringify({ prompt_ids: r.promptIds, output_ids: r.tokens, text: r.text, finish_reason: r.finishReason }));
    else {
      process.stdout.write('\n');
      process.stderr.write(`[${r.tokens.length} tokens, finished by ${r.finishReason}]\n`);
    }
    model.dispose();
  } finally {
    rt.destroy();
  }
  return 0;
}
