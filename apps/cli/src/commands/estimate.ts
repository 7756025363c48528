// `peft-ts estimate`: GPU memory for full fine-tuning, LoRA and QLoRA of a model directory or a named size.
import { existsSync } from 'node:fs';
import { estimateMemory, formatDecimalBytes, loadModelConfig, namedConfig, NAMED_SIZES, type FinetuneMethod } from '@peft-ts/models/node';
import { DEFAULT_CONFIG } from '@peft-ts/trainer';
import { choiceFlag, numberFlag, out, parse, requirePositionals, UsageError } from '../args.js';

export const ESTIMATE_HELP = `Usage: peft-ts estimate <model-dir | size> [options]

Prints the GPU memory a fine-tuning run needs: weights, gradients, optimizer state and
activations, for full fine-tuning, LoRA and QLoRA side by side.

  <size> is one of: ${Object.keys(NAMED_SIZES).join(', ')}

Options:
  --method <m>        full, lora, qlora or all (default all)
  --r <n>             LoRA rank (default 16)
  --dropout <p>       LoRA dropout (default 0.05, as train's; dropout keeps a masked copy of
                      each adapted layer's input)
  --targets <list>    all-linear or comma-separated module names (default all-linear)
  --batch-size <n>    micro-batch size (default 1)
  --max-length <n>    tokens per sequence (default 512)
  --optimizer <o>     adamw, adamw8bit, paged_adamw, paged_adamw8bit, sgd (default adamw)
  --no-gradient-checkpointing
                      estimate without gradient checkpointing
  --json              machine-readable output (sizes in bytes)

The flags are named as in \`peft-ts train\`; the older --batch, --seq-len and
--no-checkpointing are accepted as aliases. Sizes are decimal: kB = 10^3, MB = 10^6,
GB = 10^9 bytes.
`;

/** Sizes in decimal units: kB, MB or GB, whichever reads. */
export const formatSize = formatDecimalBytes;

/** A flag given under its name or its older alias; both at once must agree. */
function aliased<T>(values: Record<string, T>, name: string, alias: string): T | undefined {
  const a = values[name];
  const b = values[alias];
  if (a !== undefined && b !== undefined && a !== b) {
    throw new UsageError(`peft-ts estimate: --${name} and --${alias} (its older name) disagree: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
  return a ?? b;
}

export async function estimate(argv: string[]): Promise<number> {
  const { values, positionals } = parse('estimate', argv, {
    method: { type: 'string' },
    r: { type: 'string' },
    dropout: { type: 'string' },
    targets: { type: 'string' },
    'batch-size': { type: 'string' },
    batch: { type: 'string' },
    'max-length': { type: 'string' },
    'seq-len': { type: 'string' },
    optimizer: { type: 'string' },
    'no-gradient-checkpointing': { type: 'boolean' },
    'no-checkpointing': { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    out(ESTIMATE_HELP);
    return 0;
  }
  const [target = ''] = requirePositionals('estimate', positionals, ['<model-dir | size>'], ESTIMATE_HELP);
  const config = existsSync(target) ? await loadModelConfig(target) : namedConfig(target);
  const which = choiceFlag('estimate', 'method', values.method, ['full', 'lora', 'qlora', 'all'] as const) ?? 'all';
  const methods: FinetuneMethod[] = which === 'all' ? ['full', 'lora', 'qlora'] : [which];
  const targets = typeof values.targets === 'string' && values.targets !== 'all-linear' ? values.targets.split(',').map((s) => s.trim()) : ('all-linear' as const);
  const optimizer = choiceFlag('estimate', 'optimizer', values.optimizer, ['adamw', 'adamw8bit', 'paged_adamw', 'paged_adamw8bit', 'sgd'] as const) ?? ('adamw');
  const dropout = numberFlag('estimate', 'dropout', values.dropout, { min: 0 }) ?? DEFAULT_CONFIG.dropout;
  if (dropout >= 1) throw new UsageError(`peft-ts estimate: --dropout: expected a number in [0, 1), got ${JSON.stringify(values.dropout)}`);
  const rows = methods.map((method) =>
    estimateMemory(config, {
      method,
      r: numberFlag('estimate', 'r', values.r, { integer: true, min: 1 }) ?? 16,
      loraDropout: dropout,
      targets,
      batch: numberFlag('estimate', values['batch-size'] !== undefined ? 'batch-size' : 'batch', aliased(values, 'batch-size', 'batch'), { integer: true, min: 1 }) ?? 1,
      seqLen: numberFlag('estimate', values['max-length'] !== undefined ? 'max-length' : 'seq-len', aliased(values, 'max-length', 'seq-len'), { integer: true, min: 1 }) ?? 512,
      checkpointing: values['no-gradient-checkpointing'] !== true && values['no-checkpointing'] !== true,
      optimizer,
    }),
  );
  if (values.json) {
    out(JSON.stringify({ model: target, config: { arch: config.arch, layers: config.numLayers, hidden: config.hiddenSize }, estimates: rows }, null, 2));
    return 0;
  }
  const first = rows[0];
  out(`${target}: ${config.className}, ${first?.params.total.toLocaleString('en-US')} parameters (${config.numLayers} layers, hidden ${config.hiddenSize})`);
  out('');
  const header = ['method', 'trainable', 'weights', 'gradients', 'optimizer', 'activations', 'total'];
  const table = rows.map((e) => [e.method, e.params.trainable.toLocaleString('en-US'), formatSize(e.bytes.weights), formatSize(e.bytes.gradients), formatSize(e.bytes.optimizer), formatSize(e.bytes.activations), formatSize(e.bytes.total)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  out(fmt(header));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of table) out(fmt(r));
  out('');
  for (const e of rows) for (const n of e.notes) out(`${e.method}: ${n}`);
  return 0;
}
