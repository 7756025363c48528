// `peft-ts quantize`: a Hugging Face checkpoint to a bitsandbytes-layout 4-bit checkpoint.
import { basename } from 'node:path';
import { quantizeCheckpoint } from '@peft-ts/nf4-quant/node';
import { PeftError } from '@peft-ts/errors';
import { checkInputDir, checkOutputDir, withPath } from '@peft-ts/trainer/node';
import { choiceFlag, numberFlag, out, parse, requirePositionals } from '../args.js';
import { progressBar } from '../progress.js';
import { EXIT_CODES_HELP, overwriteByFlag } from '../errors.js';

export const QUANTIZE_HELP = `Usage: peft-ts quantize <model-dir> <out-dir> [options]

Quantizes every linear layer (lm_head, embeddings and norms stay as they are) to 4 bits in the
layout bitsandbytes and transformers save, streaming tensor by tensor. The output loads in
transformers with bitsandbytes, and in peft-ts for QLoRA.

Options:
  --type <t>          nf4 (default) or fp4
  --blocksize <n>     64 (default), 32..4096
  --no-double-quant   keep absmax in float32 instead of 8 bits
  --overwrite         replace <out-dir> if it exists
  --json              print one JSON object (out_dir, files, quantized, kept) instead of text

${EXIT_CODES_HELP}`;

export async function quantize(argv: string[]): Promise<number> {
  const { values, positionals } = parse('quantize', argv, {
    type: { type: 'string' },
    blocksize: { type: 'string' },
    'no-double-quant': { type: 'boolean' },
    overwrite: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(QUANTIZE_HELP);
    return 0;
  }
  const [inDir = '', outDir = ''] = requirePositionals('quantize', positionals, ['<model-dir>', '<out-dir>'], QUANTIZE_HELP);
  await checkInputDir(inDir, 'a model directory', ['config.json'], '<model-dir>');
  const target = await checkOutputDir(outDir, '<out-dir>');
  if (target.exists && values.overwrite !== true) throw new PeftError('OUTPUT_EXISTS', `<out-dir>: ${outDir}: expected a new directory, got one that exists; pass --overwrite to replace it`);
  const bar = progressBar('quantize');
  const result = await overwriteByFlag('<out-dir>', outDir, () => withPath(outDir, 'a quantized checkpoint written in full', () => quantizeCheckpoint(inDir, outDir, {
    type: choiceFlag('quantize', 'type', values.type, ['nf4', 'fp4'] as const) ?? 'nf4',
    blocksize: numberFlag('quantize', 'blocksize', values.blocksize, { integer: true, min: 32 }) ?? 64,
    doubleQuant: values['no-double-quant'] !== true,
    overwrite: values.overwrite === true,
    onProgress: (p) => bar.update(p.index, p.total, { tensor: p.tensor }),
  })));
  bar.finish();
  if (values.json === true) {
    out(JSON.stringify({ out_dir: result.outDir, files: result.files.map((f) => basename(f)), quantized: result.quantized, kept: result.kept, copied: result.copied }));
    return 0;
  }
  out(`wrote ${result.outDir}: ${result.quantized.length} weights in 4 bits, ${result.kept.length} tensors kept, ${result.files.length} file(s)`);
  return 0;
}
