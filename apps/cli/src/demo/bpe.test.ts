// The byte-level BPE trainer: merges worked out by hand on toy corpora, and on the example
// dataset a tokenizer that @huggingface/tokenizers loads, that round-trips every text and that
// encodes exactly as a plain TypeScript BPE encoder applying the same merges.
import { beforeAll, describe, expect, it } from 'vitest';
import { exampleDatasetPath, loadDataset, renderExample, Tokenizer, tokenizeExamples, type Dataset } from '@peft-ts/data-alpaca/node';
import { DEMO_EOS_TOKEN, DEMO_PAD_TOKEN, DEMO_SPECIAL_TOKENS, DEMO_VOCAB_SIZE, demoTokenizerTexts } from './assets.js';
import {
  byteLevelAlphabet,
  byteLevelWords,
  stringifyTokenizerJson,
  tokenizerFiles,
  tokenizerVocabSize,
  trainByteLevelBpe,
  type TokenizerJson,
} from './bpe.js';

const FILE_OPTIONS = { bosToken: DEMO_EOS_TOKEN, eosToken: DEMO_EOS_TOKEN, padToken: DEMO_PAD_TOKEN, modelMaxLength: 256 };

function load(json: TokenizerJson): Tokenizer {
  const files = tokenizerFiles(json, FILE_OPTIONS);
  return Tokenizer.fromJSON(JSON.parse(files['tokenizer.json'] ?? ''), JSON.parse(files['tokenizer_config.json'] ?? ''));
}

// The reference encoder: per pre-tokenized word, merge the adjacent pair of lowest rank
// (leftmost on ties) until no pair has a rank.
function referenceEncode(json: TokenizerJson, text: string): number[] {
  const rank = new Map(json.model.merges.map((m, i) => [m, i]));
  const ids: number[] = [];
  for (const word of byteLevelWords(text)) {
    let symbols = Array.from(word);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < symbols.length; i += 1) {
        const r = rank.get(`${symbols[i]} ${symbols[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      symbols = [...symbols.slice(0, best), `${symbols[best]}${symbols[best + 1]}`, ...symbols.slice(best + 2)];
    }
    for (const s of symbols) {
      const id = json.model.vocab[s];
      if (id === undefined) throw new Error(`reference encoder: ${JSON.stringify(s)} is not in the vocabulary`);
      ids.push(id);
    }
  }
  return ids;
}

describe('byteLevelAlphabet', () => {
  it("is GPT-2's bytes_to_unicode table", () => {
    const table = byteLevelAlphabet();
    expect(table).toHaveLength(256);
    expect(new Set(table).size).toBe(256);
    expect(table[0]).toBe('\u0100');
    expect(table[10]).toBe('\u010a');
    expect(table[32]).toBe('\u0120');
    expect(table[65]).toBe('A');
    expect(table[127]).toBe('\u0121');
    expect(table[173]).toBe('\u0143');
    expect(table[255]).toBe('\u00ff');
  });

  it('splits words with the GPT-2 pattern and maps their UTF-8 bytes', () => {
    expect(byteLevelWords("Hi there, it's 2024!\n\n### x")).toEqual(['Hi', '\u0120there', ',', '\u0120it', "'s", '\u01202024', '!', '\u010a', '\u010a', '###', '\u0120x']);
    expect(byteLevelWords('café')).toEqual(['caf\u00c3\u00a9']);
  });
});

describe('trainByteLevelBpe on toy corpora', () => {
  it('learns the most frequent pair first and breaks ties by string order', () => {
    // Words: "ab", " ab" x2, " ba". a-b occurs 3 times, then Ġ-ab twice; the last two pairs
    // occur once each and "b a" < "Ġ ba" because 'b' (U+0062) sorts before 'Ġ' (U+0120).
    const json = trainByteLevelBpe(['ab ab ab ba'], { vocabSize: 1000, specialTokens: ['<s>'], minFrequency: 1 });
    expect(json.model.merges).toEqual(['a b', '\u0120 ab', 'b a', '\u0120 ba']);
    expect(json.model.vocab['<s>']).toBe(0);
    expect(json.model.vocab['\u0100']).toBe(1);
    expect(json.model.vocab.a).toBe(1 + 97);
    expect(json.model.vocab.ab).toBe(257);
    expect(json.model.vocab['\u0120ab']).toBe(258);
    expect(json.model.vocab.ba).toBe(259);
    expect(json.model.vocab['\u0120ba']).toBe(260);
    expect(tokenizerVocabSize(json)).toBe(261);
  });

  it('stops at vocabSize and at minFrequency', () => {
    expect(trainByteLevelBpe(['ab ab ab ba'], { vocabSize: 258, specialTokens: ['<s>'], minFrequency: 1 }).model.merges).toEqual(['a b']);
    expect(trainByteLevelBpe(['ab ab ab ba'], { vocabSize: 1000, specialTokens: ['<s>'] }).model.merges).toEqual(['a b', '\u0120 ab']);
    expect(() => trainByteLevelBpe(['x'], { vocabSize: 257, specialTokens: ['<s>', '<p>'] })).toThrow(/vocabSize must be an integer >= 258/);
  });

  it('never learns from the text of special tokens', () => {
    const json = trainByteLevelBpe(Array.from({ length: 20 }, () => '<|endoftext|>hello<|endoftext|>'), { vocabSize: 400, specialTokens: ['<|endoftext|>'] });
    // All four pairs of "hello" tie at 20; the smallest left string wins each round.
    expect(json.model.merges).toEqual(['e l', 'el l', 'ell o', 'h ello']);
  });

  it('gives the same file whatever the order of the texts', () => {
    const texts = ['the cat sat on the mat', 'a dog, a log, a fog', 'mat cat hat the end'];
    const a = stringifyTokenizerJson(trainByteLevelBpe(texts, { vocabSize: 300, minFrequency: 1 }));
    const b = stringifyTokenizerJson(trainByteLevelBpe([...texts].reverse(), { vocabSize: 300, minFrequency: 1 }));
    expect(b).toBe(a);
  });

  it('writes the vocabulary in id order, integer-like tokens included', () => {
    const json = trainByteLevelBpe(['10 10 10 10 7 7'], { vocabSize: 300, specialTokens: ['<s>'] });
    expect(json.model.merges).toEqual(['1 0', '\u0120 10', '\u0120 7']);
    expect(json.model.vocab['10']).toBe(257);
    const text = stringifyTokenizerJson(json);
    expect(JSON.parse(text)).toEqual(json);
    const block = text.slice(text.indexOf('"vocab": {'), text.indexOf('\n    }', text.indexOf('"vocab": {')));
    const ids = [...block.matchAll(/^ {6}"(?:[^"\\]|\\.)*": (\d+),?$/gm)].map((m) => Number(m[1]));
    expect(ids).toEqual(Array.from({ length: 260 }, (_, i) => i));
  });
});

describe('the demo tokenizer on the example dataset', () => {
  let dataset: Dataset;
  let json: TokenizerJson;
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    dataset = await loadDataset(exampleDatasetPath());
    json = trainByteLevelBpe(demoTokenizerTexts(dataset.examples), { vocabSize: DEMO_VOCAB_SIZE, specialTokens: DEMO_SPECIAL_TOKENS });
    tokenizer = load(json);
  });

  it('fills the vocabulary and loads with the special tokens in place', () => {
    expect(tokenizerVocabSize(json)).toBe(DEMO_VOCAB_SIZE);
    expect(tokenizer.vocabSize).toBe(DEMO_VOCAB_SIZE);
    expect(tokenizer.eosId).toBe(0);
    expect(tokenizer.bosId).toBe(0);
    expect(tokenizer.padId).toBe(1);
    expect(tokenizer.prefixIds).toEqual([]);
    expect(tokenizer.suffixIds).toEqual([]);
    expect(tokenizer.warnings).toEqual([]);
    expect(tokenizer.encode(`x${DEMO_EOS_TOKEN}`, { addSpecialTokens: false })).toEqual([json.model.vocab.x, 0]);
  });

  it('round-trips every text of the dataset exactly and encodes as the reference BPE encoder', () => {
    const texts = dataset.examples.flatMap((e) => {
      if (e.kind !== 'instruction') throw new Error('the example dataset holds instruction records only');
      return [e.instruction, e.input, e.output, renderExample(e, undefined, { template: 'alpaca', appendEos: false }).text];
    });
    expect(texts.length).toBe(4 * dataset.length);
    for (const text of texts) {
      const ids = tokenizer.encode(text, { addSpecialTokens: false });
      expect(tokenizer.decode(ids)).toBe(text);
      expect(ids).toEqual(referenceEncode(json, text));
    }
    // Text the tokenizer never saw still round-trips: every byte has a symbol.
    const unseen = 'Zürich: 東京 — ok? ✓\t\r\n';
    expect(tokenizer.decode(tokenizer.encode(unseen))).toBe(unseen);
  });

  it('tokenizes the Alpaca records whole, with exact offsets, well under 128 tokens', () => {
    const { examples, warnings } = tokenizeExamples(dataset.examples, tokenizer, { template: 'alpaca', maxLength: 256 });
    expect(warnings).toEqual([]);
    const lengths = examples.map((e) => e.inputIds.length);
    for (const e of examples) {
      expect(e.truncated).toBe(false);
      expect(e.unaligned).toBe(0);
      expect(e.inputIds[e.inputIds.length - 1]).toBe(tokenizer.eosId);
    }
    const max = Math.max(...lengths);
    const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
    console.log(`demo tokenizer: ${examples.length} records, tokens per record max ${max}, mean ${mean.toFixed(1)}, min ${Math.min(...lengths)}`);
    expect(max).toBeLessThan(128);
  });

  it('turns every word of the Alpaca preamble into a single token', () => {
    const preamble = 'Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n';
    expect(tokenizer.encode(preamble, { addSpecialTokens: false })).toHaveLength(byteLevelWords(preamble).length);
  });
});
