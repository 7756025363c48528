// The training core as a browser calls it (model, tokenizer and data already in memory, a run
// store in memory) computes exactly what `runFinetune` computes from paths: the same losses and
// the same adapter bytes; and a run stopped by its abort signal resumes from the in-memory
// checkpoint to the same adapter.
import { describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDataset, Tokenizer } from '@peft-ts/data-alpaca';
import { memoryTree } from '@peft-ts/safetensors';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModelFrom } from '@peft-ts/models';
import { finetune, memoryRunStore, modelLoadOptionsFrom, resolveFinetuneConfig, type FinetuneConfig, type MemoryRunStore } from '../index.js';
import { runFinetune } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));

/** GPT-2's printable stand-ins for the 256 bytes, as byte-level BPE vocabularies spell them. */
function byteAlphabet(): string[] {
  const printable = [...range(0x21, 0x7e), ...range(0xa1, 0xac), ...range(0xae, 0xff)];
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b += 1) out.push(String.fromCharCode(printable.includes(b) ? b : 256 + extra++));
  return out;
}
function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** A byte-level tokenizer (3 special tokens + 256 bytes, no merges) that fits the tiny model's 320 ids. */
function byteTokenizerFiles(): Record<string, string> {
  const specials = ['<|pad|>', '<s>', '</s>'];
  const vocab: Record<string, number> = {};
  byteAlphabet().forEach((c, i) => (vocab[c] = specials.length + i));
  const byteLevel = (trimOffsets: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: trimOffsets, use_regex: true });
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel(true),
    post_processor: byteLevel(false),
    decoder: byteLevel(true),
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
  const config = { add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', pad_token: '<|pad|>' };
  return { 'tokenizer.json': JSON.stringify(json), 'tokenizer_config.json': JSON.stringify(config) };
}

function records(): string {
  const words = ['red', 'green', 'blue', 'river', 'stone', 'light'];
  const lines: string[] = [];
  for (let i = 0; i < 14; i += 1) {
    lines.push(JSON.stringify({ instruction: `Name colour ${i}.`, input: i % 3 === 0 ? 'briefly' : '', output: `${words[i % 6] ?? ''} ${words[(i * 5) % 6] ?? ''}` }));
  }
  return `${lines.join('\n')}\n`;
}

/** The tiny Llama with the byte tokenizer as a model directory, a dataset file, and a config for both. */
async function setup(): Promise<{ config: FinetuneConfig; files: Record<string, Uint8Array | string>; data: Uint8Array }> {
  const dir = await mkdtemp(join(tmpdir(), 'peft-core-'));
  const model = join(dir, 'model');
  await mkdir(model);
  for (const name of ['config.json', 'model.safetensors']) await copyFile(join(fixtures, 'llama', 'model', name), join(model, name));
  const tokenizer = byteTokenizerFiles();
  for (const [name, text] of Object.entries(tokenizer)) await writeFile(join(model, name), text);
  const dataPath = join(dir, 'data.jsonl');
  await writeFile(dataPath, records());
  const config = resolveFinetuneConfig({
    model,
    data: dataPath,
    output: join(dir, 'out'),
    method: 'qlora',
    r: 4,
    alpha: 8,
    dropout: 0.1,
    maxSteps: 4,
    batchSize: 2,
    gradientAccumulation: 2,
    lr: 1e-3,
    validationSplit: 0.2,
    evalEvery: 2,
    saveEvery: 2,
    maxLength: 256,
    seed: 7,
  });
  const files: Record<string, Uint8Array | string> = { ...tokenizer };
  for (const name of ['config.json', 'model.safetensors']) files[name] = new Uint8Array(await readFile(join(model, name)));
  return { config, files, data: new Uint8Array(await readFile(dataPath)) };
}

const bytesOf = (value: Uint8Array | string | Blob | undefined): Uint8Array => {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new TextEncoder().encode(value);
  throw new Error(`expected bytes or text, got ${value === undefined ? 'nothing' : 'a Blob'}`);
};

describe('finetune (the training core)', () => {
  it('gives runFinetune\'s losses and adapter bytes from in-memory model, tokenizer, data and store; an aborted run resumes to the same bytes', async () => {
    const rt = await testRuntime();
    const { config, files, data } = await setup();

    const cliLosses: number[] = [];
    const cli = await runFinetune(rt, config, { log: () => undefined, progress: false, callbacks: { onStepEnd: (s) => void cliLosses.push(s.loss) } });
    expect(cli.summary.steps).toBe(4);
    const cliWeights = new Uint8Array(await readFile(join(config.output, 'adapter', 'adapter_model.safetensors')));
    const cliConfig = await readFile(join(config.output, 'adapter', 'adapter_config.json'), 'utf8');
    cli.model.dispose();

    // What a Web Worker holds: the picked files in memory, the data as bytes, a store for checkpoints.
    const inMemory = async (store: MemoryRunStore, extra: Partial<Parameters<typeof finetune>[2]> = {}, losses: number[] = []) => {
      const tree = memoryTree('picked-model', files);
      const model = await loadModelFrom(rt, tree, await modelLoadOptionsFrom(tree, config.method === 'qlora', { type: config.quantType, blocksize: config.blocksize, doubleQuant: config.doubleQuant }));
      const tokenizer = await Tokenizer.fromTree(tree);
      const dataset = await parseDataset(data, { name: config.data });
      const run = await finetune(rt, config, { model, tokenizer, dataset, store, callbacks: { onStepEnd: (s) => void losses.push(s.loss) }, ...extra });
      model.dispose();
      return run;
    };

    const store = memoryRunStore('browser-run');
    const coreLosses: number[] = [];
    const core = await inMemory(store, {}, coreLosses);
    expect(core.summary.steps).toBe(4);
    expect(coreLosses).toEqual(cliLosses);
    expect(cliLosses.every(Number.isFinite)).toBe(true);
    const coreWeights = bytesOf(store.files.get('adapter/adapter_model.safetensors'));
    expect(coreWeights.length).toBeGreaterThan(1000);
    expect(Buffer.compare(coreWeights, cliWeights)).toBe(0);
    expect(new TextDecoder().decode(bytesOf(store.files.get('adapter/adapter_config.json')))).toBe(cliConfig);
    expect([...store.files.keys()].filter((n) => n.startsWith('checkpoint-')).map((n) => n.split('/')[0])).toContain('checkpoint-4');

    // Stopped after step 2 (the page's stop button), then resumed from the store's checkpoint.
    const resumable = memoryRunStore('opfs-like');
    const stop = new AbortController();
    const first = await inMemory(resumable, { callbacks: { onStepEnd: (s) => (s.step === 2 ? stop.abort() : undefined) }, signal: stop.signal });
    expect(first.summary).toMatchObject({ steps: 2, interrupted: true, checkpointDir: 'opfs-like/checkpoint-2' });
    expect(resumable.files.has('adapter/adapter_model.safetensors')).toBe(false);
    const resumedLosses: number[] = [];
    const resumed = await inMemory(resumable, { resume: 'latest' }, resumedLosses);
    expect(resumed.summary.steps).toBe(4);
    expect(resumedLosses).toEqual(cliLosses.slice(2));
    expect(Buffer.compare(bytesOf(resumable.files.get('adapter/adapter_model.safetensors')), cliWeights)).toBe(0);
  });
});
