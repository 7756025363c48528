// Dataset files must be UTF-8: other encodings (by byte order mark, NUL bytes or invalid byte
// sequences) are refused with the line and the word "encoding", never decoded into garbage.
import { describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '@peft-ts/errors';
import { loadDataset } from '../node.js';

async function file(name: string, bytes: Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'peft-enc-'));
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

const record = (output: string) => `${JSON.stringify({ instruction: 'Say it.', input: '', output })}\n`;

describe('dataset encoding', () => {
  it('reads UTF-8 with or without a byte order mark, multi-byte text included', async () => {
    const text = record('héllo') + record('日本語 🙂');
    for (const bytes of [Buffer.from(text), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])]) {
      const ds = await loadDataset(await file('ok.jsonl', bytes));
      expect(ds.examples.map((e) => (e.kind === 'instruction' ? e.output : ''))).toEqual(['héllo', '日本語 🙂']);
    }
    const array = await loadDataset(await file('ok.json', Buffer.from(`\ufeff[${JSON.stringify({ instruction: 'a', output: 'ü' })}]`)));
    expect(array.length).toBe(1);
  });

  it('refuses Latin-1, UTF-16 (with and without a mark), overlong and cut-off sequences', async () => {
    const latin1 = await file('latin1.jsonl', Buffer.from(record('plain') + record('caf\u00e9'), 'latin1'));
    await expect(loadDataset(latin1)).rejects.toThrow(FormatError);
    await expect(loadDataset(latin1)).rejects.toThrow(new RegExp(`^${latin1}:2: encoding: expected UTF-8 text, got the byte 0xE9 followed by 0x22, which is not UTF-8 \\(Latin-1 or Windows-1252 text\\?\\); convert the file to UTF-8 \\(e\\.g\\. iconv -f latin1 -t UTF-8\\)$`));
    const utf16 = await file('utf16.jsonl', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(record('x'), 'utf16le')]));
    await expect(loadDataset(utf16)).rejects.toThrow(new RegExp(`^${utf16}: encoding: expected UTF-8 text, got a UTF-16 LE byte order mark; convert the file to UTF-8 \\(e\\.g\\. iconv -f UTF-16 -t UTF-8\\)$`));
    const utf16be = await file('utf16be.json', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('[]', 'utf16le').swap16()]));
    await expect(loadDataset(utf16be)).rejects.toThrow(/encoding: expected UTF-8 text, got a UTF-16 BE byte order mark/);
    const bare16 = await file('bare16.jsonl', Buffer.from(record('x'), 'utf16le'));
    await expect(loadDataset(bare16, { layout: 'jsonl' })).rejects.toThrow(/bare16\.jsonl:1: encoding: expected UTF-8 text, got a NUL byte/);
    const overlong = await file('overlong.jsonl', Buffer.concat([Buffer.from(record('a')), Buffer.from('{"instruction":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}\n')]));
    await expect(loadDataset(overlong)).rejects.toThrow(/overlong\.jsonl:2: encoding: expected UTF-8 text, got the byte 0xC0/);
    const cut = await file('cut.jsonl', Buffer.concat([Buffer.from(record('a')), Buffer.from([0xe6, 0x97])]));
    await expect(loadDataset(cut)).rejects.toThrow(/cut\.jsonl:2: encoding: expected UTF-8 text, got a multi-byte UTF-8 sequence cut off/);
  });

  it('quotes an empty string in a message', async () => {
    const path = await file('empty.jsonl', Buffer.from(`${JSON.stringify({ instruction: '', output: 'x' })}\n`));
    await expect(loadDataset(path)).rejects.toThrow(`${path}:1: instruction: expected a non-empty string, got ""`);
  });
});
