// One flat optimizer-state space (a partition of the parameters sharing one update kernel), laid
// out in 256-element blocks: a resident prefix in GPU tensors, the rest in host memory.
import { DeviceError } from '@peft-ts/errors';
import { empty, type BufferBinding, type Runtime, type Tensor } from '@peft-ts/tensor';
import { BLOCK } from '../multi-tensor/work-items.js';

/** One state tensor of the optimizer, e.g. Adam's exp_avg, or an 8-bit state's per-block absmax. */
export interface StateField {
  /** Name in saved state files (PyTorch / bitsandbytes state-dict names). */
  name: string;
  /** Bytes per element (4 for f32 state, 1 for 8-bit codes, 0 for per-block values). */
  elementBytes: number;
  /** Bytes per 256-element block for per-block values (4 for an f32 absmax), else 0. */
  blockBytes: number;
}

export function fieldBlockBytes(f: StateField): number {
  return f.elementBytes * BLOCK + f.blockBytes;
}

export function blockBytesOf(fields: readonly StateField[]): number {
  return fields.reduce((s, f) => s + fieldBlockBytes(f), 0);
}

/** A state binding window and the word index of its first block inside the window. */
export interface StateWindow {
  binding: BufferBinding;
  base: number;
}

/** Where block 0 of one field lies in a GPU buffer. */
export interface FieldBase {
  buffer: GPUBuffer;
  offset: number;
}

/** Binding windows over blocks [b0, b1) of every field, aligned as bindings must be. */
export function fieldWindows(bases: readonly FieldBase[], fields: readonly StateField[], b0: number, b1: number, align: number): StateWindow[] {
  return fields.map((f, i) => {
    const base = bases[i];
    if (!base) throw new DeviceError(`optimizer state ${f.name}: no buffer to bind`);
    const fb = fieldBlockBytes(f);
    const byteStart = base.offset + b0 * fb;
    const offset = byteStart - (byteStart % align);
    const size = Math.ceil((byteStart - offset + (b1 - b0) * fb) / 4) * 4;
    return { binding: { buffer: base.buffer, offset, size: Math.max(4, size) }, base: (byteStart - offset) / 4 };
  });
}

export class StateRegion {
  readonly resident: Tensor[];
  readonly host: Uint8Array[];

  constructor(
    readonly rt: Runtime,
    readonly fields: readonly StateField[],
    readonly totalBlocks: number,
    readonly residentBlocks: number,
  ) {
    this.resident = [];
    if (residentBlocks > 0) {
      try {
        for (const f of fields) {
          const bytes = residentBlocks * fieldBlockBytes(f);
          const t = empty(rt, [bytes / 4], 'u32', { tag: 'optimizer', name: `optimizer state ${f.name}` }).keep();
          rt.clear(t.binding(), bytes);
          this.resident.push(t);
        }
      } catch (error) {
        this.dispose();
        throw error;
      }
    }
    this.host = fields.map((f) => new Uint8Array((totalBlocks - residentBlocks) * fieldBlockBytes(f)));
  }

  get pagedBlocks(): number {
    return this.totalBlocks - this.residentBlocks;
  }

  /** GPU bytes of the resident prefix. */
  get residentBytes(): number {
    return this.residentBlocks * blockBytesOf(this.fields);
  }

  get hostBytes(): number {
    return this.pagedBlocks * blockBytesOf(this.fields);
  }

  /** Where block 0 of each resident field starts. */
  residentBases(): FieldBase[] {
    return this.fields.map((f, i) => {
      const t = this.resident[i];
      if (!t) throw new DeviceError(`optimizer state ${f.name}: no resident blocks to bind`);
      const whole = t.binding();
      return { buffer: whole.buffer, offset: whole.offset };
    });
  }

  /** Every field's bytes over all blocks (resident ones read back from the GPU). */
  async readAll(): Promise<Uint8Array[]> {
    return Promise.all(
      this.fields.map(async (f, i) => {
        const fb = fieldBlockBytes(f);
        const out = new Uint8Array(this.totalBlocks * fb);
        const t = this.resident[i];
        if (t) out.set(new Uint8Array(await this.rt.readBytes(t.binding(), this.residentBlocks * fb)), 0);
        out.set(this.host[i] ?? new Uint8Array(0), this.residentBlocks * fb);
        return out;
      }),
    );
  }

  /** Replaces every field's bytes over all blocks (uploads the resident prefix in order). */
  writeAll(data: readonly Uint8Array[]): void {
    this.fields.forEach((f, i) => {
      const fb = fieldBlockBytes(f);
      const bytes = data[i];
      if (bytes?.byteLength !== this.totalBlocks * fb) {
        throw new DeviceError(`optimizer state ${f.name}: expected ${this.totalBlocks * fb} bytes, got ${bytes?.byteLength ?? 0}`);
      }
      const t = this.resident[i];
      if (t && this.residentBlocks > 0) this.rt.writeBytes(t.binding(), bytes.subarray(0, this.residentBlocks * fb));
      this.host[i]?.set(bytes.subarray(this.residentBlocks * fb));
    });
  }

  dispose(): void {
    for (const t of this.resident) t.dispose();
    this.resident.length = 0;
  }
}
