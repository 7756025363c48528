// peft-ts export gguf, checked by llama.cpp itself (node-llama-cpp's prebuilt CPU build): the
// exported file must decode the same greedy ids as peft-ts, give the same first-step logits
// to a stated tolerance, and tokenize text the way the Hugging Face tokenizer does.
import { cp as copyDir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { Tokenizer, tokenizerFromDir } from '@peft-ts/data-alpaca/node';
import { greedy, loadModel } from '@peft-ts/models/node';
import { fromArray, tidy } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { createDemoAssets } from '../demo/assets.js';
import { LLAMA2_TOKENIZER_DIR, writeTinyLlama } from '../testing/tiny-model.js';
import { exportModelGguf } from './export-gguf.js';
import { QWEN3_TOKENIZER_DIR, writeTinyModel } from '../gguf/tiny-models.test-util.js';

let llama: Llama;
let scratch = '';
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'peft-gguf-export-'));
  try {
    llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true });
  } catch (cause) {
    throw new Error(`node-llama-cpp could not load its prebuilt llama.cpp CPU binary on this machine (${process.platform}-${process.arch}); the GGUF checks need it`, { cause });
  }
});
afterAll(async () => {
  await llama?.dispose();
  await rm(scratch, { recursive: true, force: true });
});

const NEW_TOKENS = 32;

/** peft-ts's greedy continuation and the last position's logits for `prompt`. */
async function peftRun(dir: string, prompt: number[]): Promise<{ ids: number[]; logits: Float32Array }> {
  const rt = await testRuntime();
  const model = await loadModel(rt, dir);
  try {
    const t = tidy(() => model.forward(fromArray(rt, Int32Array.from(prompt), [1, prompt.length], 'i32')));
    const all = (await t.toArray()) as Float32Array;
    t.dispose();
    const v = model.config.vocabSize;
    const logits = all.slice((prompt.length - 1) * v, prompt.length * v);
    return { ids: await greedy(model, prompt, NEW_TOKENS), logits };
  } finally {
    model.dispose();
  }
}

/** llama.cpp's greedy continuation and first-step probabilities (top 40 at temperature 1). */
async function cppRun(model: LlamaModel, prompt: number[], eos: ReadonlySet<number>): Promise<{ ids: number[]; probs: Map<number, number> }> {
  const context = await model.createContext({ contextSize: 128, threads: 2 });
  try {
    const seq = context.getSequence();
    const tokens = prompt as Token[];
    const last = tokens.at(-1);
    if (last === undefined) throw new Error('an empty prompt');
    const first = await seq.controlledEvaluate([...tokens.slice(0, -1), [last, { generateNext: { probabilities: true, options: { temperature: 1, topK: 40, topP: 1, minP: 0 } } }]]);
    const probs = first.at(-1)?.next.probabilities ?? new Map<Token, number>();
    await seq.clearHistory();
    const ids: number[] = [];
    for await (const t of seq.evaluate(tokens, { temperature: 0 })) {
      ids.push(t);
      if (ids.length >= NEW_TOKENS || eos.has(t)) break;
    }
    return { ids, probs: new Map([...probs].map(([k, p]) => [k as number, p])) };
  } finally {
    await context.dispose();
  }
}

/** Largest difference of (logit - top logit) over llama.cpp's reported tokens (log-probabilities differ from logits by one constant). */
function logitGap(peft: Float32Array, probs: Map<number, number>): { maxDiff: number; compared: number } {
  let top = -Infinity;
  let topId = -1;
  for (const [id, p] of probs) if (p > top) [top, topId] = [p, id];
  const peftTop = peft[topId] ?? 0;
  let maxDiff = 0;
  for (const [id, p] of probs) {
    const cpp = Math.log(p) - Math.log(top);
    const ours = (peft[id] ?? 0) - peftTop;
    maxDiff = Math.max(maxDiff, Math.abs(cpp - ours));
  }
  return { maxDiff, compared: probs.size };
}

const TOKENIZER_TEXTS = [
  'Hello world',
  ' leading space and  double  spaces',
  'naïve café — “quotes” 😀 emoji, 日本語のテキスト',
  'def f(x):\n\treturn x**2\n',
  'tabs\t\tand\n\n\nnewlines   runs     of spaces',
  '12345 67.89 1e-5 3,141,592',
  '### Instruction:\nClassify the sentiment.\n\n### Response:\npositive',
];

let demo: Promise<string> | null = null;
/** The demo's model directory, made once. */
function demoDir(): Promise<string> {
  demo ??= createDemoAssets(join(scratch, 'demo')).then((a) => a.dir);
  return demo;
}

/** A copy of a model directory, so that each case may remove its own. */
async function cp(dir: string): Promise<string> {
  const to = await mkdtemp(join(tmpdir(), 'peft-gguf-copy-'));
  await copyDir(dir, to, { recursive: true });
  return to;
}

interface Case {
  name: string;
  arch: string;
  build: () => Promise<string>;
  /** Texts with the tokenizer's special tokens in them, for the tokenizer check. */
  specialTexts: string[];
  /** Also check bf16 and q8_0 exports. */
  moreTypes?: boolean;
}

const CASES: Case[] = [
  {
    name: 'a tiny Llama with the Llama 2 tokenizer',
    arch: 'llama',
    build: () => writeTinyLlama({ vocabSize: 32000, maxPositions: 128, tokenizerDir: LLAMA2_TOKENIZER_DIR, hidden: 32, seed: 3 }),
    moreTypes: true,
    specialTexts: ['one</s>two', '<s>start'],
  },
  {
    name: 'a tiny Qwen2 (q/k/v biases, tied embeddings, padded vocabulary) with the Qwen3 tokenizer',
    arch: 'qwen2',
    build: () => writeTinyModel({ arch: 'qwen2', vocabSize: 151680, tokenizerDir: QWEN3_TOKENIZER_DIR, ids: { bos: null, eos: 151645, pad: 151643 }, seed: 1 }),
    specialTexts: ['<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n', 'a<|endoftext|>b'],
  },
  {
    name: 'a tiny Phi-3 (fused qkv and gate_up, vocabulary padded to 32064) with the Llama 2 tokenizer',
    arch: 'phi3',
    build: () => writeTinyModel({ arch: 'phi3', vocabSize: 32064, tokenizerDir: LLAMA2_TOKENIZER_DIR, ids: { bos: 1, eos: 2, pad: null }, seed: 2 }),
    specialTexts: ['one</s>two'],
  },
  {
    name: 'a tiny GPT-2 (learned positions, LayerNorm, MLP biases, tied embeddings) with the demo byte-level tokenizer',
    arch: 'gpt2',
    build: async () => {
      const demo = await demoDir();
      const t = await tokenizerFromDir(demo);
      return writeTinyModel({ arch: 'gpt2', vocabSize: t.vocabSize, tokenizerDir: demo, ids: { bos: null, eos: t.eosId ?? 0, pad: t.padId }, seed: 4 });
    },
    specialTexts: ['one<|endoftext|>two<|pad|>'],
  },
  {
    name: 'the demo model (llama layout, byte-level BPE trained on the example data)',
    arch: 'llama',
    build: async () => cp(await demoDir()),
    specialTexts: ['one<|endoftext|>two<|pad|>'],
  },
];

for (const c of CASES) {
  describe(`export gguf: ${c.name}`, () => {
    let dir = '';
    let tokenizer: Tokenizer;
    let prompt: number[] = [];
    let ours: { ids: number[]; logits: Float32Array };
    beforeAll(async () => {
      dir = await c.build();
      tokenizer = await tokenizerFromDir(dir);
      prompt = tokenizer.encode('The quick brown fox jumps over', { addSpecialTokens: true });
      ours = await peftRun(dir, prompt);
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    if (c.moreTypes === true) {
      it('bf16 and q8_0: llama.cpp loads them and the first-step logits stay close', async () => {
        for (const type of ['bf16', 'q8_0'] as const) {
          const file = join(scratch, `${c.arch}-${type}.gguf`);
          await exportModelGguf(dir, file, type);
          const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
          try {
            const cpp = await cppRun(model, prompt, new Set(tokenizer.eosId === null ? [] : [tokenizer.eosId]));
            const gap = logitGap(ours.logits, cpp.probs);
            // Measured: 4.8e-3 (bf16), 8.1e-3 (q8_0): weight rounding, not a layout error (which
            // would be of the order of the logits themselves).
            expect(gap.compared).toBe(40);
            expect(gap.maxDiff).toBeLessThan(3e-2);
            expect(cpp.ids[0]).toBe(ours.ids[0]);
          } finally {
            await model.dispose();
          }
        }
      });
    }

    for (const type of ['f32', 'f16'] as const) {
      it(`${type}: llama.cpp decodes the same 32 greedy ids and first-step logits${type === 'f32' ? ', and tokenizes as the tokenizer.json does' : ''}`, async () => {
        const file = join(scratch, `${c.arch}-${type}.gguf`);
        const r = await exportModelGguf(dir, file, type);
        expect(r.arch).toBe(c.arch);
        const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
        try {
          const cpp = await cppRun(model, prompt, new Set(tokenizer.eosId === null ? [] : [tokenizer.eosId]));
          expect(cpp.ids).toEqual(ours.ids);
          const gap = logitGap(ours.logits, cpp.probs);
          // llama.cpp reports the top 40 (top-k only: no top-p or min-p cut).
          expect(gap.compared).toBe(40);
          // Measured (f32 / f16): llama 1.1e-4 / 6.2e-4, qwen2 1.5e-3 / 5.3e-3 (its tied
          // embedding gives logits about 6x wider), phi3 3.5e-4 / 6.3e-4, gpt2 1.4e-3 / 2.8e-3,
          // demo 9.6e-5 / 3.0e-4;
          // f16 is looser because ggml rounds the activations to f16 in f16 matmuls.
          expect(gap.maxDiff).toBeLessThan(type === 'f32' ? 3e-3 : 1.5e-2);
          if (type === 'f32') {
            for (const text of [...TOKENIZER_TEXTS, ...c.specialTexts]) {
              expect({ text, ids: model.tokenize(text, true) }).toEqual({ text, ids: tokenizer.encode(text, { addSpecialTokens: false }) });
            }
          }
        } finally {
          await model.dispose();
        }
      });
    }
  });
}
