// The optimizer core shared by AdamW and SGD: parameter groups, per-parameter steps, state
// placement (resident or paged), multi-tensor dispatch of the update kernels, save and load.
import { DTypeError, FormatError, PeftError, ShapeMismatchError, UnsupportedError } from '@peft-ts/errors';
import type { FileTree, TensorSource, WritableTree } from '@peft-ts/safetensors';
import { empty, fillInPlace, grid1d, Tensor, type KernelSpec, type Runtime } from '@peft-ts/tensor';
import { readStateFiles, writeStateFiles, type JsonValue } from '../io/state-file.js';
import { BLOCK, ITEM_WORDS, encodeItems, operandWindow, packItems, splitRange, type PackedDispatch, type WorkItem } from '../multi-tensor/work-items.js';
import { Pager, type ChunkJob } from '../paging/pager.js';
import { planMemory, type MemoryPlan, type PagingOptions } from '../paging/plan.js';
import { fieldBlockBytes, fieldWindows, StateRegion, type FieldBase, type StateField } from '../paging/state-region.js';
import type { ParamEntry, RegionKernel } from './region-kernel.js';

/** Settings every parameter group has. */
export interface GroupBase {
  params: readonly Tensor[];
  lr: number;
}

/** Parameters as a plain list (one group) or as groups that override the defaults. */
export type ParamsInput<G extends GroupBase> = readonly Tensor[] | readonly ({ params: readonly Tensor[] } & Partial<Omit<G, 'params'>>)[];

export interface OptimizerOptions {
  /** Keep optimizer state within a GPU byte budget, streaming the rest from host memory. */
  paging?: PagingOptions;
}

/** Where the optimizer's state lives, in bytes. */
export interface StateBytes {
  /** State kept in GPU memory. */
  resident: number;
  /** State kept in host memory and streamed through the GPU during step(). */
  host: number;
  /** The two staging slots paging streams through (0 without paging). */
  staging: number;
  /** Other GPU buffers the optimizer keeps (e.g. the 8-bit code maps). */
  other: number;
  /** All GPU bytes tagged 'optimizer' by this optimizer: resident + staging + other. */
  gpu: number;
}

interface PlannedDispatch {
  region: number;
  d: PackedDispatch;
  itemBase: number;
  /** Per item: word offsets of its first element inside the P and G binding windows. */
  windows: { p: ReturnType<typeof operandWindow>; g: ReturnType<typeof operandWindow> }[];
}

interface PlannedChunk {
  region: number;
  blockStart: number;
  blocks: number;
  dispatches: PlannedDispatch[];
}

const MAX_SLOTS = 8;
const MAX_WORKGROUPS = 65535 * 65535;

export abstract class Optimizer<G extends GroupBase> {
  readonly rt: Runtime;
  readonly paramGroups: G[];
  protected readonly entries: ParamEntry[];
  private readonly paging: PagingOptions | undefined;
  private kernels: RegionKernel<G>[] | null = null;
  private regions: StateRegion[] | null = null;
  private plan: MemoryPlan | null = null;
  private pager: Pager | null = null;
  private meta: Tensor | null = null;
  private readonly specs = new Map<string, KernelSpec>();
  private busy = false;
  private disposed = false;

  protected constructor(
    readonly name: string,
    params: ParamsInput<G>,
    defaults: Omit<G, 'params'>,
    options: OptimizerOptions,
  ) {
    type GroupInput = { params: readonly Tensor[] } & Partial<Omit<G, 'params'>>;
    const groups: readonly GroupInput[] = params.length > 0 && params[0] instanceof Tensor ? [{ params: params as readonly Tensor[] } as GroupInput] : (params as readonly GroupInput[]);
    if (groups.length === 0 || groups.every((g) => g.params.length === 0)) {
      throw new PeftError('EMPTY_PARAMS', `${name}: got an empty parameter list`);
    }
    const first = groups.find((g) => g.params.length > 0)?.params[0];
    if (!first) throw new PeftError('EMPTY_PARAMS', `${name}: got an empty parameter list`);
    this.rt = first.rt;
    const seen = new Set<Tensor>();
    this.entries = [];
    this.paramGroups = groups.map((g, gi) => {
      if (!Array.isArray(g.params)) throw new PeftError('BAD_PARAM_GROUP', `${name}: parameter group ${gi} has no params array`);
      for (const p of g.params) {
        if (!(p instanceof Tensor)) throw new PeftError('BAD_PARAM', `${name}: parameter group ${gi} holds something that is not a Tensor`);
        p.assertAlive(`${name} parameter`);
        if (p.dtype !== 'f32') throw new DTypeError({ op: `${name} parameter ${this.entries.length}${p.name ? ` (${p.name})` : ''}`, expected: 'f32', got: p.dtype });
        if (p.rt !== this.rt) throw new PeftError('MIXED_RUNTIMES', `${name}: parameters come from different runtimes`);
        if (seen.has(p)) throw new PeftError('DUPLICATE_PARAM', `${name}: parameter ${p.toString()} appears more than once`);
        seen.add(p);
        this.entries.push({ param: p, index: this.entries.length, group: gi, step: 0, region: 0, blockStart: 0, blocks: Math.ceil(p.numel / BLOCK) });
      }
      const group = { ...defaults, ...g, params: Array.from<Tensor>(g.params) } as unknown as G;
      this.checkGroup(group, gi);
      return group;
    });
    this.paging = options.paging;
  }

  /** Update kernels, one per state region. Called once, on first use. */
  protected abstract createKernels(): RegionKernel<G>[];
  /** Region (index into createKernels()) a parameter's state lives in. */
  protected abstract regionOf(entry: ParamEntry): number;
  /** Throws on invalid group settings (negative lr, betas outside [0, 1), ...). */
  protected abstract checkGroup(group: G, index: number): void;
  /** A group's settings for the state file. */
  protected abstract groupJson(group: G): Record<string, JsonValue>;
  /** Restores a group's settings from the state file (validated). */
  protected abstract applyGroupJson(group: G, json: Record<string, JsonValue>, file: string, index: number): void;
  /** Optimizer-wide settings that must match when loading state (e.g. 8-bit or not). */
  protected abstract settingsJson(): Record<string, JsonValue>;

  /** The parameters, in state-file order. */
  get params(): Tensor[] {
    return this.entries.map((e) => e.param);
  }

  /** Updates applied to a parameter so far. */
  stepCount(param: Tensor): number {
    return this.entryOf(param).step;
  }

  private entryOf(param: Tensor): ParamEntry {
    const e = this.entries.find((x) => x.param === param);
    if (!e) throw new PeftError('UNKNOWN_PARAM', `${this.name}: ${param.toString()} is not one of this optimizer's parameters`);
    return e;
  }

  /** Sets gradients to null (default, as PyTorch does) or fills them with zeros. */
  zeroGrad(setToNone = true): void {
    for (const { param } of this.entries) {
      if (!param.grad) continue;
      if (setToNone) {
        param.grad.dispose();
        param.grad = null;
      } else fillInPlace(param.grad, 0);
    }
  }

  private assertUsable(what: string): void {
    if (this.disposed) throw new PeftError('DISPOSED', `${this.name}.${what}: the optimizer was disposed`);
    if (this.busy) throw new PeftError('STEP_IN_PROGRESS', `${this.name}.${what}: the previous step() has not finished (await it first)`);
  }

  /** Plans placement and allocates zeroed state, once. */
  private ensureState(): { kernels: RegionKernel<G>[]; regions: StateRegion[]; plan: MemoryPlan } {
    if (this.kernels && this.regions && this.plan) return { kernels: this.kernels, regions: this.regions, plan: this.plan };
    const kernels = this.createKernels();
    const regions: StateRegion[] = [];
    let plan: MemoryPlan;
    try {
      const totals = kernels.map(() => 0);
      for (const e of this.entries) {
        e.region = this.regionOf(e);
        e.blockStart = totals[e.region] ?? 0;
        totals[e.region] = e.blockStart + e.blocks;
      }
      const fixed = kernels.reduce((s, k) => s + k.fixedBytes, 0);
      plan = planMemory(
        kernels.map((k, i) => ({ fields: k.fields, totalBlocks: totals[i] ?? 0 })),
        fixed,
        this.paging,
        this.rt.maxBindingBytes,
      );
      kernels.forEach((k, i) => regions.push(new StateRegion(this.rt, k.fields, totals[i] ?? 0, plan.residentBlocks[i] ?? 0)));
      if (plan.slotBytes > 0) this.pager = new Pager(this.rt, plan.slotBytes);
    } catch (error) {
      // A refused plan or allocation leaves nothing behind; a later call plans again.
      for (const r of regions) r.dispose();
      for (const k of kernels) k.dispose();
      throw error;
    }
    this.kernels = kernels;
    this.regions = regions;
    this.plan = plan;
    return { kernels, regions, plan };
  }

  /** Byte counts of the optimizer's state (planned on first use; zeros before). */
  stateBytes(): StateBytes {
    const resident = this.regions?.reduce((s, r) => s + r.residentBytes, 0) ?? 0;
    const host = this.regions?.reduce((s, r) => s + r.hostBytes, 0) ?? 0;
    const staging = 2 * (this.plan?.slotBytes ?? 0);
    const other = this.kernels?.reduce((s, k) => s + k.fixedBytes, 0) ?? 0;
    return { resident, host, staging, other, gpu: resident + staging + other };
  }

  /** True when some state lives in host memory and streams through the GPU during step(). */
  get isPaged(): boolean {
    return (this.plan?.slotBytes ?? 0) > 0;
  }

  /**
   * Applies one update to every parameter that has a gradient (parameters whose `grad` is null are
   * skipped, and their step count does not advance, as in PyTorch). With all state resident the
   * work is only recorded on the GPU queue and nothing is read back; the promise resolves at once.
   * With paging, the promise resolves once every streamed chunk's updated state is back in host
   * memory.
   */
  async step(): Promise<void> {
    this.assertUsable('step()');
    const active = this.activeEntries();
    if (active.length === 0) return;
    this.busy = true;
    try {
      const { kernels, regions, plan } = this.ensureState();
      for (const e of active) e.step += 1;
      let planned: ReturnType<typeof this.planStep>;
      try {
        planned = this.planStep(active, kernels, regions, plan);
      } catch (error) {
        // Nothing was recorded: the step did not happen.
        for (const e of active) e.step -= 1;
        throw error;
      }
      const { resident, chunks, items } = planned;
      const meta = this.writeMeta(resident, chunks, items);
      for (const pd of resident) {
        const region = regions[pd.region];
        if (!region) continue;
        const bases = region.fields.length > 0 && region.residentBlocks > 0 ? region.residentBases() : [];
        this.record(pd, kernels, region, bases, meta);
      }
      if (chunks.length > 0 && this.pager) {
        const jobs: ChunkJob[] = chunks.map((c) => {
          const region = regions[c.region];
          if (!region) throw new PeftError('INTERNAL', `${this.name}: missing state region ${c.region}`);
          return {
            region,
            blockStart: c.blockStart,
            blocks: c.blocks,
            offsets: plan.slotOffsets[c.region] ?? [],
            record: (bases: FieldBase[]) => {
              for (const pd of c.dispatches) this.record(pd, kernels, region, bases, meta);
            },
          };
        });
        await this.pager.stream(jobs);
      }
    } finally {
      this.busy = false;
    }
  }

  private activeEntries(): ParamEntry[] {
    const active: ParamEntry[] = [];
    for (const e of this.entries) {
      const g = e.param.grad;
      if (!g) continue;
      e.param.assertAlive(`${this.name}.step() parameter`);
      g.assertAlive(`${this.name}.step() gradient`);
      const what = `${this.name}.step() gradient of parameter ${e.index}${e.param.name ? ` (${e.param.name})` : ''}`;
      if (g.dtype !== 'f32') throw new DTypeError({ op: what, expected: 'f32', got: g.dtype });
      if (g.numel !== e.param.numel) throw new ShapeMismatchError({ op: what, expected: e.param.shape, got: g.shape });
      if (g.binding().buffer === e.param.binding().buffer) throw new PeftError('GRAD_ALIASES_PARAM', `${what}: the gradient shares its buffer with the parameter`);
      active.push(e);
    }
    return active;
  }

  private slotsFor(kernel: RegionKernel<G>): number {
    const limit = this.rt.gpu.info.limits.maxStorageBuffersPerShaderStage;
    const slots = Math.floor((limit - kernel.fixedBindings) / 2);
    if (slots < 1) {
      throw new UnsupportedError({ what: 'maxStorageBuffersPerShaderStage', got: limit, where: this.name, supported: [`at least ${kernel.fixedBindings + 2}`] });
    }
    return Math.min(MAX_SLOTS, slots);
  }

  private planStep(active: readonly ParamEntry[], kernels: RegionKernel<G>[], regions: StateRegion[], plan: MemoryPlan): { resident: PlannedDispatch[]; chunks: PlannedChunk[]; items: number } {
    const align = this.rt.gpu.info.limits.minStorageBufferOffsetAlignment;
    const maxBinding = this.rt.maxBindingBytes;
    const maxItemElements = Math.floor((maxBinding - align) / 4);
    let items = 0;
    const resident: PlannedDispatch[] = [];
    const chunks: PlannedChunk[] = [];

    const itemsIn = (entries: readonly ParamEntry[], kernel: RegionKernel<G>, lo: number, hi: number, origin: number): WorkItem[] => {
      const out: WorkItem[] = [];
      for (const e of entries) {
        const b0 = Math.max(lo, e.blockStart);
        const b1 = Math.min(hi, e.blockStart + e.blocks);
        if (b0 >= b1) continue;
        const grad = e.param.grad;
        const group = this.paramGroups[e.group];
        if (!grad || !group) continue;
        const { scalars, flags } = kernel.itemParams(e, group);
        const start = (b0 - e.blockStart) * BLOCK;
        const end = Math.min((b1 - e.blockStart) * BLOCK, e.param.numel);
        for (const [s, count] of splitRange(start, end - start, maxItemElements, BLOCK)) {
          out.push({
            operands: [e.param, grad],
            start: s,
            count,
            blocks: Math.ceil(count / BLOCK),
            stateBlock: e.blockStart + s / BLOCK - origin,
            flags,
            scalars,
          });
        }
      }
      return out;
    };

    const pack = (region: number, kernel: RegionKernel<G>, list: WorkItem[]): PlannedDispatch[] => {
      const widest = Math.max(4, ...kernel.fields.map(fieldBlockBytes));
      const dispatches = packItems(list, {
        maxItems: this.slotsFor(kernel),
        maxStateBlocks: Math.max(1, Math.floor((maxBinding - align) / widest)),
        maxWorkgroups: MAX_WORKGROUPS,
      });
      return dispatches.map((d) => {
        const pd: PlannedDispatch = {
          region,
          d,
          itemBase: items,
          windows: d.items.map((it) => {
            const [p, g] = it.operands;
            if (!p || !g) throw new PeftError('INTERNAL', 'work item without parameter and gradient');
            return { p: operandWindow(p, it.start, it.count, align), g: operandWindow(g, it.start, it.count, align) };
          }),
        };
        items += d.items.length;
        return pd;
      });
    };

    kernels.forEach((kernel, r) => {
      const region = regions[r];
      if (!region) return;
      const entries = active.filter((e) => e.region === r);
      if (entries.length === 0) return;
      // A region without state has nothing to page: all of it is updated in place.
      const residentEnd = region.fields.length > 0 ? region.residentBlocks : region.totalBlocks;
      resident.push(...pack(r, kernel, itemsIn(entries, kernel, 0, residentEnd, 0)));
      const chunk = plan.chunkBlocks[r] ?? 0;
      if (region.fields.length === 0 || chunk === 0) return;
      for (let c0 = region.residentBlocks; c0 < region.totalBlocks; c0 += chunk) {
        const c1 = Math.min(region.totalBlocks, c0 + chunk);
        const list = itemsIn(entries, kernel, c0, c1, c0);
        if (list.length === 0) continue;
        chunks.push({ region: r, blockStart: c0 - region.residentBlocks, blocks: c1 - c0, dispatches: pack(r, kernel, list) });
      }
    });
    return { resident, chunks, items };
  }

  /** Uploads the work-item table of the whole step once, before any of its dispatches. */
  private writeMeta(resident: readonly PlannedDispatch[], chunks: readonly PlannedChunk[], items: number): Tensor {
    const words = new Uint32Array(Math.max(1, items) * ITEM_WORDS);
    const all = [...resident, ...chunks.flatMap((c) => c.dispatches)];
    for (const pd of all) encodeItems(pd.d, pd.windows.map((w) => [w.p.base, w.g.base]), words, pd.itemBase);
    if (!this.meta || this.meta.numel < words.length) {
      this.meta?.dispose();
      const capacity = Math.max(words.length, 4 * ITEM_WORDS);
      this.meta = empty(this.rt, [capacity], 'u32', { tag: 'other', name: `${this.name} work items` }).keep();
    }
    this.rt.writeBytes(this.meta.binding(), words);
    return this.meta;
  }

  private specFor(region: number, kernel: RegionKernel<G>, slots: number): KernelSpec {
    const key = `${region}:${slots}`;
    let spec = this.specs.get(key);
    if (!spec) {
      spec = kernel.spec(slots);
      this.specs.set(key, spec);
    }
    return spec;
  }

  private record(pd: PlannedDispatch, kernels: RegionKernel<G>[], region: StateRegion, bases: FieldBase[], meta: Tensor): void {
    const kernel = kernels[pd.region];
    if (!kernel) return;
    const n = pd.d.items.length;
    const align = this.rt.gpu.info.limits.minStorageBufferOffsetAlignment;
    const state = region.fields.length > 0 ? fieldWindows(bases, region.fields, pd.d.stateStart, pd.d.stateEnd, align) : [];
    // Every dispatch binds all slots (spares past the n that hold work), so one pipeline serves any n.
    const slots = this.slotsFor(kernel);
    const spares = (kind: 'read' | 'read_write') => Array.from({ length: slots - n }, (_, k) => this.rt.spareBinding(kind, k));
    const bindings = [
      ...pd.windows.map((w) => w.p.binding),
      ...spares('read_write'),
      ...pd.windows.map((w) => w.g.binding),
      ...spares('read'),
      ...state.map((w) => w.binding),
      meta.binding(),
      ...kernel.extraBindings(),
    ];
    const uniforms = [pd.itemBase, n, pd.d.totalWorkgroups, ...state.map((w) => w.base)];
    this.rt.dispatch(this.specFor(pd.region, kernel, slots), bindings, uniforms, grid1d(pd.d.totalWorkgroups, 1));
  }

  /**
   * A parameter's state, unpadded, under PyTorch/bitsandbytes names (e.g. exp_avg and exp_avg_sq
   * as Float32Arrays of the parameter's size; 8-bit state1/state2 codes and absmax1/absmax2).
   * Reads back from the GPU.
   */
  async readState(param: Tensor): Promise<Record<string, Float32Array | Uint8Array>> {
    this.assertUsable('readState()');
    const entry = this.entryOf(param);
    const { regions } = this.ensureState();
    const region = regions[entry.region];
    if (!region) return {};
    const all = await region.readAll();
    const out: Record<string, Float32Array | Uint8Array> = {};
    region.fields.forEach((f, i) => {
      const bytes = all[i];
      if (bytes) out[f.name] = unpadField(f, bytes, entry);
    });
    return out;
  }

  /**
   * Saves the state as `optimizer.safetensors` (tensors `state.<i>.<name>` per parameter index i)
   * and `optimizer.json` (settings, groups with their hyperparameters, step counts) in `out`: a
   * directory writer, OPFS, or a memory tree for the bytes. Each file is one write (atomic where
   * the medium allows). Reads the state back from the GPU. `saveOptimizerState(optimizer, dir)`
   * of `@peft-ts/paged-optim/node` writes to a directory.
   */
  async saveStateTo(out: WritableTree): Promise<void> {
    this.assertUsable('saveStateTo()');
    const { regions } = this.ensureState();
    const snapshots = await Promise.all(regions.map((r) => r.readAll()));
    const tensors: TensorSource[] = [];
    const state: Record<string, { step: number }> = {};
    for (const e of this.entries) {
      state[String(e.index)] = { step: e.step };
      if (e.step === 0) continue;
      const region = regions[e.region];
      region?.fields.forEach((f, i) => {
        const bytes = snapshots[e.region]?.[i];
        if (!bytes) return;
        const data = unpadField(f, bytes, e);
        tensors.push({ name: `state.${e.index}.${f.name}`, dtype: data instanceof Float32Array ? 'F32' : 'U8', shape: fieldShape(f, e), data });
      });
    }
    let at = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const params = g.params.map(() => at++);
      return { ...this.groupJson(g), params };
    });
    await writeStateFiles(out, tensors, { optimizer: this.name, settings: this.settingsJson(), paramGroups, state });
  }

  /**
   * Loads state saved by saveStateTo() for the same parameters (same groups and shapes) from the
   * tree holding its two files: state tensors, step counts and each group's hyperparameters. A
   * tensor whose shape or dtype does not fit its parameter fails with a FormatError naming it.
   */
  async loadStateFrom(tree: FileTree): Promise<void> {
    this.assertUsable('loadStateFrom()');
    const { json, tensors, jsonPath } = await readStateFiles(tree);
    try {
      if (json.optimizer !== this.name) throw new FormatError({ file: jsonPath, field: 'optimizer', expected: JSON.stringify(this.name), got: json.optimizer });
      const settings = this.settingsJson();
      for (const [k, v] of Object.entries(settings)) {
        if (JSON.stringify(json.settings[k]) !== JSON.stringify(v)) {
          throw new FormatError({ file: jsonPath, field: `settings.${k}`, expected: JSON.stringify(v), got: json.settings[k] ?? 'nothing' });
        }
      }
      if (json.paramGroups.length !== this.paramGroups.length) {
        throw new FormatError({ file: jsonPath, field: 'paramGroups', expected: `${this.paramGroups.length} groups`, got: `${json.paramGroups.length} groups` });
      }
      let at = 0;
      json.paramGroups.forEach((g, gi) => {
        const mine = this.paramGroups[gi];
        const expected = mine?.params.map(() => at++) ?? [];
        if (JSON.stringify(g.params) !== JSON.stringify(expected)) {
          throw new FormatError({ file: jsonPath, field: `paramGroups[${gi}].params`, expected: JSON.stringify(expected), got: JSON.stringify(g.params) });
        }
      });
      const { regions } = this.ensureState();
      const data = regions.map((r) => r.fields.map((f) => new Uint8Array(r.totalBlocks * fieldBlockBytes(f))));
      const steps = this.entries.map((e) => {
        const s = json.state[String(e.index)];
        return s ? s.step : 0;
      });
      for (const e of this.entries) {
        if ((steps[e.index] ?? 0) === 0) continue;
        const region = regions[e.region];
        if (!region) continue;
        for (const [i, f] of region.fields.entries()) {
          const name = `state.${e.index}.${f.name}`;
          if (!tensors.has(name)) throw new FormatError({ file: tensors.path, field: `tensor "${name}"`, expected: `the ${f.name} state of parameter ${e.index}`, got: 'no such tensor' });
          const info = tensors.info(name);
          const shape = fieldShape(f, e);
          const dtype = f.elementBytes === 1 ? 'U8' : 'F32';
          if (info.dtype !== dtype || JSON.stringify(info.shape) !== JSON.stringify(shape)) {
            throw new FormatError({
              file: tensors.path,
              field: `tensor "${name}"`,
              expected: `${dtype} [${shape.join(', ')}] for parameter ${e.index}${e.param.name ? ` (${e.param.name})` : ''} of shape [${e.param.shape.join(', ')}]`,
              got: `${info.dtype} [${info.shape.join(', ')}]`,
            });
          }
          const bytes = await tensors.readBytes(name);
          data[e.region]?.[i]?.set(bytes, e.blockStart * fieldBlockBytes(f));
        }
      }
      // Everything checked: now change the optimizer.
      json.paramGroups.forEach((g, gi) => {
        const mine = this.paramGroups[gi];
        if (mine) this.applyGroupJson(mine, g, jsonPath, gi);
      });
      regions.forEach((r, i) => r.writeAll(data[i] ?? []));
      for (const e of this.entries) e.step = steps[e.index] ?? 0;
    } finally {
      await tensors.close();
    }
  }

  /** Frees the optimizer's GPU buffers. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const r of this.regions ?? []) r.dispose();
    for (const k of this.kernels ?? []) k.dispose();
    this.pager?.dispose();
    this.meta?.dispose();
    this.regions = null;
    this.kernels = null;
    this.pager = null;
    this.meta = null;
  }
}

/** The unpadded values of one field for one parameter, out of the region's padded bytes. */
function unpadField(f: StateField, bytes: Uint8Array, e: ParamEntry): Float32Array | Uint8Array {
  const fb = fieldBlockBytes(f);
  const start = e.blockStart * fb;
  if (f.elementBytes === 1) return bytes.slice(start, start + e.param.numel);
  const count = f.elementBytes === 4 ? e.param.numel : e.blocks;
  return new Float32Array(bytes.slice(start, start + count * 4).buffer);
}

function fieldShape(f: StateField, e: ParamEntry): number[] {
  return f.elementBytes > 0 ? [...e.param.shape] : [e.blocks];
}

