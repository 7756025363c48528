// `peft-ts export trl`: a train config turned into a runnable TRL + accelerate recipe, every key
// mapped, refused, or named with its nearest equivalent.
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import { writeDirAtomically } from '@peft-ts/safetensors/node';
import { checkInputDir, checkOutputDir, PathError, resolveFinetuneConfig, withPath, type FinetuneConfig } from '@peft-ts/trainer/node';
import { out, parse, UsageError } from '../args.js';
import { EXIT_CODES_HELP, overwriteByFlag } from '../errors.js';
import { checkTrlMapping, TRL_TARGET } from '../trl/mapping.js';
import { trlRecipe } from '../trl/recipe.js';
import { readConfigFile } from './train.js';

export const EXPORT_TRL_HELP = `Usage: peft-ts export trl --config run.(yaml|json) --out <dir> [--init-adapter <dir>] [--overwrite]

Writes a TRL + accelerate recipe for the run that \`peft-ts train --config run.yaml\` would do,
for more GPUs than one: train.py (transformers, PEFT, TRL ${TRL_TARGET.trl}, bitsandbytes) with the
BitsAndBytesConfig, LoraConfig and SFTConfig of the config mapped one to one,
accelerate_config.yaml (data parallel), deepspeed_zero3.json and a README.md with the launch
commands. The data file is referenced as is. A setting TRL has no equivalent for is refused
(exit 3, naming the key), or mapped to its nearest equivalent and named on stderr and in
README.md; none is dropped.

Options:
  --config <file>        the train config (JSON or YAML), as \`train --config\` takes it
  --out <dir>            the recipe directory to write (written whole, or not at all)
  --init-adapter <dir>   start from this PEFT adapter's weights (a peft-ts adapter or
                         checkpoint directory) instead of a fresh adapter
  --overwrite            replace an existing --out directory

Then: accelerate launch --config_file <dir>/accelerate_config.yaml <dir>/train.py

${EXIT_CODES_HELP}`;

const FLAGS = {
  config: { type: 'string' },
  out: { type: 'string' },
  'init-adapter': { type: 'string' },
  overwrite: { type: 'boolean' },
} as const;

/** An adapter to start from must be a PEFT adapter whose rank and alpha are the config's. */
async function checkInitAdapter(dir: string, c: FinetuneConfig): Promise<void> {
  await checkInputDir(dir, 'a PEFT adapter directory', ['adapter_config.json', 'adapter_model.safetensors'], '--init-adapter');
  const file = join(dir, 'adapter_config.json');
  const text = await withPath(file, 'an adapter_config.json that can be read', () => readFile(file, 'utf8'));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new FormatError({ file, field: '(syntax)', expected: 'valid JSON', got: (cause as Error).message.split('\n')[0] ?? '', cause });
  }
  const a = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  if (a.r !== c.r) throw new FormatError({ file, field: 'r', expected: `r ${c.r} as in the config (the adapter's shapes decide it)`, got: a.r });
  if (a.lora_alpha !== c.alpha) throw new FormatError({ file, field: 'lora_alpha', expected: `alpha ${c.alpha} as in the config`, got: a.lora_alpha });
}

export async function exportTrl(argv: string[]): Promise<number> {
  const { values, positionals } = parse('export trl', argv, FLAGS);
  if (values.help) {
    out(EXPORT_TRL_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`peft-ts export trl: unexpected argument ${JSON.stringify(positionals[0])} (use --config and --out)`);
  if (typeof values.config !== 'string') throw new UsageError('peft-ts export trl: --config is required: expected the train config file');
  if (typeof values.out !== 'string') throw new UsageError('peft-ts export trl: --out is required: expected the recipe directory to write');
  const configPath = values.config;
  const outDir = values.out;
  const overwrite = values.overwrite === true;
  const initAdapter = typeof values['init-adapter'] === 'string' ? values['init-adapter'] : null;

  const config = resolveFinetuneConfig(await readConfigFile(configPath), configPath);
  const notes = checkTrlMapping(config, configPath);
  if (initAdapter !== null) await checkInitAdapter(initAdapter, config);
  const target = await checkOutputDir(outDir, '--out');
  if (target.exists && !overwrite) throw new PathError({ path: outDir, expected: 'a new directory for the recipe (pass --overwrite to replace it)', got: target.nonEmpty ? 'a directory with files' : 'an existing directory', label: '--out' });

  const files = trlRecipe(config, { configName: basename(configPath), initAdapter, notes });
  await overwriteByFlag('--out', outDir, () =>
    writeDirAtomically(outDir, overwrite, async (tmp) => {
      for (const [name, text] of Object.entries(files)) await writeFile(join(tmp, name), text);
    }),
  );
  for (const note of notes) process.stderr.write(`export trl: nearest equivalent: ${note}\n`);
  out(`wrote ${Object.keys(files).join(', ')} to ${outDir}\nrun: accelerate launch --config_file ${join(outDir, 'accelerate_config.yaml')} ${join(outDir, 'train.py')}`);
  return 0;
}
