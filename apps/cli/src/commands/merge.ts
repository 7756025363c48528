// `peft-ts merge`: an adapter merged into its base checkpoint, written as a plain HF checkpoint.
import { basename } from 'node:path';
import { createRuntime } from '@peft-ts/tensor';
import { mergeIntoCheckpoint, qloraMergeDrift } from '@peft-ts/merge/node';
import { checkInputDir, checkOutputDir, withPath } from '@peft-ts/trainer/node';
import { PeftError } from '@peft-ts/errors';
import { choiceFlag, numberFlag, out, parse, requirePositionals } from '../args.js';
import { progressBar } from '../progress.js';
import { adapterBaseMismatch } from '../adapter-base.js';
import { EXIT_CODES_HELP, overwriteByFlag } from '../errors.js';

export const MERGE_HELP = `Usage: peft-ts merge <base-dir> <adapter-dir> <out-dir> [options]

Adds the adapter's update into the base weights, tensor by tensor, and writes a Hugging Face
checkpoint that transformers and vLLM load without PEFT. A 4-bit (bitsandbytes) base is
dequantized to the output dtype.

Options:
  --dtype <d>        auto (as stored; the compute dtype for a 4-bit base), f32, f16, bf16
  --max-shard-mb <n> largest output shard (default 5000)
  --overwrite        replace <out-dir> if it exists
  --drift            also report, per layer, how much merging a QLoRA adapter into the 16-bit
                     base moves the weights away from the NF4 weights it was trained on
  --json             print one JSON object (out_dir, merged_modules, files, drift) instead of text

${EXIT_CODES_HELP}`;

export async function merge(argv: string[]): Promise<number> {
  const { values, positionals } = parse('merge', argv, {
    dtype: { type: 'string' },
    'max-shard-mb': { type: 'string' },
    overwrite: { type: 'boolean' },
    drift: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(MERGE_HELP);
    return 0;
  }
  const [base = '', adapter = '', outDir = ''] = requirePositionals('merge', positionals, ['<base-dir>', '<adapter-dir>', '<out-dir>'], MERGE_HELP);
  const dtype = choiceFlag('merge', 'dtype', values.dtype, ['auto', 'f32', 'f16', 'bf16'] as const) ?? 'auto';
  const shardMb = numberFlag('merge', 'max-shard-mb', values['max-shard-mb'], { min: 1 });
  await checkInputDir(base, 'a model directory', ['config.json'], '<base-dir>');
  await checkInputDir(adapter, 'a PEFT adapter directory', ['adapter_config.json', 'adapter_model.safetensors'], '<adapter-dir>');
  const target = await checkOutputDir(outDir, '<out-dir>');
  if (target.exists && values.overwrite !== true) throw new PeftError('OUTPUT_EXISTS', `<out-dir>: ${outDir}: expected a new directory, got one that exists; pass --overwrite to replace it`);
  const mismatch = await adapterBaseMismatch(base, adapter);
  if (mismatch) process.stderr.write(`peft-ts merge: warning: ${mismatch}\n`);
  const rt = await createRuntime();
  try {
    const bar = progressBar('merge');
    // A write that fails (a full disk) names the output rather than no file at all.
    const r = await overwriteByFlag('<out-dir>', outDir, () =>
      withPath(outDir, 'a merged checkpoint written in full', () =>
        mergeIntoCheckpoint(rt, base, adapter, outDir, {
          dtype,
          overwrite: values.overwrite === true,
          ...(shardMb ? { maxShardBytes: shardMb * 1e6 } : {}),
          onProgress: (p) => bar.update(p.index, p.total),
        }),
      ),
    );
    bar.finish();
    if (values.json === true) {
      const drift = values.drift === true ? await qloraMergeDrift(rt, base, adapter) : null;
      out(JSON.stringify({ out_dir: outDir, merged_modules: r.mergedModules, files: r.files.map((f) => basename(f)), ...(drift ? { drift: drift.map((d) => ({ module: d.module, max_abs: d.maxAbs, mean_abs: d.meanAbs, mean_abs_update: d.meanAbsUpdate, ratio: d.ratio })) } : {}) }));
      return 0;
    }
    out(`wrote ${outDir}: ${r.mergedModules} layers merged, ${r.files.length} file(s)`);
    if (values.drift) {
      const drift = await qloraMergeDrift(rt, base, adapter);
      out('\nlayer drift of merging into 16-bit weights (vs the NF4 weights the adapter saw):');
      out(`${'module'.padEnd(48)} ${'max |dW|'.padStart(10)} ${'mean |dW|'.padStart(10)} ${'mean update'.padStart(12)} ${'ratio'.padStart(8)}`);
      for (const d of drift) out(`${d.module.padEnd(48)} ${d.maxAbs.toExponential(2).padStart(10)} ${d.meanAbs.toExponential(2).padStart(10)} ${d.meanAbsUpdate.toExponential(2).padStart(12)} ${d.ratio.toFixed(2).padStart(8)}`);
      const worst = drift.reduce((a, d) => Math.max(a, d.ratio), 0);
      out(`\nworst ratio ${worst.toFixed(2)}: ${worst > 1 ? 'merging into the 16-bit base changes some layers more than training did; consider merging into the dequantized NF4 weights' : 'quantization error is small next to the learned update'}`);
    }
  } finally {
    rt.destroy();
  }
  return 0;
}
