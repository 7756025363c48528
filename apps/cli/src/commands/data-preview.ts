// `peft-ts data preview`: the first examples of a dataset as training sees them, the trained span
// highlighted (previewMasks), with token counts, truncation and the mistakes that silently spoil
// a run: no EOS in the trained span, padding with the EOS token, BOS written twice.
import { datasetStats, formatStats, IGNORE_INDEX, loadDataset, previewMasks, Tokenizer, tokenizeExamples, type TokenizedExample, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { checkInputDir, checkInputFile } from '@peft-ts/trainer/node';
import { choiceFlag, numberFlag, out, parse, UsageError } from '../args.js';
import { EXIT_CODES_HELP } from '../errors.js';
import { escapeHtml, writeFileAtomic } from '../report/write-atomic.js';

export const DATA_HELP = `Usage: peft-ts data preview --data <file> --model <dir> [options]

Shows the first examples of a dataset as training sees them: the rendered prompt with the trained
span highlighted (green on a terminal, [[...]] otherwise), token counts and truncation, and
warnings for an EOS missing from the trained span, a padding token equal to EOS, and a BOS
written twice. Ends with the length statistics of the whole file.

Options:
  --data <file>        Alpaca / Dolly / chat messages / ShareGPT, JSON or JSONL
  --model <dir>        the model directory whose tokenizer (tokenizer.json) is used
  --template <t>       auto (default), alpaca, chat, model (the tokenizer's chat template)
  --train-on <what>    response (default) or all
  --max-length <n>     truncate examples to n tokens (default 512)
  -n <count>           how many examples to show (default 8)
  --html <file>        also write the preview as one self-contained HTML page

${EXIT_CODES_HELP}`;

const FLAGS = {
  data: { type: 'string' },
  model: { type: 'string' },
  template: { type: 'string' },
  'train-on': { type: 'string' },
  'max-length': { type: 'string' },
  n: { type: 'string', short: 'n' },
  html: { type: 'string' },
} as const;

/** A run of consecutive tokens that are all trained or all ignored, decoded together. */
export interface MaskRun {
  text: string;
  trained: boolean;
}

/**
 * The example cut into trained and ignored runs, decoded exactly as previewMasks decodes them
 * (the runs joined with [[ ]] around trained ones give previewMasks' text).
 */
export function maskRuns(example: TokenizedExample, tokenizer: Tokenizer): MaskRun[] {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const runs: MaskRun[] = [];
  let k = 0;
  while (k < example.length) {
    const trained = example.labels[k] !== IGNORE_INDEX;
    const bytes: number[] = [];
    while (k < example.length && (example.labels[k] !== IGNORE_INDEX) === trained) {
      bytes.push(...tokenizer.tokenBytes(example.inputIds[k] ?? 0));
      k += 1;
    }
    runs.push({ text: decoder.decode(Uint8Array.from(bytes)), trained });
  }
  return runs;
}

/** What is wrong with one example's tokens, in words; empty when nothing is. */
export function exampleWarnings(example: TokenizedExample, tokenizer: Tokenizer): string[] {
  const warnings: string[] = [];
  const eos = tokenizer.eosId;
  if (example.trainedTokens > 0 && eos !== null) {
    let found = false;
    for (let t = 0; t < example.length && !found; t += 1) found = example.labels[t] === eos;
    if (!found) warnings.push(`EOS (${tokenizer.eosToken ?? eos}) is not in the trained span${example.truncated ? ' (truncation cut it off)' : ''}: the model does not learn to stop`);
  }
  if (example.trainedTokens === 0) warnings.push('no trained token: this example adds nothing to the loss and training drops it');
  const bos = tokenizer.bosId;
  if (bos !== null && example.length >= 2 && example.inputIds[0] === bos && example.inputIds[1] === bos) {
    warnings.push(`BOS (${tokenizer.bosToken ?? bos}) is added twice at the start: the template writes one and the tokenizer adds another`);
  }
  return warnings;
}

/** Warnings about the tokenizer itself, shown once. */
export function tokenizerWarnings(tokenizer: Tokenizer): string[] {
  if (tokenizer.eosId !== null && tokenizer.padId === tokenizer.eosId) {
    return [`the padding token is the EOS token (${tokenizer.padToken}): harmless here, since padding is masked by the attention mask and labels, but a collator that masks pad ids would also mask every EOS`];
  }
  return [];
}

interface Previewed {
  index: number;
  where: string;
  example: TokenizedExample;
  preview: string;
  runs: MaskRun[];
  warnings: string[];
}

function countsLine(e: TokenizedExample): string {
  return `${e.length} tokens, ${e.trainedTokens} trained${e.truncated ? `, truncated from ${e.fullLength}` : ''}`;
}

function html(data: string, model: string, template: string, shown: Previewed[], global: string[], stats: string): string {
  const body = shown
    .map((p) => {
      const spans = p.runs.map((r) => (r.trained ? `<span class="t">${escapeHtml(r.text)}</span>` : `<span class="i">${escapeHtml(r.text)}</span>`)).join('');
      const warn = p.warnings.map((w) => `<p class="w">warning: ${escapeHtml(w)}</p>`).join('');
      return `<section><h2>example ${p.index + 1} <small>${escapeHtml(p.where)} · ${escapeHtml(countsLine(p.example))}</small></h2><pre>${spans}</pre>${warn}</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>data preview: ${escapeHtml(data)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f4;padding:10px;border-radius:4px;font:13px/1.4 ui-monospace,monospace}
.t{background:#c9f0c9;color:#064;outline:1px solid #8c8}.i{color:#777}.w{color:#a40;margin:4px 0}
h2{font-size:15px;margin:18px 0 6px}small{color:#666;font-weight:normal}
</style></head><body>
<h1>data preview</h1>
<p>${escapeHtml(data)} with the tokenizer of ${escapeHtml(model)}, template ${escapeHtml(template)}. <span class="t">Highlighted</span> tokens are trained (carry loss); grey ones are context only.</p>
${global.map((w) => `<p class="w">warning: ${escapeHtml(w)}</p>`).join('\n')}
${body}
<h2>whole file</h2><pre>${escapeHtml(stats)}</pre>
</body></html>
`;
}

export async function dataCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    out(DATA_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'preview') throw new UsageError(`peft-ts data: unknown subcommand ${JSON.stringify(sub)} (expected preview)`);
  const { values, positionals } = parse('data preview', rest, FLAGS);
  if (values.help) {
    out(DATA_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`peft-ts data preview: unexpected argument ${JSON.stringify(positionals[0])} (use --data and --model)`);
  if (typeof values.data !== 'string') throw new UsageError('peft-ts data preview: --data is required: expected a data file');
  if (typeof values.model !== 'string') throw new UsageError('peft-ts data preview: --model is required: expected a model directory with tokenizer.json');
  const template = choiceFlag('data preview', 'template', values.template, ['auto', 'alpaca', 'chat', 'model'] as const) ?? 'auto';
  const trainOn = choiceFlag('data preview', 'train-on', values['train-on'], ['response', 'all'] as const) ?? 'response';
  const maxLength = numberFlag('data preview', 'max-length', values['max-length'], { integer: true, min: 8 }) ?? 512;
  const count = numberFlag('data preview', 'n', values.n, { integer: true, min: 1 }) ?? 8;
  await checkInputFile(values.data, 'a data file (JSON or JSONL)', '--data');
  await checkInputDir(values.model, 'a model directory', ['tokenizer.json'], '--model');
  const tokenizer = await tokenizerFromDir(values.model);
  const dataset = await loadDataset(values.data);
  const dataWarnings = new Set<string>();
  const { examples } = tokenizeExamples(dataset.examples, tokenizer, {
    ...(template === 'auto' ? {} : { template }),
    trainOn,
    maxLength,
    onWarning: (w) => (w.code === 'pad-is-eos' ? undefined : dataWarnings.add(w.message)),
  });
  const color = process.stdout.isTTY;
  const shown: Previewed[] = examples.slice(0, count).map((example, index) => ({
    index,
    where: example.source ? `${example.source.file}:${example.source.line}` : `#${index + 1}`,
    example,
    preview: previewMasks(example, tokenizer, color ? { color: true } : {}),
    runs: maskRuns(example, tokenizer),
    warnings: exampleWarnings(example, tokenizer),
  }));
  const global = tokenizerWarnings(tokenizer);
  const rule = (title: string): string => (color ? `\u001b[1m${title}\u001b[0m` : title);
  const lines: string[] = [`${values.data}: ${examples.length} examples, template ${template}, ${trainOn === 'response' ? 'responses trained' : 'all tokens trained'}; trained text ${color ? 'in green' : 'inside [[ ]]'}`];
  for (const w of global) lines.push(`warning: ${w}`);
  for (const p of shown) {
    lines.push('', rule(`--- example ${p.index + 1} of ${examples.length} (${p.where}): ${countsLine(p.example)}`), p.preview);
    for (const w of p.warnings) lines.push(`warning: ${w}`);
  }
  const stats = formatStats(datasetStats(examples));
  lines.push('', rule('--- whole file'), stats);
  for (const w of dataWarnings) lines.push(`warning: ${w}`);
  out(lines.join('\n'));
  if (typeof values.html === 'string') {
    await writeFileAtomic(values.html, html(values.data, values.model, template, shown, [...global, ...dataWarnings], stats));
    process.stderr.write(`wrote ${values.html}\n`);
  }
  return 0;
}
