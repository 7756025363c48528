// Streams host-resident optimizer state through two GPU staging slots, double-buffered: chunk
// k+1 is uploaded while chunk k computes, and chunk k is read back while chunk k+1 computes.
import { DeviceError } from '@peft-ts/errors';
import { empty, type Runtime, type Tensor } from '@peft-ts/tensor';
import { fieldBlockBytes, type FieldBase, type StateRegion } from './state-region.js';

/** One chunk to stream: blocks [blockStart, blockStart + blocks) of a region's paged part. */
export interface ChunkJob {
  region: StateRegion;
  /** First block, counted in the region's paged part (0 = the first host block). */
  blockStart: number;
  blocks: number;
  /** Byte offset of each field inside a slot. */
  offsets: readonly number[];
  /** Records the chunk's dispatches, with block 0 of the chunk's state at these slot positions. */
  record(bases: FieldBase[]): void;
}

interface InFlight {
  job: ChunkJob;
  readback: GPUBuffer;
  bytes: number;
  mapped: Promise<void>;
}

/**
 * Ordering: uploads go through queue.writeBuffer right after a submit, so they land after every
 * earlier use of the slot (the readback copy of the chunk two back); the kernels and the copy into
 * the readback buffer are recorded and submitted behind it. The host waits only for a readback.
 */
export class Pager {
  private readonly slots: Tensor[];
  private readonly readback: GPUBuffer[];

  constructor(
    private readonly rt: Runtime,
    readonly slotBytes: number,
  ) {
    this.slots = [0, 1].map((i) => empty(rt, [slotBytes / 4], 'u32', { tag: 'optimizer', name: `optimizer staging slot ${i}` }).keep());
    this.readback = [0, 1].map(() => rt.device.createBuffer({ size: slotBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
  }

  /** Runs the chunks in order; resolves once every chunk's updated state is back in host memory. */
  async stream(jobs: readonly ChunkJob[]): Promise<void> {
    const inFlight: InFlight[] = [];
    try {
      for (let k = 0; k < jobs.length; k++) {
        const job = jobs[k];
        const slot = this.slots[k % 2];
        const readback = this.readback[k % 2];
        if (!job || !slot || !readback) continue;
        this.rt.flush();
        const whole = slot.binding();
        const bases: FieldBase[] = job.region.fields.map((f, i) => {
          const fb = fieldBlockBytes(f);
          const offset = whole.offset + (job.offsets[i] ?? 0);
          const host = job.region.host[i];
          if (host) this.rt.writeBytes({ buffer: whole.buffer, offset, size: job.blocks * fb }, host.subarray(job.blockStart * fb, (job.blockStart + job.blocks) * fb));
          return { buffer: whole.buffer, offset };
        });
        job.record(bases);
        const bytes = this.usedBytes(job);
        this.rt.copy({ buffer: whole.buffer, offset: whole.offset, size: bytes }, { buffer: readback, offset: 0, size: bytes }, bytes);
        this.rt.flush();
        inFlight.push({ job, readback, bytes, mapped: this.rt.mapAsync(readback, GPUMapMode.READ, 0, bytes) });
        // Chunk k now computes on the GPU while chunk k-1 lands on the host.
        if (inFlight.length > 1) await this.land(inFlight.shift());
      }
      while (inFlight.length > 0) await this.land(inFlight.shift());
    } catch (error) {
      // Leave no readback buffer mapped, or the next step could not copy into it.
      await Promise.allSettled(inFlight.map((f) => f.mapped));
      for (const b of this.readback) if (b.mapState === 'mapped') b.unmap();
      throw error;
    }
  }

  private usedBytes(job: ChunkJob): number {
    const fields = job.region.fields;
    const last = fields.length - 1;
    const lastField = fields[last];
    if (!lastField) return 0;
    return (job.offsets[last] ?? 0) + Math.ceil((job.blocks * fieldBlockBytes(lastField)) / 4) * 4;
  }

  /** Waits for a chunk's readback and copies its updated state into host memory. */
  private async land(f: InFlight | undefined): Promise<void> {
    if (!f) return;
    try {
      await f.mapped;
    } catch (cause) {
      this.rt.gpu.throwIfFailed();
      throw new DeviceError(`reading paged optimizer state back failed: ${String(cause)}`, { cause });
    }
    const range = new Uint8Array(f.readback.getMappedRange(0, f.bytes));
    f.job.region.fields.forEach((field, i) => {
      const fb = fieldBlockBytes(field);
      const at = f.job.offsets[i] ?? 0;
      f.job.region.host[i]?.set(range.subarray(at, at + f.job.blocks * fb), f.job.blockStart * fb);
    });
    f.readback.unmap();
  }

  dispose(): void {
    for (const t of this.slots) t.dispose();
    for (const b of this.readback) b.destroy();
  }
}
