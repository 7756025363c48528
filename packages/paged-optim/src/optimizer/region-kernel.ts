// The contract between the optimizer core and one update kernel: its state fields, its WGSL for
// a number of slots, and the per-parameter scalars it reads from the work-item table.
import type { BufferBinding, KernelSpec, Tensor } from '@peft-ts/tensor';
import type { StateField } from '../paging/state-region.js';

/** One parameter's bookkeeping inside an optimizer. */
export interface ParamEntry {
  param: Tensor;
  /** Position over all groups, as in a PyTorch optimizer state dict. */
  index: number;
  group: number;
  /** Updates applied so far (PyTorch's per-parameter state["step"]). */
  step: number;
  /** Region (update kernel) the parameter belongs to, and its first block there. */
  region: number;
  blockStart: number;
  blocks: number;
}

export interface ItemParams {
  scalars: number[];
  flags: number;
}

/**
 * Bindings of an update kernel with n slots: P0..Pn-1 (read_write), G0..Gn-1 (read), one
 * binding per state field, META, then `extraBindings()`. Uniforms: itemBase, nitems, totalWG,
 * then one word base per state field.
 */
export interface RegionKernel<G> {
  readonly fields: readonly StateField[];
  spec(slots: number): KernelSpec;
  extraBindings(): BufferBinding[];
  /** Storage bindings the kernel uses besides the slots (state fields, META, extras). */
  readonly fixedBindings: number;
  /** GPU bytes the kernel keeps besides state (tagged 'optimizer'). */
  readonly fixedBytes: number;
  /** Scalars for a parameter's items this step (its `step` already counts this update). */
  itemParams(entry: ParamEntry, group: G): ItemParams;
  dispose(): void;
}
