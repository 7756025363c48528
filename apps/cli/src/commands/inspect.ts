// `peft-ts inspect`: a summary of a model directory (architecture, parameters, dtypes, quantization)
// or of an adapter directory (rank, alpha, targets, trainable parameters).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import { Checkpoint } from '@peft-ts/safetensors/node';
import { countParameters, loadModelConfig, modelLayout } from '@peft-ts/models/node';
import { resolveLoraConfig } from '@peft-ts/lora';
import { out, parse, requirePositionals } from '../args.js';
import { inspectGguf } from './inspect-gguf.js';

export const INSPECT_HELP = `Usage: peft-ts inspect <model-dir | adapter-dir | file.gguf> [--json]

Summarises a Hugging Face model directory (architecture, parameter count, tensor dtypes,
quantization), a PEFT adapter directory (rank, alpha, target modules, trainable parameters),
or a GGUF file (architecture, tensor types, tokenizer, special tokens, chat template, with
warnings for pad == eos, a template that never emits EOS, and a BOS added twice).
`;

export async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parse('inspect', argv, { json: { type: 'boolean' } });
  if (values.help) {
    out(INSPECT_HELP);
    return 0;
  }
  const [dir = ''] = requirePositionals('inspect', positionals, ['<dir>'], INSPECT_HELP);
  if (dir.toLowerCase().endsWith('.gguf')) return inspectGguf(dir, values.json === true);
  if (existsSync(join(dir, 'adapter_config.json'))) {
    const file = join(dir, 'adapter_config.json');
    const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    const config = resolveLoraConfig(raw, file);
    const ckpt = await Checkpoint.open(join(dir, 'adapter_model.safetensors'));
    let params = 0;
    const modules = new Set<string>();
    for (const n of ckpt.names()) {
      params += ckpt.info(n).shape.reduce((a, b) => a * b, 1);
      const m = /^base_model\.model\.(.+)\.lora_[AB]\.weight$/.exec(n);
      if (m?.[1]) modules.add(m[1]);
    }
    await ckpt.close();
    const base = typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null;
    const summary = { kind: 'adapter', base, r: config.r, lora_alpha: config.lora_alpha, lora_dropout: config.lora_dropout, use_rslora: config.use_rslora, target_modules: config.target_modules, modules: modules.size, trainableParameters: params, tensors: ckpt.names().length };
    if (values.json) out(JSON.stringify(summary, null, 2));
    else {
      out(`PEFT LoRA adapter in ${dir}`);
      out(`  base model:      ${base ?? 'not recorded'}`);
      out(`  r / alpha:       ${config.r} / ${config.lora_alpha} (scale ${(config.use_rslora ? config.lora_alpha / Math.sqrt(config.r) : config.lora_alpha / config.r).toFixed(4)}${config.use_rslora ? ', rsLoRA' : ''})`);
      out(`  dropout:         ${config.lora_dropout}`);
      out(`  target modules:  ${JSON.stringify(config.target_modules)} (${modules.size} layers)`);
      out(`  parameters:      ${params.toLocaleString('en-US')} in ${summary.tensors} tensors`);
    }
    return 0;
  }
  if (!existsSync(join(dir, 'config.json'))) {
    throw new FormatError({ file: dir, field: '(directory)', expected: 'a model directory (config.json) or an adapter directory (adapter_config.json)', got: 'neither file' });
  }
  const config = await loadModelConfig(dir);
  const params = countParameters(config);
  const ckpt = await Checkpoint.open(dir);
  const dtypes = new Map<string, number>();
  for (const n of ckpt.names()) dtypes.set(ckpt.info(n).dtype, (dtypes.get(n) ?? dtypes.get(ckpt.info(n).dtype) ?? 0) + 1);
  const files = ckpt.files.length;
  const bytes = ckpt.totalSize;
  await ckpt.close();
  const quant = config.raw.quantization_config as Record<string, unknown> | undefined;
  const layout = modelLayout(config);
  const summary = {
    kind: 'model',
    architecture: config.className,
    modelType: config.arch,
    parameters: params.total,
    layers: config.numLayers,
    hidden: config.hiddenSize,
    heads: `${config.numHeads} query / ${config.numKvHeads} key-value, head dim ${config.headDim}`,
    vocab: config.vocabSize,
    maxPositions: config.maxPositions,
    rope: config.rope,
    tiedEmbeddings: config.tieWordEmbeddings,
    dtypes: Object.fromEntries(dtypes),
    files,
    bytes,
    quantization: quant ?? null,
    linearModules: [...new Set(layout.linears.map((l) => l.short))],
  };
  if (values.json) out(JSON.stringify(summary, null, 2));
  else {
    out(`${config.className} in ${dir}`);
    out(`  parameters:      ${params.total.toLocaleString('en-US')} (${config.numLayers} layers, hidden ${config.hiddenSize}, vocab ${config.vocabSize})`);
    out(`  attention:       ${summary.heads}${config.slidingWindow ? `, sliding window ${config.slidingWindow}` : ''}`);
    out(`  positions:       ${config.rope ? `rotary (${config.rope.type}, theta ${config.rope.theta}${config.rope.partialRotaryFactor < 1 ? `, partial ${config.rope.partialRotaryFactor}` : ''})` : 'learned'} up to ${config.maxPositions}`);
    out(`  weights:         ${files} file(s), ${(bytes / 1e6).toFixed(1)} MB, ${[...dtypes].map(([d, n]) => `${n} ${d}`).join(', ')}`);
    out(`  quantization:    ${quant ? `${typeof quant.quant_method === 'string' ? quant.quant_method : 'unknown'} ${typeof quant.bnb_4bit_quant_type === 'string' ? quant.bnb_4bit_quant_type : ''}${quant.bnb_4bit_use_double_quant ? ' + double quant' : ''}` : 'none'}`);
    out(`  linear modules:  ${summary.linearModules.join(', ')} (LoRA targets)`);
  }
  return 0;
}
