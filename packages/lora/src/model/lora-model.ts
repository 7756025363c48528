// Injects LoRA adapters into a CausalLM and reads/writes them in PEFT's file format
// (adapter_config.json + adapter_model.safetensors with PEFT's key names).
import { FormatError, PeftError, ShapeMismatchError } from '@peft-ts/errors';
import {
  Checkpoint,
  readText,
  serializeSafetensors,
  type FileTree,
  type TensorSource,
  type WritableTree,
} from '@peft-ts/safetensors';
import { clone, fromArray, type Tensor } from '@peft-ts/tensor';
import { countParameters, type CausalLM } from '@peft-ts/models';
import { adapterConfigJson, moduleHyperparameters, resolveLoraConfig, selectTargetModules, type LoraConfig } from '../config/lora-config.js';
import { LoraLinear, type LoraWeights } from '../layer/lora-linear.js';

const PREFIX = 'base_model.model.';
export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** A seeded generator for initial LoRA weights (mulberry32 + Box-Muller): the same seed, the same adapter. */
function initRandom(seed: number): { uniform: (lo: number, hi: number) => number; normal: (std: number) => number } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: (std) => Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12))) * Math.cos(2 * Math.PI * next()) * std,
  };
}

function patternAlpha(c: LoraConfig, name: string): number {
  return moduleHyperparameters(c, name).alpha;
}

/** An adapter as PEFT saves it, file name -> content. */
export interface AdapterFiles {
  'adapter_config.json': string;
  'adapter_model.safetensors': Uint8Array;
}

export interface SaveAdapterOptions {
  /** The adapter to save (default: the active one). */
  adapterName?: string;
  /**
   * Written as `base_model_name_or_path`: the Hub id or directory of the base model, which PEFT,
   * vLLM and merge tools load the adapter onto (default: the adapter config's own value).
   */
  baseModelNameOrPath?: string | null;
}

export interface AddAdapterOptions {
  /** Seed for the initial A (and B when init_lora_weights is false). Default 0. */
  seed?: number;
}

interface AdapterState {
  config: LoraConfig;
  targets: string[];
  /** Trainable copies for modules_to_save, by HF tensor name. */
  saved: Map<string, Tensor>;
}

export class LoraModel {
  readonly model: CausalLM;
  private readonly adapterStates = new Map<string, AdapterState>();
  private activeName: string | null = null;

  constructor(model: CausalLM) {
    this.model = model;
  }

  /** Wraps `model` and adds one adapter (named 'default' unless told otherwise); on a subclass, makes one of it. */
  static inject<M extends LoraModel>(
    this: new (model: CausalLM) => M,
    model: CausalLM,
    config: Partial<LoraConfig>,
    adapterName = 'default',
    options: AddAdapterOptions = {},
  ): M {
    const lm = new this(model);
    lm.addAdapter(adapterName, config, options);
    return lm;
  }

  get adapterNames(): string[] {
    return [...this.adapterStates.keys()];
  }

  get activeAdapter(): string | null {
    return this.activeName;
  }

  config(adapterName = this.activeName ?? 'default'): LoraConfig {
    return this.state(adapterName).config;
  }

  private state(name: string): AdapterState {
    const s = this.adapterStates.get(name);
    if (!s) throw new PeftError('NO_SUCH_ADAPTER', `no adapter named "${name}" (have: ${this.adapterNames.join(', ') || 'none'})`);
    return s;
  }

  private candidates(): string[] {
    const names = this.model.linearNames();
    return this.model.config.tieWordEmbeddings ? names : [...names, 'lm_head'];
  }

  /** Adds an adapter with freshly initialised weights and makes it the active one. */
  addAdapter(adapterName: string, partial: Partial<LoraConfig>, options: AddAdapterOptions = {}): void {
    if (this.adapterStates.has(adapterName)) throw new PeftError('ADAPTER_EXISTS', `an adapter named "${adapterName}" exists already`);
    const config = resolveLoraConfig(partial);
    const targets = selectTargetModules(config, this.candidates(), this.model.config.arch);
    const rnd = initRandom(options.seed ?? 0);
    const rt = this.model.rt;
    for (const name of targets) {
      const layer = this.wrap(name);
      const { r, alpha, scale } = moduleHyperparameters(config, name);
      const inF = layer.inFeatures;
      const outF = layer.outFeatures;
      const a = new Float32Array(r * inF);
      const b = new Float32Array(outF * r);
      if (config.init_lora_weights === 'gaussian') {
        for (let i = 0; i < a.length; i++) a[i] = rnd.normal(1 / r);
      } else {
        // Kaiming-uniform with a = sqrt(5), as torch's Linear init: bound = 1 / sqrt(fan_in).
        const bound = 1 / Math.sqrt(inF);
        for (let i = 0; i < a.length; i++) a[i] = rnd.uniform(-bound, bound);
        if (config.init_lora_weights === false) {
          const bb = 1 / Math.sqrt(r);
          for (let i = 0; i < b.length; i++) b[i] = rnd.uniform(-bb, bb);
        }
      }
      layer.addAdapter(adapterName, {
        A: fromArray(rt, a, [r, inF], 'f32', { requiresGrad: true, tag: 'weights', name: `${PREFIX}${name}.lora_A.weight` }).keep(),
        B: fromArray(rt, b, [outF, r], 'f32', { requiresGrad: true, tag: 'weights', name: `${PREFIX}${name}.lora_B.weight` }).keep(),
        r,
        alpha,
        scale,
        dropout: config.lora_dropout,
      });
    }
    const saved = this.makeModulesToSave(config);
    this.adapterStates.set(adapterName, { config, targets, saved });
    this.setAdapter(adapterName);
  }

  /**
   * Adds an adapter whose factors are given (A [r, in] and B [out, r] per module, as f32 host
   * arrays), e.g. the result of combining adapters. Every module must be a linear of the model.
   */
  addAdapterFromFactors(adapterName: string, partial: Partial<LoraConfig>, factors: ReadonlyMap<string, { A: Float32Array; B: Float32Array; r: number }>): void {
    if (this.adapterStates.has(adapterName)) throw new PeftError('ADAPTER_EXISTS', `an adapter named "${adapterName}" exists already`);
    const config = resolveLoraConfig(partial);
    const rt = this.model.rt;
    const candidates = new Set(this.candidates());
    for (const [name, f] of factors) {
      if (!candidates.has(name)) throw new PeftError('NO_SUCH_MODULE', `adapter "${adapterName}": the model has no linear module "${name}"`);
      const layer = this.wrap(name);
      if (f.A.length !== f.r * layer.inFeatures || f.B.length !== layer.outFeatures * f.r) {
        throw new ShapeMismatchError({ op: `adapter "${adapterName}" ${name}`, expected: [[f.r, layer.inFeatures], [layer.outFeatures, f.r]], got: [f.A.length, f.B.length] });
      }
      const alpha = patternAlpha(config, name);
      layer.addAdapter(adapterName, {
        A: fromArray(rt, f.A, [f.r, layer.inFeatures], 'f32', { requiresGrad: true, tag: 'weights', name: `${PREFIX}${name}.lora_A.weight` }).keep(),
        B: fromArray(rt, f.B, [layer.outFeatures, f.r], 'f32', { requiresGrad: true, tag: 'weights', name: `${PREFIX}${name}.lora_B.weight` }).keep(),
        r: f.r,
        alpha,
        scale: config.use_rslora ? alpha / Math.sqrt(f.r) : alpha / f.r,
        dropout: config.lora_dropout,
      });
    }
    this.adapterStates.set(adapterName, { config, targets: [...factors.keys()], saved: new Map() });
    this.setAdapter(adapterName);
  }

  /** The LoRA factors of one adapter, by module name (host copies). */
  async factors(adapterName: string): Promise<Map<string, { A: Float32Array; B: Float32Array; r: number; scale: number }>> {
    const state = this.state(adapterName);
    const out = new Map<string, { A: Float32Array; B: Float32Array; r: number; scale: number }>();
    for (const name of state.targets) {
      const layer = this.model.getLinear(name);
      const w = layer instanceof LoraLinear ? layer.adapters.get(adapterName) : undefined;
      if (!w) continue;
      out.set(name, { A: (await w.A.toArray()) as Float32Array, B: (await w.B.toArray()) as Float32Array, r: w.r, scale: w.scale });
    }
    return out;
  }

  private wrap(name: string): LoraLinear {
    const existing = this.model.getLinear(name);
    if (existing instanceof LoraLinear) return existing;
    const layer = new LoraLinear(existing);
    this.model.setLinear(name, layer);
    return layer;
  }

  private makeModulesToSave(config: LoraConfig): Map<string, Tensor> {
    const saved = new Map<string, Tensor>();
    for (const module of config.modules_to_save ?? []) {
      const tensorNames = this.model.tensorNames().filter((t) => t === `${module}.weight` || t.endsWith(`.${module}.weight`));
      if (tensorNames.length === 0 && module === 'lm_head' && !this.model.config.tieWordEmbeddings) {
        throw new PeftError('UNSUPPORTED_MODULE_TO_SAVE', 'modules_to_save "lm_head": a trainable copy of an untied output head is not supported; target it with LoRA instead');
      }
      if (tensorNames.length === 0) {
        throw new FormatError({ file: 'LoraConfig', field: 'modules_to_save', expected: `module names of this model (e.g. ${this.model.tensorNames().slice(0, 3).join(', ')})`, got: module });
      }
      for (const t of tensorNames) {
        const base = this.model.getTensor(t);
        const copy = clone(base, 'weights').keep();
        copy.requiresGrad = true;
        copy.name = `${PREFIX}${t}`;
        saved.set(t, copy);
      }
    }
    return saved;
  }

  /** Makes `adapterName` the only active adapter (PEFT's set_adapter). */
  setAdapter(adapterName: string): void {
    const state = this.state(adapterName);
    for (const name of this.candidates()) {
      const layer = this.model.getLinear(name);
      if (!(layer instanceof LoraLinear)) continue;
      layer.active = state.targets.includes(name) ? [adapterName] : [];
    }
    this.activeName = adapterName;
    this.applyBias(state.config);
    this.applyModulesToSave(state);
  }

  private applyModulesToSave(state: AdapterState | null): void {
    for (const s of this.adapterStates.values()) for (const t of s.saved.keys()) this.model.setTensorOverride(t, undefined);
    if (state) for (const [t, copy] of state.saved) this.model.setTensorOverride(t, copy);
  }

  private applyBias(config: LoraConfig): void {
    for (const name of this.model.linearNames()) {
      const layer = this.model.getLinear(name);
      const bias = (layer instanceof LoraLinear ? layer.base : layer) as { bias?: Tensor | null };
      if (!bias.bias) continue;
      bias.bias.requiresGrad = config.bias === 'all' || (config.bias === 'lora_only' && layer instanceof LoraLinear && layer.active.length > 0);
      if (bias.bias.requiresGrad) bias.bias.name = `${PREFIX}${name}.bias`;
    }
  }

  /** Runs fn with every adapter bypassed (PEFT's disable_adapter context). */
  withAdaptersDisabled<T>(fn: () => T): T {
    this.setEnabled(false);
    try {
      return fn();
    } finally {
      this.setEnabled(true);
    }
  }

  setEnabled(enabled: boolean): void {
    for (const l of this.loraLayers()) l.disabled = !enabled;
    this.applyModulesToSave(enabled && this.activeName ? this.state(this.activeName) : null);
  }

  /** Training mode turns LoRA dropout on. */
  train(training = true): void {
    for (const l of this.loraLayers()) l.training = training;
  }

  deleteAdapter(adapterName: string): void {
    const state = this.state(adapterName);
    for (const l of this.loraLayers()) l.removeAdapter(adapterName);
    for (const t of state.saved.keys()) this.model.setTensorOverride(t, undefined);
    for (const t of state.saved.values()) t.dispose();
    this.adapterStates.delete(adapterName);
    if (this.activeName === adapterName) this.activeName = null;
  }

  loraLayers(): LoraLinear[] {
    return this.candidates()
      .map((n) => this.model.getLinear(n))
      .filter((l): l is LoraLinear => l instanceof LoraLinear);
  }

  /** Trainable tensors of the active adapter by PEFT key (lora_A/lora_B, biases, modules_to_save). */
  trainableParameters(adapterName = this.activeName ?? 'default'): Map<string, Tensor> {
    const state = this.state(adapterName);
    const out = new Map<string, Tensor>();
    for (const name of state.targets) {
      const layer = this.model.getLinear(name);
      const w = layer instanceof LoraLinear ? layer.adapters.get(adapterName) : undefined;
      if (!w) continue;
      out.set(`${PREFIX}${name}.lora_A.weight`, w.A);
      out.set(`${PREFIX}${name}.lora_B.weight`, w.B);
    }
    for (const name of this.model.linearNames()) {
      const layer = this.model.getLinear(name);
      const bias = (layer instanceof LoraLinear ? layer.base : layer) as { bias?: Tensor | null };
      if (bias.bias?.requiresGrad) out.set(`${PREFIX}${name}.bias`, bias.bias);
    }
    for (const [t, copy] of state.saved) out.set(`${PREFIX}${t}`, copy);
    // One order however the adapter came to be (injected or loaded), so optimizer state lines up.
    return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** PEFT's print_trainable_parameters line. */
  trainableParametersSummary(adapterName = this.activeName ?? 'default'): { trainable: number; all: number; line: string } {
    let trainable = 0;
    for (const t of this.trainableParameters(adapterName).values()) trainable += t.numel;
    let lora = 0;
    for (const l of this.loraLayers()) for (const w of l.adapters.values()) lora += w.A.numel + w.B.numel;
    let saved = 0;
    for (const s of this.adapterStates.values()) for (const t of s.saved.values()) saved += t.numel;
    const all = countParameters(this.model.config).total + lora + saved;
    const pct = (100 * trainable) / all;
    return { trainable, all, line: `trainable params: ${trainable.toLocaleString('en-US')} || all params: ${all.toLocaleString('en-US')} || trainable%: ${pct.toFixed(4)}` };
  }

  printTrainableParameters(adapterName?: string): void {
    console.log(this.trainableParametersSummary(adapterName).line);
  }

  /**
   * What an adapter save consists of: the adapter_config.json text and the tensors of
   * adapter_model.safetensors, whose data is read from the GPU when a writer asks for it. The
   * second argument is the adapter's name or `{ adapterName, baseModelNameOrPath }`.
   */
  adapterContent(adapterOrOptions: string | SaveAdapterOptions = {}): { config: string; tensors: TensorSource[] } {
    const options = typeof adapterOrOptions === 'string' ? { adapterName: adapterOrOptions } : adapterOrOptions;
    const adapterName = options.adapterName ?? this.activeName ?? 'default';
    const state = this.state(adapterName);
    const config = options.baseModelNameOrPath === undefined ? state.config : { ...state.config, base_model_name_or_path: options.baseModelNameOrPath };
    const tensors: TensorSource[] = [];
    for (const [key, t] of this.trainableParameters(adapterName)) {
      tensors.push({ name: key, dtype: 'F32', shape: [...t.shape], data: async () => (await t.toArray()) });
    }
    return { config: adapterConfigJson(config, state.targets), tensors };
  }

  /** The two files PEFT saves, in memory: adapter_config.json as text, adapter_model.safetensors as bytes. */
  async adapterFiles(adapterOrOptions: string | SaveAdapterOptions = {}): Promise<AdapterFiles> {
    const { config, tensors } = this.adapterContent(adapterOrOptions);
    const eager: TensorSource[] = [];
    for (const t of tensors) eager.push({ ...t, data: typeof t.data === 'function' ? await t.data() : t.data });
    return { [ADAPTER_CONFIG]: config, [ADAPTER_WEIGHTS]: serializeSafetensors(eager, { metadata: { format: 'pt' } }) };
  }

  /**
   * Writes adapter_config.json and adapter_model.safetensors as PEFT does to any WritableTree (a
   * directory through `dirWriter`, OPFS, memory); the weights first, so a config is only ever
   * beside its weights. `saveAdapter(dir)` on `@peft-ts/lora/node`'s LoraModel writes a directory.
   */
  async saveAdapterTo(writer: WritableTree, adapterOrOptions: string | SaveAdapterOptions = {}): Promise<void> {
    const files = await this.adapterFiles(adapterOrOptions);
    await writer.write(ADAPTER_WEIGHTS, files[ADAPTER_WEIGHTS]);
    await writer.write(ADAPTER_CONFIG, files[ADAPTER_CONFIG]);
  }

  /** Loads a PEFT adapter (adapter_config.json + adapter_model.safetensors in `tree`) as `adapterName` and activates it. */
  async loadAdapterFrom(tree: FileTree, adapterName = 'default'): Promise<void> {
    const configFile = `${tree.name}/${ADAPTER_CONFIG}`;
    let json: unknown;
    try {
      json = JSON.parse(await readText(tree, ADAPTER_CONFIG));
    } catch (cause) {
      throw new FormatError({ file: configFile, field: '(file)', expected: 'a readable JSON adapter config', got: (cause as Error).message, cause });
    }
    if (typeof json !== 'object' || json === null) throw new FormatError({ file: configFile, field: '(root)', expected: 'a JSON object', got: json });
    const config = resolveLoraConfig(json, configFile);
    const weightsFile = `${tree.name}/${ADAPTER_WEIGHTS}`;
    const ckpt = await Checkpoint.open(tree, { file: ADAPTER_WEIGHTS });
    try {
      // Check every key against the model before changing anything.
      const linearNames = new Set(this.candidates());
      const tensorNames = new Set(this.model.tensorNames());
      const loraKeys = new Map<string, { A?: string; B?: string }>();
      for (const key of ckpt.names()) {
        const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/.exec(key);
        if (m?.[1] && m[2]) {
          if (!linearNames.has(m[1])) {
            throw new FormatError({ file: weightsFile, field: `tensor "${key}"`, expected: `a LoRA weight for a linear module of this ${this.model.config.className}`, got: `module "${m[1]}", which the model does not have` });
          }
          const entry = loraKeys.get(m[1]) ?? {};
          entry[m[2] as 'A' | 'B'] = key;
          loraKeys.set(m[1], entry);
          continue;
        }
        const rest = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
        const biasModule = rest.endsWith('.bias') ? rest.slice(0, -5) : null;
        if (biasModule && linearNames.has(biasModule)) continue;
        if (tensorNames.has(rest)) continue;
        throw new FormatError({ file: weightsFile, field: `tensor "${key}"`, expected: `an adapter key of this ${this.model.config.className}`, got: 'a tensor the model has no place for' });
      }
      for (const [module, keys] of loraKeys) {
        if (!keys.A || !keys.B) throw new FormatError({ file: weightsFile, field: `module "${module}"`, expected: 'both lora_A and lora_B weights', got: keys.A ? 'only lora_A' : 'only lora_B' });
        const layer = this.model.getLinear(module);
        const a = ckpt.info(keys.A).shape;
        const b = ckpt.info(keys.B).shape;
        const { r } = moduleHyperparameters(config, module);
        if (a[0] !== r || a[1] !== layer.inFeatures) {
          throw new FormatError({ file: weightsFile, field: `tensor "${keys.A}".shape`, expected: `[${r}, ${layer.inFeatures}]`, got: `[${a.join(', ')}]` });
        }
        if (b[0] !== layer.outFeatures || b[1] !== r) {
          throw new FormatError({ file: weightsFile, field: `tensor "${keys.B}".shape`, expected: `[${layer.outFeatures}, ${r}]`, got: `[${b.join(', ')}]` });
        }
      }
      if (this.adapterStates.has(adapterName)) this.deleteAdapter(adapterName);
      const rt = this.model.rt;
      const targets = [...loraKeys.keys()];
      for (const module of targets) {
        const keys = loraKeys.get(module) ?? {};
        const layer = this.wrap(module);
        const { r, alpha, scale } = moduleHyperparameters(config, module);
        const load = async (key: string): Promise<Tensor> => {
          const t = fromArray(rt, await ckpt.readF32(key), ckpt.info(key).shape, 'f32', { requiresGrad: true, tag: 'weights', name: key.replace(/\.lora_([AB])\.[^.]+\.weight$/, '.lora_$1.weight') });
          return t.keep();
        };
        const weights: LoraWeights = { A: await load(keys.A ?? ''), B: await load(keys.B ?? ''), r, alpha, scale, dropout: config.lora_dropout };
        layer.addAdapter(adapterName, weights);
      }
      const saved = this.makeModulesToSave(config);
      for (const [t, copy] of saved) {
        const key = `${PREFIX}${t}`;
        if (ckpt.has(key)) {
          const data = await ckpt.readF32(key);
          if (data.length !== copy.numel) throw new ShapeMismatchError({ op: `load ${key}`, expected: copy.shape, got: ckpt.info(key).shape });
          const fresh = fromArray(rt, data, copy.shape, 'f32', { tag: 'weights', name: key, requiresGrad: true }).keep();
          copy.dispose();
          saved.set(t, fresh);
        }
      }
      this.adapterStates.set(adapterName, { config, targets, saved });
      this.setAdapter(adapterName);
      for (const name of this.model.linearNames()) {
        const key = `${PREFIX}${name}.bias`;
        if (!ckpt.has(key)) continue;
        const layer = this.model.getLinear(name);
        const holder = (layer instanceof LoraLinear ? layer.base : layer) as { bias?: Tensor | null };
        if (!holder.bias) throw new FormatError({ file: weightsFile, field: `tensor "${key}"`, expected: 'a bias of a linear that has one', got: 'a linear without bias' });
        const data = await ckpt.readF32(key);
        const fresh = fromArray(rt, data, holder.bias.shape, 'f32', { tag: 'weights', name: key, requiresGrad: holder.bias.requiresGrad }).keep();
        holder.bias.dispose();
        holder.bias = fresh;
      }
    } finally {
      await ckpt.close();
    }
  }
}
