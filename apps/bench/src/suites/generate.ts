// Generation benchmark: prefill and decode speed of a dense base, a 4-bit base and a base with a
// LoRA adapter, at the train suite's model shapes, with random weights made on the device.
import { LoraModel } from '@peft-ts/lora';
import { mergeAdapter } from '@peft-ts/merge';
import { generate, parseModelConfig } from '@peft-ts/models';
import type { Runtime } from '@peft-ts/tensor';
import { buildModel, selectTrainCases, tokens } from './train.js';
import { stats, type BenchResult, type SuiteOptions } from './types.js';

interface Variant {
  name: string;
  method: 'lora' | 'qlora';
  adapter: boolean;
  /** Merge the adapter into the dense weights after loading (`generate --merge-in-memory`). */
  merged?: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'dense', method: 'lora', adapter: false },
  { name: 'dense + LoRA r8', method: 'lora', adapter: true },
  { name: 'dense + LoRA r8 merged', method: 'lora', adapter: true, merged: true },
  { name: 'nf4', method: 'qlora', adapter: false },
  { name: 'nf4 + LoRA r8', method: 'qlora', adapter: true },
];

/** Prefill ms and decode ms/token for each shape of the train suite's default (or chosen) cases. */
export async function runGenerateBench(rt: Runtime, opts: SuiteOptions): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  // One model per shape: the train cases name shapes several times (lora/qlora, checkpointing).
  const shapes = new Map<string, Record<string, unknown>>();
  for (const c of selectTrainCases(rt, opts.cases)) shapes.set(c.name.split(' ').slice(0, 2).join(' '), c.config);
  for (const [shape, json] of shapes) {
    const config = parseModelConfig(json, `bench shape "${shape}"`);
    const prompt = Array.from(tokens(rt.gpu.info.isSoftware ? 32 : 128, config.vocabSize, 7));
    const newTokens = opts.quick ? 6 : rt.gpu.info.isSoftware ? 12 : 64;
    for (const v of VARIANTS) {
      rt.trimPool();
      rt.manualSeed(1234);
      const model = await buildModel(rt, config, v.method);
      if (v.adapter) {
        const lora = LoraModel.inject(model, { r: 8, lora_alpha: 16, target_modules: 'all-linear', init_lora_weights: false });
        // Eval mode, as `peft-ts generate` runs it.
        lora.train(false);
        if (v.merged) mergeAdapter(lora);
      }
      try {
        const prefill: number[] = [];
        const decode: number[] = [];
        const runs = opts.quick ? 2 : 3;
        for (let r = 0; r <= runs; r++) {
          const t0 = performance.now();
          let first = 0;
          let last = 0;
          await generate(model, [prompt], {
            maxNewTokens: newTokens,
            eosTokenIds: [],
            onToken: ({ step }) => {
              last = performance.now();
              if (step === 0) first = last;
            },
          });
          // The first run compiles pipelines: not counted.
          if (r === 0) continue;
          prefill.push(first - t0);
          decode.push((last - first) / (newTokens - 1));
        }
        const p = stats(prefill);
        const d = stats(decode);
        const name = `${shape} ${v.name}`;
        const detail = `${config.className} ${config.numLayers}L d${config.hiddenSize} V${config.vocabSize}, prompt ${prompt.length} tokens, ${newTokens} new, greedy`;
        const batch: BenchResult[] = [
          { suite: 'generate', name: `${name} prefill`, value: p.median, min: p.min, max: p.max, iterations: prefill.length, unit: 'ms', better: 'lower', detail },
          { suite: 'generate', name: `${name} decode`, value: d.median, min: d.min, max: d.max, iterations: decode.length, unit: 'ms/token', better: 'lower', detail: `${(1000 / d.median).toPrecision(3)} tokens/s` },
        ];
        opts.emit?.(batch);
        results.push(...batch);
      } finally {
        model.dispose();
      }
    }
  }
  return results;
}
