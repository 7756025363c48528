// `peft-ts data preview` on the shipped example dataset with the Alpaca and the chat template:
// what it prints and writes is previewMasks' view of the examples, with counts and warnings.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleDatasetPath, loadDataset, previewMasks, Tokenizer, tokenizeExamples, type TokenizedExample, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { createDemoAssets } from '../demo/assets.js';
import { LLAMA2_TOKENIZER_DIR } from '../testing/tiny-model.js';
import { dataCommand, exampleWarnings, maskRuns } from './data-preview.js';
import { captureOutput } from '../testing/capture.js';


async function tokenized(model: string, template: 'alpaca' | 'chat', maxLength = 512): Promise<{ tokenizer: Tokenizer; examples: TokenizedExample[] }> {
  const tokenizer = await tokenizerFromDir(model);
  const ds = await loadDataset(exampleDatasetPath());
  return { tokenizer, examples: tokenizeExamples(ds.examples, tokenizer, { template, maxLength }).examples };
}

/** The HTML's example blocks turned back into text, trained runs inside [[ ]]. */
function htmlPreviews(page: string): string[] {
  const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  return [...page.matchAll(/<section>.*?<pre>(.*?)<\/pre>/gs)].map((m) =>
    unescape((m[1] ?? '').replace(/<span class="t">(.*?)<\/span>/gs, '[[$1]]').replace(/<span class="i">(.*?)<\/span>/gs, '$1')),
  );
}

describe('peft-ts data preview', () => {
  let work: string;
  let model: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'peft-cli-preview-'));
    model = (await createDemoAssets(join(work, 'model'))).dir;
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await rm(work, { recursive: true, force: true });
  });

  for (const template of ['alpaca', 'chat'] as const) {
    it(`shows previewMasks of the first n examples with the ${template} template, in text and HTML`, async () => {
      const page = join(work, `${template}.html`);
      const cap = captureOutput();
      expect(await dataCommand(['preview', '--data', exampleDatasetPath(), '--model', model, '--template', template, '-n', '3', '--html', page])).toBe(0);
      vi.restoreAllMocks();
      const { tokenizer, examples } = await tokenized(model, template);
      const text = cap.stdout();
      expect(text).toContain(`${examples.length} examples, template ${template}`);
      for (const [i, e] of examples.slice(0, 3).entries()) {
        const expected = previewMasks(e, tokenizer);
        expect(text).toContain(`--- example ${i + 1} of 255 (${exampleDatasetPath()}:${e.source?.line ?? 0}): ${e.length} tokens, ${e.trainedTokens} trained\n${expected}\n`);
        expect(maskRuns(e, tokenizer).map((r) => (r.trained ? `[[${r.text}]]` : r.text)).join('')).toBe(expected);
        // The response and the EOS after it are trained, so nothing is flagged.
        expect(exampleWarnings(e, tokenizer)).toEqual([]);
        expect(e.trainedTokens).toBeGreaterThan(1);
      }
      expect(text).not.toContain('--- example 4 ');
      expect(text).toMatch(/--- whole file\nexamples: 255, tokens\/epoch: \d+/);
      const html = readFileSync(page, 'utf8');
      expect(htmlPreviews(html)).toEqual(examples.slice(0, 3).map((e) => previewMasks(e, tokenizer)));
      expect(html).not.toMatch(/https?:|src=|<link|@import/);
    });
  }

  it('the two templates render the same record differently', async () => {
    const a = await tokenized(model, 'alpaca');
    const c = await tokenized(model, 'chat');
    const first = (x: { tokenizer: Tokenizer; examples: TokenizedExample[] }): string => {
      const e = x.examples[0];
      if (!e) throw new Error('no example');
      return previewMasks(e, x.tokenizer);
    };
    expect(first(a)).toContain('### Response:');
    expect(first(c)).not.toBe(first(a));
  });

  it('flags truncation that cuts off EOS, pad == eos, and a doubled BOS', async () => {
    const cap = captureOutput();
    expect(await dataCommand(['preview', '--data', exampleDatasetPath(), '--model', LLAMA2_TOKENIZER_DIR, '--template', 'alpaca', '--max-length', '66', '-n', '1'])).toBe(0);
    vi.restoreAllMocks();
    const text = cap.stdout();
    expect(text).toContain('warning: the padding token is the EOS token (</s>)');
    expect(text).toMatch(/: 66 tokens, [1-9]\d* trained, truncated from 72\n/);
    expect(text).toContain('warning: EOS (</s>) is not in the trained span (truncation cut it off)');

    const tokenizer = await tokenizerFromDir(LLAMA2_TOKENIZER_DIR);
    const ids = Int32Array.from([1, 1, 450, 2]);
    const doubled: TokenizedExample = { inputIds: ids, labels: Int32Array.from([-100, -100, 450, 2]), length: 4, trainedTokens: 2, truncated: false, fullLength: 4, boundaryMerges: 0, unaligned: 0 };
    expect(exampleWarnings(doubled, tokenizer)).toEqual(['BOS (<s>) is added twice at the start: the template writes one and the tokenizer adds another']);
  });

  it('names the flag that is missing or wrong', async () => {
    await expect(dataCommand(['preview', '--model', model])).rejects.toThrow('peft-ts data preview: --data is required');
    await expect(dataCommand(['preview', '--data', exampleDatasetPath(), '--model', model, '-n', '0'])).rejects.toThrow('peft-ts data preview: --n: expected an integer >= 1, got "0"');
    await expect(dataCommand(['show'])).rejects.toThrow('peft-ts data: unknown subcommand "show" (expected preview)');
    await expect(dataCommand(['preview', '--data', join(work, 'none.json'), '--model', model])).rejects.toThrow(/none\.json/);
  });
});
