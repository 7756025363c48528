// Merging an adapter into the loaded model's dense weights and taking it out again, as PEFT's
// merge()/unmerge()/merge_and_unload() do: W += scale * B @ A, rounded to the weight's dtype.
import { PeftError } from '@peft-ts/errors';
import { add, cast, noGrad, sub, tidy, type Tensor } from '@peft-ts/tensor';
import { DenseLinear, type CausalLM } from '@peft-ts/models';
import { LoraLinear, type LoraModel } from '@peft-ts/lora';
import { loraDelta } from './delta.js';

function denseBase(layer: LoraLinear): DenseLinear {
  if (!(layer.base instanceof DenseLinear)) {
    throw new PeftError('MERGE_BASE', `${layer.name}: merging needs a dense base weight; a 4-bit base is merged into a checkpoint with mergeIntoCheckpoint (dequantized to the requested dtype)`);
  }
  return layer.base;
}

function applyDelta(base: DenseLinear, delta: Tensor, sign: 1 | -1): void {
  const w = base.weight;
  const updated = tidy(() => {
    const sum = sign > 0 ? add(w, delta) : sub(w, delta);
    return w.dtype === 'f32' ? sum : cast(sum, w.dtype);
  });
  updated.keep();
  updated.name = w.name;
  (base as { weight: Tensor }).weight = updated;
  w.dispose();
}

/** Adds the active adapter's update into every targeted dense weight; LoRA paths are then bypassed. */
export function mergeAdapter(lm: LoraModel, adapterName = lm.activeAdapter ?? 'default'): void {
  noGrad(() => {
    for (const layer of lm.loraLayers()) {
      const w = layer.adapters.get(adapterName);
      if (!w) continue;
      const base = denseBase(layer);
      const delta = loraDelta(w.A, w.B, w.scale);
      applyDelta(base, delta, 1);
      delta.dispose();
      layer.merged.add(adapterName);
    }
  });
}

/** Subtracts a merged adapter's update again (round-off of the dtype stays, as in PEFT). */
export function unmergeAdapter(lm: LoraModel, adapterName = lm.activeAdapter ?? 'default'): void {
  noGrad(() => {
    for (const layer of lm.loraLayers()) {
      const w = layer.adapters.get(adapterName);
      if (!w || !layer.merged.has(adapterName)) continue;
      const base = denseBase(layer);
      const delta = loraDelta(w.A, w.B, w.scale);
      applyDelta(base, delta, -1);
      delta.dispose();
      layer.merged.delete(adapterName);
    }
  });
}

/** Merges the active adapter and replaces every LoRA layer by its base: a plain CausalLM again. */
export function mergeAndUnload(lm: LoraModel): CausalLM {
  mergeAdapter(lm);
  const model = lm.model;
  for (const layer of lm.loraLayers()) {
    model.setLinear(layer.name, layer.base);
    for (const name of [...layer.adapters.keys()]) layer.removeAdapter(name);
  }
  return model;
}
