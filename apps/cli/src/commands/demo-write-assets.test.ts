// `peft-ts demo --write-assets`, the web page's build step: the model `peft-ts demo` trains, byte
// for byte, and the example dataset, and nothing else.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleDatasetPath } from '@peft-ts/data-alpaca/node';
import { createDemoAssets } from '../demo/assets.js';
import { demo } from './demo.js';

describe('demo --write-assets', () => {
  const dirs: string[] = [];
  const temp = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'peft-demo-assets-'));
    dirs.push(dir);
    return dir;
  };
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("writes the demo's model and the example dataset", async () => {
    const out = await temp();
    const write = process.stdout.write;
    process.stdout.write = () => true;
    try {
      expect(await demo(['--write-assets', out])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect((await readdir(out)).sort()).toEqual(['example-alpaca.json', 'model']);
    expect(await readFile(join(out, 'example-alpaca.json'))).toEqual(await readFile(exampleDatasetPath()));
    const reference = await temp();
    await createDemoAssets(join(reference, 'model'), { seed: 0, datasetPath: exampleDatasetPath() });
    const names = (await readdir(join(reference, 'model'))).sort();
    expect((await readdir(join(out, 'model'))).sort()).toEqual(names);
    expect(names).toContain('model.safetensors');
    for (const name of names) expect((await readFile(join(out, 'model', name))).equals(await readFile(join(reference, 'model', name))), name).toBe(true);
  });
});
