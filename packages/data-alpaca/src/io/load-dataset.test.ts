// Reading the four record formats from JSON arrays and JSON Lines, format detection, and the
// bad-record corpus: every error names file:line and the field; skip mode counts them.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '@peft-ts/errors';
import { datasetFromRecords, detectFormat } from '../index.js';
import { loadDataset, readExamples, readJsonArray, readJsonl } from '../node.js';
import type { DataWarning, Example } from '../index.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'data-alpaca-'));
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

const jsonl = (...records: unknown[]) => records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';

async function failure(promise: Promise<unknown>): Promise<FormatError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(FormatError);
  return error as FormatError;
}

describe('formats', () => {
  it('reads an Alpaca JSON array, with the line each record starts on', async () => {
    const records = [
      { instruction: 'Add.', input: '2 + 2', output: '4' },
      { instruction: 'Say hi.', output: 'hi' },
    ];
    const path = await file('alpaca.json', JSON.stringify(records, null, 2));
    const ds = await loadDataset(path);
    expect(ds.format).toBe('alpaca');
    expect(ds.summary.layout).toBe('json');
    expect(ds.examples).toEqual<Example[]>([
      { kind: 'instruction', instruction: 'Add.', input: '2 + 2', output: '4', source: { file: path, line: 2 } },
      { kind: 'instruction', instruction: 'Say hi.', input: '', output: 'hi', source: { file: path, line: 7 } },
    ]);
  });

  it('reads Alpaca JSONL, skipping blank lines, with CRLF endings and a BOM', async () => {
    const path = await file('alpaca.jsonl', '\uFEFF' + jsonl({ instruction: 'a', input: '', output: 'b' }, '', { instruction: 'c', input: 'd', output: 'e' }).replaceAll('\n', '\r\n'));
    const ds = await loadDataset(path);
    expect(ds.summary.layout).toBe('jsonl');
    expect(ds.examples.map((e) => [e.kind === 'instruction' ? e.output : '', e.source?.line])).toEqual([
      ['b', 1],
      ['e', 3],
    ]);
  });

  it('maps Dolly context/response to input/output', async () => {
    const path = await file('dolly.jsonl', jsonl({ instruction: 'Summarise.', context: 'Long text.', response: 'Short.', category: 'summarization' }));
    const ds = await loadDataset(path);
    expect(ds.format).toBe('dolly');
    expect(ds.examples[0]).toMatchObject({ kind: 'instruction', instruction: 'Summarise.', input: 'Long text.', output: 'Short.' });
  });

  it('reads chat messages and ShareGPT, mapping human/gpt/system to user/assistant/system', async () => {
    const chat = await file('chat.jsonl', jsonl({ messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }] }));
    const share = await file(
      'share.json',
      JSON.stringify([{ conversations: [{ from: 'system', value: 'S' }, { from: 'human', value: 'U' }, { from: 'gpt', value: 'A' }] }]),
    );
    const expected = [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'U' },
      { role: 'assistant', content: 'A' },
    ];
    const a = await loadDataset(chat);
    const b = await loadDataset(share);
    expect([a.format, b.format]).toEqual(['messages', 'sharegpt']);
    expect(a.examples[0]).toMatchObject({ kind: 'chat', messages: expected });
    expect(b.examples[0]).toMatchObject({ kind: 'chat', messages: expected });
  });

  it('detects the format from a record, or takes it as an option', async () => {
    expect(detectFormat({ instruction: 'a', input: '', output: 'b' })).toBe('alpaca');
    expect(detectFormat({ instruction: 'a', context: '', response: 'b' })).toBe('dolly');
    expect(detectFormat({ messages: [] })).toBe('messages');
    expect(detectFormat({ conversations: [] })).toBe('sharegpt');
    expect(detectFormat({ prompt: 'a', completion: 'b' })).toBeNull();
    expect(detectFormat('text')).toBeNull();
    const path = await file('forced.jsonl', jsonl({ instruction: 'a', input: '', output: 'b' }));
    const error = await failure(loadDataset(path, { format: 'dolly' }));
    expect([error.file, error.field, error.expected]).toEqual([`${path}:1`, 'response', 'a non-empty string']);
  });

  it('names the fields it found when no format fits', async () => {
    const path = await file('unknown.jsonl', jsonl({ prompt: 'a', completion: 'b' }));
    const error = await failure(loadDataset(path));
    expect(error.file).toBe(`${path}:1`);
    expect(error.field).toBe('record');
    expect(error.message).toContain('prompt, completion');
  });
});

describe('streaming readers', () => {
  it('readJsonl and readJsonArray yield records with their lines, one at a time', async () => {
    const lines = await file('r.jsonl', jsonl({ a: 1 }, '', { a: 2 }, { a: 3 }));
    const seen: unknown[] = [];
    for await (const r of readJsonl(lines)) seen.push([r.line, r.value]);
    expect(seen).toEqual([
      [1, { a: 1 }],
      [3, { a: 2 }],
      [4, { a: 3 }],
    ]);
    const array = await file('r.json', '[\n  {"a": "x,]}"},\n  {"b": [1, {"c": "\\"]"}]},\n  3\n]\n');
    const items: unknown[] = [];
    for await (const r of readJsonArray(array)) items.push([r.line, r.value]);
    expect(items).toEqual([
      [2, { a: 'x,]}' }],
      [3, { b: [1, { c: '"]' }] }],
      [4, 3],
    ]);
  });

  it('stops reading at the limit and reports what it read', async () => {
    const path = await file('many.jsonl', jsonl(...Array.from({ length: 1000 }, (_, i) => ({ instruction: `i${i}`, input: '', output: `o${i}` }))));
    const reader = readExamples(path, { limit: 3 });
    const got: string[] = [];
    let step = await reader.next();
    while (!step.done) {
      got.push(step.value.kind === 'instruction' ? step.value.output : '');
      step = await reader.next();
    }
    expect(got).toEqual(['o0', 'o1', 'o2']);
    expect(step.value).toMatchObject({ examples: 3, invalid: 0, format: 'alpaca', layout: 'jsonl' });
  });
});

describe('bad records', () => {
  const corpus = [
    { instruction: 'Good one.', input: '', output: 'ok' },
    '{"instruction": "broken", "output": ',
    { instruction: 'Say hi', input: '' },
    { instruction: 5, input: '', output: 'a' },
    { instruction: '   ', input: '', output: 'a' },
    [1, 2],
    '',
    { instruction: 'Fine.', input: 'x', output: 'y' },
    { instruction: 'a', input: null, output: 'b' },
    { instruction: 'a', input: '', output: '' },
  ];
  const expected: Array<[number, string, string]> = [
    [2, 'record', 'one valid JSON value'],
    [3, 'output', 'a non-empty string'],
    [4, 'instruction', 'a non-empty string'],
    [5, 'instruction', 'a non-empty string'],
    [6, 'record', 'a JSON object'],
    [9, 'input', 'a string'],
    [10, 'output', 'a non-empty string'],
  ];

  it('each bad line alone fails loading with file:line, field and what was expected', async () => {
    for (const [line, field, wanted] of expected) {
      const records = [corpus[0], corpus[line - 1]];
      const path = await file(`bad-${line}.jsonl`, jsonl(...records));
      const error = await failure(loadDataset(path));
      expect([error.file, error.field, error.expected], `line ${line}`).toEqual([`${path}:2`, field, wanted]);
      expect(error.message).toContain(`${path}:2: ${field}: expected ${wanted}, got `);
    }
  });

  it('fails at the first bad record by default', async () => {
    const path = await file('bad.jsonl', jsonl(...corpus));
    const error = await failure(loadDataset(path));
    expect(error.file).toBe(`${path}:2`);
    expect(error.message).toContain('broken');
  });

  it("with onInvalid 'skip', skips them, counts them and keeps the first five reasons", async () => {
    const path = await file('bad-skip.jsonl', jsonl(...corpus));
    const warnings: DataWarning[] = [];
    const ds = await loadDataset(path, { onInvalid: 'skip', onWarning: (w) => warnings.push(w) });
    expect(ds.examples.map((e) => e.source?.line)).toEqual([1, 8]);
    expect(ds.summary.invalid).toBe(expected.length);
    expect(ds.summary.invalidReasons.map((e) => [e.file, e.field])).toEqual(expected.slice(0, 5).map(([line, field]) => [`${path}:${line}`, field]));
    expect(warnings.map((w) => w.code)).toEqual(['invalid-records-skipped']);
    expect(warnings[0]?.message).toContain(`skipped ${expected.length} invalid records`);
    expect(ds.warnings).toEqual(warnings);
    const three = await loadDataset(path, { onInvalid: 'skip', maxReasons: 3 });
    expect(three.summary.invalidReasons).toHaveLength(3);
  });

  it('checks chat turns: unknown role, wrong content type, no assistant turn, not a list', async () => {
    const good = { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] };
    const cases: Array<[unknown, string, string]> = [
      [{ messages: [{ role: 'user', content: 'hi' }, { role: 'robot', content: 'x' }] }, 'messages[1].role', 'one of system, user, assistant'],
      [{ messages: [{ role: 'user', content: 7 }, { role: 'assistant', content: 'x' }] }, 'messages[0].content', 'a string'],
      [{ messages: [{ role: 'user', content: 'hi' }] }, 'messages', 'at least one assistant turn to train on'],
      [{ messages: 'hi' }, 'messages', 'a non-empty array of turns'],
      [{ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: ' ' }] }, 'messages[1].content', 'a non-empty string for a assistant turn'],
      [{ messages: [null] }, 'messages[0]', 'an object with role and content'],
    ];
    for (const [record, field, wanted] of cases) {
      const path = await file('chat-bad.jsonl', jsonl(good, record));
      const error = await failure(loadDataset(path));
      expect([error.file, error.field, error.expected]).toEqual([`${path}:2`, field, wanted]);
    }
    const share = await file('share-bad.jsonl', jsonl({ conversations: [{ from: 'human', value: 'hi' }, { from: 'bot', value: 'x' }] }));
    const error = await failure(loadDataset(share));
    expect([error.file, error.field, error.expected]).toEqual([`${share}:1`, 'conversations[1].from', 'one of human, gpt, system']);
  });

  it('locates a malformed element of a JSON array by its line, and can skip it', async () => {
    const path = await file('bad-array.json', '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"},\n  {"instruction": "e", "output": "f"}\n]\n');
    const error = await failure(loadDataset(path));
    expect([error.file, error.field]).toEqual([`${path}:3`, 'record']);
    const ds = await loadDataset(path, { onInvalid: 'skip' });
    expect(ds.examples.map((e) => e.source?.line)).toEqual([2, 4]);
    expect(ds.summary.invalid).toBe(1);
  });

  it('fails on a broken file even when skipping: trailing comma, unclosed array, text after it', async () => {
    const trailing = await file('trailing.json', '[{"instruction": "a", "output": "b"},\n]');
    expect((await failure(loadDataset(trailing, { onInvalid: 'skip' }))).file).toBe(`${trailing}:2`);
    const unclosed = await file('unclosed.json', '[{"instruction": "a", "output": "b"}\n');
    expect((await failure(loadDataset(unclosed, { onInvalid: 'skip' }))).expected).toBe("the array's closing ']'");
    const after = await file('after.json', '[{"instruction": "a", "output": "b"}] x');
    expect((await failure(loadDataset(after, { onInvalid: 'skip' }))).expected).toBe("nothing after the array's closing ']'");
    const text = await file('text.txt', 'hello');
    expect((await failure(loadDataset(text))).field).toBe('file');
    const empty = await file('empty.jsonl', '\n\n');
    expect((await failure(loadDataset(empty))).field).toBe('file');
  });

  it('fails when no valid record is left', async () => {
    const path = await file('all-bad.jsonl', jsonl({ instruction: '', output: 'x' }, { instruction: '', output: 'y' }));
    const error = await failure(loadDataset(path, { onInvalid: 'skip' }));
    expect([error.file, error.field]).toEqual([path, 'records']);
    expect(error.message).toContain('all 2 records were invalid');
  });

  it('validates in-memory records the same way', () => {
    const ds = datasetFromRecords([{ instruction: 'a', output: 'b' }, { instruction: 'c' }], { onInvalid: 'skip', name: 'mem' });
    expect(ds.length).toBe(1);
    expect(ds.summary.invalidReasons[0]?.message).toBe('mem[1]: output: expected a non-empty string, got nothing');
    expect(() => datasetFromRecords([{ instruction: 'c', output: 5 }], { name: 'mem' })).toThrow('mem[0]: output: expected a non-empty string, got 5');
  });
});
