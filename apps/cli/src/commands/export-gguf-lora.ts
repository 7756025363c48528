// `peft-ts export gguf-lora`: a PEFT LoRA adapter -> the adapter GGUF that llama.cpp's --lora
// and Ollama's ADAPTER load on top of the base model's GGUF (general.type = adapter).
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError, PeftError, UnsupportedError } from '@peft-ts/errors';
import { encodeTensor, gguf, writeGguf, type GgufMetadata, type GgufTensorSource } from '@peft-ts/gguf/node';
import { resolveLoraConfig } from '@peft-ts/lora';
import { loadModelConfig } from '@peft-ts/models/node';
import { Checkpoint } from '@peft-ts/safetensors/node';
import { checkInputDir } from '@peft-ts/trainer/node';
import { out, parse, requirePositionals } from '../args.js';
import { EXIT_CODES_HELP } from '../errors.js';
import { ggufArch, permuteRows, tensorPlan } from '../gguf/model.js';

export const EXPORT_GGUF_LORA_HELP = `Usage: peft-ts export gguf-lora <adapter-dir> <out.gguf> [options]

Writes a PEFT LoRA adapter as an adapter GGUF for llama.cpp (--lora) and Ollama (ADAPTER in a
Modelfile), applied on top of the base model's GGUF from peft-ts export gguf. Tensors are named
blk.N.<tensor>.weight.lora_a / lora_b after the base's llama.cpp names (with the same Q/K row
permutation); rsLoRA scaling is folded into adapter.lora.alpha. Adapters llama.cpp cannot apply
as they are (modules_to_save, DoRA, LoRA biases, per-layer alpha or rank patterns, embedding
targets) are refused, naming what is in the way.

Options:
  --base <model-dir>  the base model directory (default: the adapter's base_model_name_or_path
                      when that is a local directory)
  --overwrite         replace <out.gguf> if it exists
  --json              print one JSON object (out, arch, tensors, alpha, rank)

${EXIT_CODES_HELP}`;

export interface ExportLoraResult {
  arch: string;
  tensors: number;
  alpha: number;
  rank: number;
}

export async function exportLoraGguf(adapterDir: string, baseDir: string, outFile: string): Promise<ExportLoraResult> {
  const configFile = join(adapterDir, 'adapter_config.json');
  const raw = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
  const lora = resolveLoraConfig(raw, configFile);
  const refuse = (field: string, why: string, got: unknown): never => {
    throw new UnsupportedError({ what: `${field} (${why})`, got, where: configFile });
  };
  if (lora.modules_to_save?.length) refuse('modules_to_save', 'llama.cpp applies only low-rank updates; merge the adapter and use export gguf --adapter instead', lora.modules_to_save);
  if (raw.use_dora === true) refuse('use_dora', 'llama.cpp has no DoRA', true);
  if (lora.bias !== 'none') refuse('bias', 'llama.cpp adapters carry no biases', lora.bias);
  if (Object.keys(lora.alpha_pattern).length) refuse('alpha_pattern', 'an adapter GGUF has one alpha', Object.keys(lora.alpha_pattern));
  if (Object.keys(lora.rank_pattern).length && lora.use_rslora) refuse('rank_pattern with use_rslora', 'the rsLoRA scale depends on each rank but an adapter GGUF has one alpha', Object.keys(lora.rank_pattern));
  const config = await loadModelConfig(baseDir);
  const arch = ggufArch(config);
  const base = await Checkpoint.open(baseDir);
  const plan = new Map(tensorPlan(config, (n) => base.has(n), join(baseDir, 'model.safetensors')).map((t) => [t.hf, t]));
  await base.close();
  const ckpt = await Checkpoint.open(join(adapterDir, 'adapter_model.safetensors'));
  const adapterFile = join(adapterDir, 'adapter_model.safetensors');
  try {
    const tensors: GgufTensorSource[] = [];
    let rank = 0;
    for (const name of ckpt.names().sort(naturalOrder)) {
      const m = /^base_model\.model\.(.+)\.lora_A(?:\.default)?\.weight$/.exec(name);
      if (!m) {
        if (/\.lora_B(?:\.default)?\.weight$/.test(name)) continue;
        throw new UnsupportedError({ what: 'adapter tensor (llama.cpp applies only lora_A/lora_B pairs of linear layers)', got: name, where: adapterFile });
      }
      const module = m[1] ?? '';
      const bName = name.replace('.lora_A', '.lora_B');
      if (!ckpt.has(bName)) throw new FormatError({ file: adapterFile, field: bName, expected: `the lora_B tensor paired with ${name}`, got: 'no such tensor' });
      const target = plan.get(`${module}.weight`);
      if (!target || !/^blk\.\d+\.|^output\.weight$/.test(target.gguf) || (target.gguf === 'output.weight' && target.hf !== 'lm_head.weight')) {
        throw new UnsupportedError({ what: 'LoRA target for llama.cpp (only linear layers of the decoder and an untied lm_head)', got: module, where: adapterFile });
      }
      const aShape = ckpt.info(name).shape;
      const bShape = ckpt.info(bName).shape;
      const r = aShape[0] ?? 0;
      if (rank !== 0 && rank !== r && lora.use_rslora) refuse('ranks that differ between layers with use_rslora', 'one alpha per adapter', [rank, r]);
      rank = rank || r;
      const transform = target.transform;
      tensors.push({ name: `${target.gguf}.lora_a`, shape: [...aShape], type: 'F32', data: async () => encodeTensor(await ckpt.readF32(name), 'F32') });
      tensors.push({
        name: `${target.gguf}.lora_b`,
        shape: [...bShape],
        type: 'F32',
        data: async () => {
          const b = await ckpt.readF32(bName);
          // B's rows are the layer's output rows, so they follow the base weight's permutation.
          return encodeTensor(transform.kind === 'permute' ? permuteRows(b, bShape[0] ?? 1, transform.heads) : b, 'F32');
        },
      });
    }
    if (!tensors.length) throw new FormatError({ file: adapterFile, field: '(tensors)', expected: 'lora_A/lora_B pairs', got: 'none' });
    // llama.cpp scales by alpha / rank; rsLoRA scales by alpha / sqrt(rank).
    const alpha = lora.use_rslora ? lora.lora_alpha * Math.sqrt(rank) : lora.lora_alpha;
    const md: GgufMetadata = new Map([
      ['general.architecture', gguf.str(arch)],
      ['general.type', gguf.str('adapter')],
      ['general.name', gguf.str(lora.base_model_name_or_path ?? 'adapter')],
      ['adapter.type', gguf.str('lora')],
      ['adapter.lora.alpha', gguf.f32(alpha)],
    ]);
    await writeGguf(outFile, md, tensors);
    return { arch, tensors: tensors.length, alpha, rank };
  } finally {
    await ckpt.close();
  }
}

function naturalOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export async function exportGgufLora(argv: string[]): Promise<number> {
  const { values, positionals } = parse('export gguf-lora', argv, { base: { type: 'string' }, overwrite: { type: 'boolean' }, json: { type: 'boolean' } });
  if (values.help) {
    out(EXPORT_GGUF_LORA_HELP);
    return 0;
  }
  const [adapterDir = '', outFile = ''] = requirePositionals('export gguf-lora', positionals, ['<adapter-dir>', '<out.gguf>'], EXPORT_GGUF_LORA_HELP);
  await checkInputDir(adapterDir, 'a PEFT adapter directory', ['adapter_config.json', 'adapter_model.safetensors'], '<adapter-dir>');
  let baseDir = typeof values.base === 'string' ? values.base : null;
  if (baseDir === null) {
    const configFile = join(adapterDir, 'adapter_config.json');
    const recorded = (JSON.parse(await readFile(configFile, 'utf8')) as { base_model_name_or_path?: unknown }).base_model_name_or_path;
    if (typeof recorded === 'string' && existsSync(join(recorded, 'config.json'))) baseDir = recorded;
    else throw new FormatError({ file: configFile, field: 'base_model_name_or_path', expected: 'a local model directory (or pass --base <model-dir>)', got: recorded ?? null });
  }
  await checkInputDir(baseDir, 'a model directory', ['config.json'], '--base');
  if (existsSync(outFile) && values.overwrite !== true) {
    if ((await stat(outFile)).isDirectory()) throw new PeftError('OUTPUT_EXISTS', `<out.gguf>: ${outFile}: expected a file path, got a directory`);
    throw new PeftError('OUTPUT_EXISTS', `<out.gguf>: ${outFile}: expected a new file, got one that exists; pass --overwrite to replace it`);
  }
  const r = await exportLoraGguf(adapterDir, baseDir, outFile);
  if (values.json === true) out(JSON.stringify({ out: outFile, arch: r.arch, tensors: r.tensors, alpha: r.alpha, rank: r.rank }));
  else out(`wrote ${outFile}: ${r.arch} LoRA adapter, ${r.tensors / 2} layers, rank ${r.rank}, alpha ${r.alpha}`);
  return 0;
}
