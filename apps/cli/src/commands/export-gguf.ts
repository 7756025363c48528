// `peft-ts export gguf`: a Hugging Face model directory (optionally with a LoRA adapter merged
// in first) -> one GGUF file that llama.cpp, Ollama and LM Studio load, tokenizer and chat
// template included.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { PeftError } from '@peft-ts/errors';
import { writeGguf, type GgufMetadata } from '@peft-ts/gguf/node';
import { loadModelConfig } from '@peft-ts/models/node';
import { Checkpoint } from '@peft-ts/safetensors/node';
import { checkInputDir } from '@peft-ts/trainer/node';
import { choiceFlag, out, parse, requirePositionals, UsageError } from '../args.js';
import { EXIT_CODES_HELP } from '../errors.js';
import { ggufArch, modelMetadata, tensorPlan, tensorSources, type GgufOutType } from '../gguf/model.js';
import { tokenizerMetadata } from '../gguf/tokenizer.js';

export const EXPORT_GGUF_HELP = `Usage: peft-ts export gguf <model-dir> <out.gguf> [options]

Writes the model as one GGUF file for llama.cpp, Ollama and LM Studio: llama.cpp's tensor names
and hyperparameters, the tokenizer (tokenizer.json) and the chat template
(tokenizer_config.json). Llama and Mistral become "llama" (with the Q/K row permutation),
Qwen2 "qwen2", Phi-3 "phi3" and GPT-2 "gpt2". A tokenizer or rope scaling that llama.cpp
cannot reproduce exactly is refused rather than approximated.

Options:
  --adapter <dir>   merge this PEFT LoRA adapter in first (a 4-bit base is dequantized)
  --type <t>        f32, f16 (default), bf16 or q8_0 for the weight matrices; norms and
                    biases stay f32; q8_0 falls back to f16 for rows not a multiple of 32
  --overwrite       replace <out.gguf> if it exists
  --json            print one JSON object (out, arch, type, tensors, bytes, warnings)

${EXIT_CODES_HELP}`;

export interface ExportGgufResult {
  arch: string;
  tensors: number;
  bytes: number;
  warnings: string[];
}

/** Writes `outFile` from the model directory `dir` (already merged, dense weights). */
export async function exportModelGguf(dir: string, outFile: string, type: GgufOutType, tokenizerDir = dir, name = basename(dir)): Promise<ExportGgufResult> {
  const config = await loadModelConfig(dir);
  const file = join(dir, 'config.json');
  if (config.raw.quantization_config !== undefined) {
    throw new PeftError('UNSUPPORTED', `${file}: quantization_config: expected a dense checkpoint, got a 4-bit one; pass its adapter with --adapter (merging dequantizes) or run peft-ts merge --dtype f16 first`);
  }
  const md: GgufMetadata = new Map();
  const warnings = modelMetadata(config, type, name, md, file);
  const tok = await tokenizerMetadata(tokenizerDir, config.vocabSize, { bos: config.bosTokenId, eos: config.eosTokenIds, pad: config.padTokenId }, md);
  warnings.push(...tok.warnings);
  const ckpt = await Checkpoint.open(dir);
  try {
    const plan = tensorPlan(config, (n) => ckpt.has(n), join(dir, 'model.safetensors'));
    const sources = tensorSources(ckpt, plan, type);
    const r = await writeGguf(outFile, md, sources);
    return { arch: ggufArch(config), tensors: r.tensors, bytes: r.bytes, warnings };
  } finally {
    await ckpt.close();
  }
}

export async function exportGguf(argv: string[]): Promise<number> {
  const { values, positionals } = parse('export gguf', argv, {
    adapter: { type: 'string' },
    type: { type: 'string' },
    overwrite: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(EXPORT_GGUF_HELP);
    return 0;
  }
  const [modelDir = '', outFile = ''] = requirePositionals('export gguf', positionals, ['<model-dir>', '<out.gguf>'], EXPORT_GGUF_HELP);
  const type = choiceFlag('export gguf', 'type', values.type, ['f32', 'f16', 'bf16', 'q8_0'] as const) ?? 'f16';
  if (values.adapter !== undefined && typeof values.adapter !== 'string') throw new UsageError('peft-ts export gguf: --adapter expects one directory');
  await checkInputDir(modelDir, 'a model directory', ['config.json', 'tokenizer.json'], '<model-dir>');
  if (existsSync(outFile) && values.overwrite !== true) {
    if ((await stat(outFile)).isDirectory()) throw new PeftError('OUTPUT_EXISTS', `<out.gguf>: ${outFile}: expected a file path, got a directory`);
    throw new PeftError('OUTPUT_EXISTS', `<out.gguf>: ${outFile}: expected a new file, got one that exists; pass --overwrite to replace it`);
  }
  if (!existsSync(dirname(outFile) || '.')) throw new PeftError('FORMAT', `<out.gguf>: ${outFile}: expected a path in an existing directory, got no directory ${dirname(outFile)}`);
  let source = modelDir;
  let scratch: string | null = null;
  try {
    if (typeof values.adapter === 'string') {
      await checkInputDir(values.adapter, 'a PEFT adapter directory', ['adapter_config.json', 'adapter_model.safetensors'], '--adapter');
      // Merging needs the GPU runtime; load it only on this path.
      const [{ createRuntime }, { mergeIntoCheckpoint }] = await Promise.all([import('@peft-ts/tensor'), import('@peft-ts/merge/node')]);
      scratch = await mkdtemp(join(tmpdir(), 'peft-gguf-merge-'));
      source = join(scratch, 'merged');
      const rt = await createRuntime();
      try {
        await mergeIntoCheckpoint(rt, modelDir, values.adapter, source, { dtype: 'f32' });
      } finally {
        rt.destroy();
      }
    }
    const r = await exportModelGguf(source, outFile, type, modelDir, basename(modelDir));
    for (const w of r.warnings) process.stderr.write(`peft-ts export gguf: warning: ${w}\n`);
    if (values.json === true) out(JSON.stringify({ out: outFile, arch: r.arch, type, tensors: r.tensors, bytes: r.bytes, warnings: r.warnings }));
    else out(`wrote ${outFile}: ${r.arch}, ${r.tensors} tensors, ${type}, ${(r.bytes / 1e6).toFixed(1)} MB`);
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
  return 0;
}
