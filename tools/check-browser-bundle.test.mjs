// The browser-bundle check's detection: Node built-ins, the webgpu addon and the Buffer/process
// globals are reported with the file that uses them; strings, property names and local bindings
// of the same names are not.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEntry, forbiddenImport, resolveExportTarget } from './check-browser-bundle.mjs';

let dir;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'check-browser-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function entry(files) {
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return join(dir, Object.keys(files)[0]);
}

describe('check-browser-bundle', () => {
  it('classifies import specifiers', () => {
    expect(forbiddenImport('node:fs')).toBe('Node built-in');
    expect(forbiddenImport('fs/promises')).toBe('Node built-in');
    expect(forbiddenImport('crypto')).toBe('Node built-in');
    expect(forbiddenImport('webgpu')).toBe('Dawn addon (webgpu)');
    expect(forbiddenImport('@peft-ts/tensor')).toBeNull();
    expect(forbiddenImport('@huggingface/jinja')).toBeNull();
  });

  it('picks the browser target of an exports map before the default one', () => {
    const target = { types: './d.ts', browser: { default: './browser.js' }, node: './node.js', default: './node.js' };
    expect(resolveExportTarget(target)).toBe('./browser.js');
    expect(resolveExportTarget({ types: './d.ts', default: './index.js' })).toBe('./index.js');
    expect(resolveExportTarget({ node: './node.js' })).toBeNull();
  });

  it('flags a module importing node:fs and webgpu, naming the importing file', async () => {
    const file = await entry({
      'a.js': "import { helper } from './b.js';\nexport const run = () => helper();\n",
      'b.js': "import { readFile } from 'node:fs/promises';\nimport { create } from 'webgpu';\nexport const helper = () => [readFile, create];\n",
    });
    const problems = await checkEntry(file);
    expect(problems.map((p) => [p.kind, p.what, p.where.endsWith('b.js')])).toEqual([
      ['import', 'node:fs/promises (Node built-in)', true],
      ['import', 'webgpu (Dawn addon (webgpu))', true],
    ]);
  });

  it('flags uses of the Buffer and process globals, naming the module', async () => {
    const file = await entry({
      'g.js': "import { env } from './h.js';\nexport const bytes = (s) => Buffer.from(s);\nexport { env };\n",
      'h.js': "export const env = () => (typeof process !== 'undefined' ? process.env.HOME : undefined);\n",
    });
    const problems = await checkEntry(file);
    const found = problems.map((p) => `${p.what} @ ${p.where.split('/').pop()}`).sort();
    expect(found).toEqual(['Buffer @ g.js', 'process (typeof check) @ h.js', 'process @ h.js']);
  });

  it('passes a clean module that only mentions the names in strings, properties and locals', async () => {
    const file = await entry({
      'clean.js': [
        "const label = 'process.env and Buffer.from are Node APIs';",
        'export function run(job) {',
        '  const process = { exit: () => job.process };',
        '  const Buffer = Uint8Array;',
        '  return [label, process.exit(), new Buffer(2), globalThis.crypto, new TextEncoder()];',
        '}',
        '',
      ].join('\n'),
    });
    expect(await checkEntry(file)).toEqual([]);
  });
});
