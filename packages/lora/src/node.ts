// Node entry of @peft-ts/lora: everything the main entry has, with a LoraModel that also saves
// and loads adapter directories by path.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dirTree, dirWriter, writeSafetensors } from '@peft-ts/safetensors/node';
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, LoraModel as LoraModelBase, type SaveAdapterOptions } from './model/lora-model.js';

export * from './index.js';

export class LoraModel extends LoraModelBase {
  /**
   * Writes adapter_config.json and adapter_model.safetensors as PEFT does into `dir`, each file
   * atomically, the weights streamed tensor by tensor. The second argument is the adapter's name
   * or `{ adapterName, baseModelNameOrPath }`.
   */
  async saveAdapter(dir: string, adapterOrOptions: string | SaveAdapterOptions = {}): Promise<void> {
    const { config, tensors } = this.adapterContent(adapterOrOptions);
    await mkdir(dir, { recursive: true });
    await writeSafetensors(join(dir, ADAPTER_WEIGHTS), tensors, { metadata: { format: 'pt' } });
    await dirWriter(dir).write(ADAPTER_CONFIG, config);
  }

  /** Loads a PEFT adapter directory onto the model as `adapterName` and activates it. */
  async loadAdapter(dir: string, adapterName = 'default'): Promise<void> {
    await this.loadAdapterFrom(dirTree(dir), adapterName);
  }
}
