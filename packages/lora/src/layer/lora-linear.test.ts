// LoraLinear with no gradient wanted (generation, evaluation) adds each adapter's update to the
// base output in one dispatch: PEFT's adapted logits are still reproduced on every fixture
// architecture, the result agrees with the four-dispatch form to f32 round-off, and three
// dispatches per adapted layer are saved.
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '@peft-ts/safetensors/node';
import { fromArray, noGrad, tidy, type Runtime, type Tensor } from '@peft-ts/tensor';
import { testRuntime } from '@peft-ts/tensor/testing';
import { loadModel, type Architecture } from '@peft-ts/models/node';
import { LoraModel } from '../node.js';

const fixtures = fileURLToPath(new URL('../../../../../shared/fixtures/hf-tiny/', import.meta.url));
const ARCHS: Architecture[] = ['llama', 'mistral', 'qwen2', 'phi3', 'gpt2'];

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
};

describe('LoraLinear without gradients', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await testRuntime();
  });

  for (const arch of ARCHS) {
    it(`${arch}: one dispatch per adapted layer, PEFT's logits within 1e-4, the unfused form's within 1e-5`, async () => {
      const model = await loadModel(rt, join(fixtures, arch, 'model'));
      const lm = new LoraModel(model);
      await lm.loadAdapter(join(fixtures, arch, 'adapter'));
      lm.train(false);
      const f = await SafetensorsFile.open(join(fixtures, arch, 'expected.safetensors'));
      const ids = (await f.read('input_ids')).data as Int32Array;
      const shape = f.info('input_ids').shape;
      const expected = await f.readF32('logits_lora');
      await f.close();
      const run = (): Tensor => tidy(() => model.forward(fromArray(rt, ids, shape, 'i32')));

      // Loaded adapters are trainable, so with grad mode on the update takes the four-dispatch form.
      const d0 = rt.totalDispatches;
      const unfused = run();
      const d1 = rt.totalDispatches;
      const fused = noGrad(run);
      const d2 = rt.totalDispatches;
      const layers = lm.loraLayers().filter((l) => l.active.length > 0).length;
      expect(layers).toBeGreaterThan(0);
      expect(d1 - d0 - (d2 - d1)).toBe(3 * layers);

      const got = await fused.toArray();
      expect(maxAbs(got, expected)).toBeLessThan(1e-4);
      expect(maxAbs(got, await unfused.toArray())).toBeLessThan(1e-5);
      fused.dispose();
      unfused.dispose();
      model.dispose();
    });
  }
});
