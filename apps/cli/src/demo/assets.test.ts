// The demo's model directory: byte-identical on every run, reused only when intact, never
// written over a user's directory, loadable by @peft-ts/models and @peft-ts/data-alpaca, with
// weights initialised as transformers initialises a Llama.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleDatasetPath, loadDataset, tokenizeExamples, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { loadModel, loadModelConfig } from '@peft-ts/models/node';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import { fromArray, tidy } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import {
  createDemoAssets,
  DEMO_STAMP_FILE,
  DEMO_VOCAB_SIZE,
  normalSampler,
  portableLog,
  seededUniform,
  type DemoAssets,
} from './assets.js';

const FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  DEMO_STAMP_FILE,
  'special_tokens_map.json',
  'tokenizer.json',
  'tokenizer_config.json',
].sort();

async function readAll(dir: string): Promise<Map<string, Buffer>> {
  const names = (await readdir(dir)).sort();
  return new Map(await Promise.all(names.map(async (n) => [n, await readFile(join(dir, n))] as const)));
}

function expectSameFiles(a: Map<string, Buffer>, b: Map<string, Buffer>): void {
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [name, bytes] of a) expect(b.get(name)?.equals(bytes), name).toBe(true);
}

function stats(values: Float32Array): { mean: number; std: number } {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, std: Math.sqrt(sq / values.length) };
}

describe('deterministic random numbers', () => {
  it('portableLog agrees with Math.log to a few ulp', () => {
    const uniform = seededUniform(3, 'log');
    let worst = 0;
    for (let i = 0; i < 20_000; i += 1) {
      const x = i < 10_000 ? 1 - uniform() : uniform() ** 8 + 1e-300;
      const want = Math.log(x);
      worst = Math.max(worst, Math.abs(portableLog(x) - want) / Math.max(Math.abs(want), 1e-300));
    }
    expect(worst).toBeLessThan(1e-15);
    expect(portableLog(1)).toBe(0);
    expect(portableLog(0.5)).toBe(-Math.LN2);
    expect(() => portableLog(0)).toThrow(/\(0, 1\]/);
  });

  it('draws standard normals, one stream per (seed, name)', () => {
    const n = 200_000;
    const normal = normalSampler(seededUniform(0, 'x'));
    const values = Float32Array.from({ length: n }, () => normal());
    const { mean, std } = stats(values);
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(std - 1)).toBeLessThan(0.01);
    const within = values.filter((v) => Math.abs(v) < 1).length / n;
    expect(Math.abs(within - 0.682689)).toBeLessThan(0.005);
    expect(seededUniform(0, 'x')()).toBe(seededUniform(0, 'x')());
    expect(seededUniform(0, 'x')()).not.toBe(seededUniform(1, 'x')());
    expect(seededUniform(0, 'x')()).not.toBe(seededUniform(0, 'y')());
  });
});

describe('createDemoAssets', () => {
  let root: string;
  let first: DemoAssets;
  let files: Map<string, Buffer>;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'peft-ts-demo-assets-'));
    first = await createDemoAssets(join(root, 'a'));
    files = await readAll(first.dir);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes the model directory and nothing else', async () => {
    expect(first.reused).toBe(false);
    expect(first.dir).toBe(join(root, 'a'));
    expect([...files.keys()]).toEqual(FILES);
    expect(first.vocabSize).toBe(DEMO_VOCAB_SIZE);
    expect(first.config.vocab_size).toBe(DEMO_VOCAB_SIZE);
    expect(JSON.parse(files.get('config.json')?.toString() ?? '')).toEqual(first.config);
    // No temporary directory is left beside it.
    expect(await readdir(root)).toEqual(['a']);
  });

  it('makes byte-identical files when run again elsewhere', async () => {
    const again = await createDemoAssets(join(root, 'b'));
    expect(again.reused).toBe(false);
    expectSameFiles(files, await readAll(again.dir));
    await rm(again.dir, { recursive: true });
  });

  it('reuses an intact directory and rebuilds a damaged one', async () => {
    const reused = await createDemoAssets(first.dir);
    expect(reused).toEqual({ ...first, reused: true });
    expectSameFiles(files, await readAll(first.dir));

    const damaged = join(root, 'damaged');
    await cp(first.dir, damaged, { recursive: true });
    const model = await readFile(join(damaged, 'model.safetensors'));
    model[model.length - 1] = (model[model.length - 1] ?? 0) ^ 1;
    await writeFile(join(damaged, 'model.safetensors'), model);
    await writeFile(join(damaged, 'leftover.txt'), 'from an older run');
    const rebuilt = await createDemoAssets(damaged);
    expect(rebuilt.reused).toBe(false);
    expectSameFiles(files, await readAll(damaged));
    await rm(damaged, { recursive: true });
  });

  it('changes only the weights with the seed', async () => {
    const other = await createDemoAssets(join(root, 'seed1'), { seed: 1 });
    const otherFiles = await readAll(other.dir);
    for (const name of ['config.json', 'generation_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(otherFiles.get(name)?.equals(files.get(name) ?? Buffer.alloc(0)), name).toBe(true);
    }
    expect(otherFiles.get('model.safetensors')?.equals(files.get('model.safetensors') ?? Buffer.alloc(0))).toBe(false);
    // A seed-0 directory is not reused for seed 1: it is rebuilt into the seed-1 files.
    const reseeded = join(root, 'reseeded');
    await cp(first.dir, reseeded, { recursive: true });
    expect((await createDemoAssets(reseeded, { seed: 1 })).reused).toBe(false);
    expectSameFiles(otherFiles, await readAll(reseeded));
    await rm(reseeded, { recursive: true });
    await rm(other.dir, { recursive: true });
    await expect(createDemoAssets(join(root, 'x'), { seed: -1 })).rejects.toThrow(/seed must be an integer/);
  });

  it('refuses to replace a directory it did not make', async () => {
    const foreign = join(root, 'foreign');
    await mkdir(foreign);
    await writeFile(join(foreign, 'notes.txt'), 'mine');
    await expect(createDemoAssets(foreign)).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
    // A file that merely has the stamp's name does not make the directory the demo's.
    await writeFile(join(foreign, DEMO_STAMP_FILE), '{"files": {}}');
    await expect(createDemoAssets(foreign)).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
    expect(await readFile(join(foreign, 'notes.txt'), 'utf8')).toBe('mine');
    await rm(foreign, { recursive: true });
  });

  it('retrains the tokenizer for another dataset and sizes the model to it', async () => {
    const dataPath = join(root, 'tiny.json');
    const records = [
      { instruction: 'Convert to uppercase.', input: 'red green blue', output: 'RED GREEN BLUE' },
      { instruction: 'Convert to uppercase.', input: 'green blue red', output: 'GREEN BLUE RED' },
      { instruction: 'Reverse the words.', input: 'one two three', output: 'three two one' },
    ];
    await writeFile(dataPath, JSON.stringify(records));
    const dir = join(root, 'tiny');
    await cp(first.dir, dir, { recursive: true });
    const tiny = await createDemoAssets(dir, { datasetPath: dataPath });
    expect(tiny.reused).toBe(false);
    // Three records hold too few repeated pairs to fill 1024 ids: the model takes what there is.
    expect(tiny.vocabSize).toBeLessThan(DEMO_VOCAB_SIZE);
    expect(tiny.config.vocab_size).toBe(tiny.vocabSize);
    const tokenizer = await tokenizerFromDir(dir);
    expect(tokenizer.vocabSize).toBe(tiny.vocabSize);
    const file = await SafetensorsFile.open(join(dir, 'model.safetensors'));
    expect(file.info('lm_head.weight').shape).toEqual([tiny.vocabSize, 64]);
    await file.close();
    expect((await createDemoAssets(dir, { datasetPath: dataPath })).reused).toBe(true);
    await rm(dir, { recursive: true });
    await rm(dataPath);
  });

  it("holds LlamaForCausalLM's state dict, initialised as transformers does", async () => {
    const file = await SafetensorsFile.open(join(first.dir, 'model.safetensors'));
    try {
      const layerNames = (i: number) => [
        `model.layers.${i}.input_layernorm.weight`,
        `model.layers.${i}.mlp.down_proj.weight`,
        `model.layers.${i}.mlp.gate_proj.weight`,
        `model.layers.${i}.mlp.up_proj.weight`,
        `model.layers.${i}.post_attention_layernorm.weight`,
        `model.layers.${i}.self_attn.k_proj.weight`,
        `model.layers.${i}.self_attn.o_proj.weight`,
        `model.layers.${i}.self_attn.q_proj.weight`,
        `model.layers.${i}.self_attn.v_proj.weight`,
      ];
      const expected = ['lm_head.weight', 'model.embed_tokens.weight', ...[0, 1].flatMap(layerNames), 'model.norm.weight'];
      expect([...file.names()].sort()).toEqual(expected.sort());
      const shapes: Record<string, number[]> = {
        'lm_head.weight': [1024, 64],
        'model.embed_tokens.weight': [1024, 64],
        'model.norm.weight': [64],
        'model.layers.1.self_attn.q_proj.weight': [64, 64],
        'model.layers.1.self_attn.k_proj.weight': [32, 64],
        'model.layers.1.self_attn.v_proj.weight': [32, 64],
        'model.layers.1.self_attn.o_proj.weight': [64, 64],
        'model.layers.1.mlp.gate_proj.weight': [192, 64],
        'model.layers.1.mlp.up_proj.weight': [192, 64],
        'model.layers.1.mlp.down_proj.weight': [64, 192],
        'model.layers.1.input_layernorm.weight': [64],
      };
      for (const [name, shape] of Object.entries(shapes)) expect(file.info(name).shape, name).toEqual(shape);
      for (const name of file.names()) expect(file.info(name).dtype, name).toBe('F32');

      const embed = await file.readF32('model.embed_tokens.weight');
      const pad = first.config.pad_token_id;
      expect(embed.subarray(pad * 64, (pad + 1) * 64).every((v) => v === 0)).toBe(true);
      const head = await file.readF32('lm_head.weight');
      for (const values of [embed, head, await file.readF32('model.layers.1.mlp.down_proj.weight')]) {
        const { mean, std } = stats(values);
        expect(Math.abs(mean)).toBeLessThan(5e-4);
        expect(Math.abs(std - 0.02)).toBeLessThan(0.02 * 0.03);
      }
      expect(head.subarray(0, 64)).not.toEqual(embed.subarray(0, 64));
      for (const name of ['model.norm.weight', 'model.layers.0.input_layernorm.weight', 'model.layers.1.post_attention_layernorm.weight']) {
        expect((await file.readF32(name)).every((v) => v === 1), name).toBe(true);
      }
    } finally {
      await file.close();
    }
  });

  it('loads as a model config and a tokenizer that agree on the vocabulary', async () => {
    const config = await loadModelConfig(first.dir);
    expect(config).toMatchObject({
      arch: 'llama',
      className: 'LlamaForCausalLM',
      vocabSize: 1024,
      hiddenSize: 64,
      intermediateSize: 192,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      maxPositions: 256,
      normEps: 1e-5,
      norm: 'rms',
      activation: 'silu',
      rope: { type: 'default', theta: 10000, partialRotaryFactor: 1 },
      tieWordEmbeddings: false,
      bosTokenId: 0,
      eosTokenIds: [0],
      padTokenId: 1,
      dtype: 'float32',
    });
    const tokenizer = await tokenizerFromDir(first.dir);
    expect(tokenizer.vocabSize).toBe(config.vocabSize);
    expect(tokenizer.eosId).toBe(0);
    expect(tokenizer.bosId).toBe(0);
    expect(tokenizer.padId).toBe(1);
    expect(tokenizer.prefixIds).toEqual([]);
    expect(tokenizer.suffixIds).toEqual([]);
    expect(tokenizer.warnings).toEqual([]);
    const dataset = await loadDataset(exampleDatasetPath());
    const { examples, warnings } = tokenizeExamples(dataset.examples, tokenizer, { template: 'alpaca', maxLength: 256 });
    expect(warnings).toEqual([]);
    expect(Math.max(...examples.map((e) => e.inputIds.length))).toBeLessThan(128);
  });

  it('runs a forward pass to finite logits of the initial scale', async () => {
    const rt = await testRuntime();
    const tokenizer = await tokenizerFromDir(first.dir);
    const dataset = await loadDataset(exampleDatasetPath(), { limit: 1 });
    const { examples } = tokenizeExamples(dataset.examples, tokenizer, { template: 'alpaca', maxLength: 256 });
    const ids = examples[0]?.inputIds.subarray(0, 24);
    if (!ids) throw new Error('the example dataset is empty');
    const t = ids.length;
    expect(t).toBe(24);
    const model = await loadModel(rt, first.dir);
    try {
      const logits = tidy(() => model.forward(fromArray(rt, ids, [1, t], 'i32')));
      expect(logits.shape).toEqual([1, t, 1024]);
      const values = (await logits.toArray()) as Float32Array;
      logits.dispose();
      expect(values.length).toBe(t * 1024);
      expect(values.every((v) => Number.isFinite(v))).toBe(true);
      // The final norm gives unit-RMS states and lm_head rows are normal(0, 0.02) over 64
      // features, so logits spread with std 0.02 * sqrt(64) = 0.16 around 0.
      const { mean, std } = stats(values);
      expect(Math.abs(mean)).toBeLessThan(0.05);
      expect(std).toBeGreaterThan(0.1);
      expect(std).toBeLessThan(0.25);
    } finally {
      model.dispose();
    }
  });
});
