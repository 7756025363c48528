// How much merging a QLoRA adapter into 16-bit weights changes the model it was trained on: the
// adapter learned on top of dequantized NF4 weights, so merging it into the original 16-bit
// weights shifts every targeted layer by the quantization error. This reports that per layer.
import { Checkpoint, readJson, readText, type FileTree } from '@peft-ts/safetensors';
import { fromArray, noGrad, tidy, type Runtime } from '@peft-ts/tensor';
import { modelLayout, parseModelConfig } from '@peft-ts/models';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, moduleHyperparameters, resolveLoraConfig } from '@peft-ts/lora';
import { dequantize, quantize } from '@peft-ts/nf4-quant';
import { loraDelta } from '../merge/delta.js';

export interface LayerDrift {
  module: string;
  /** max |(deq(NF4(W)) + dW) - (W + dW)| = max |deq(NF4(W)) - W| over the layer. */
  maxAbs: number;
  meanAbs: number;
  /** Mean |dW| of the adapter's update on this layer, for scale. */
  meanAbsUpdate: number;
  /** meanAbs / meanAbsUpdate: above ~1 the merge changes the layer more than training did. */
  ratio: number;
}

export interface DriftOptions {
  blocksize?: number;
  doubleQuant?: boolean;
  quantType?: 'nf4' | 'fp4';
}

/**
 * Per-layer drift between merging the adapter in `adapterTree` into the dequantized NF4 weights
 * (what the adapter was trained against) and into the original 16-bit weights of `baseTree`.
 * `qloraMergeDrift(rt, baseDir, adapterDir)` in `@peft-ts/merge/node` takes directories.
 */
export async function qloraMergeDriftFrom(rt: Runtime, baseTree: FileTree, adapterTree: FileTree, options: DriftOptions = {}): Promise<LayerDrift[]> {
  const config = parseModelConfig(await readJson(baseTree, 'config.json'), `${baseTree.name}/config.json`);
  const conv1d = new Set(modelLayout(config).linears.filter((l) => l.conv1d).map((l) => l.name));
  const lora = resolveLoraConfig(JSON.parse(await readText(adapterTree, ADAPTER_CONFIG)) as Record<string, unknown>, `${adapterTree.name}/${ADAPTER_CONFIG}`);
  const adapter = await Checkpoint.open(adapterTree, { file: ADAPTER_WEIGHTS });
  const base = await Checkpoint.open(baseTree).catch(async (error: unknown) => {
    await adapter.close();
    throw error;
  });
  const out: LayerDrift[] = [];
  try {
    for (const key of adapter.names()) {
      const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(key);
      if (!m?.[1]) continue;
      const module = m[1];
      const w = await base.readF32(`${module}.weight`);
      const shape = base.info(`${module}.weight`).shape;
      const q = quantize(w, { type: options.quantType ?? 'nf4', blocksize: options.blocksize ?? 64, doubleQuant: options.doubleQuant ?? true, shape });
      const wq = dequantize(q);
      let maxAbs = 0;
      let sumAbs = 0;
      for (let i = 0; i < w.length; i++) {
        const d = Math.abs((wq[i] ?? 0) - (w[i] ?? 0));
        if (d > maxAbs) maxAbs = d;
        sumAbs += d;
      }
      const { scale } = moduleHyperparameters(lora, module);
      const bKey = `base_model.model.${module}.lora_B.weight`;
      const [a, b] = [await adapter.readF32(key), await adapter.readF32(bKey)];
      const deltaT = noGrad(() => tidy(() => loraDelta(fromArray(rt, a, adapter.info(key).shape), fromArray(rt, b, adapter.info(bKey).shape), scale, conv1d.has(module))));
      const delta = (await deltaT.toArray()) as Float32Array;
      deltaT.dispose();
      let sumUpdate = 0;
      for (const d of delta) sumUpdate += Math.abs(d);
      const meanAbs = sumAbs / w.length;
      const meanAbsUpdate = sumUpdate / delta.length;
      out.push({ module, maxAbs, meanAbs, meanAbsUpdate, ratio: meanAbsUpdate > 0 ? meanAbs / meanAbsUpdate : Infinity });
    }
  } finally {
    await adapter.close();
    await base.close();
  }
  return out;
}
