// GPU memory accounting and the buffer pool. WebGPU reports no memory use, so every buffer the
// runtime creates is counted here: live bytes by tag, peak, and what the pool keeps for reuse.
import { OutOfMemoryBudgetError } from '@peft-ts/errors';

export type MemoryTag = 'weights' | 'activations' | 'grads' | 'optimizer' | 'other';
export const MEMORY_TAGS: readonly MemoryTag[] = ['weights', 'activations', 'grads', 'optimizer', 'other'];

export interface MemoryStats {
  /** Bytes held by live tensors (their logical sizes), total and by tag. */
  liveBytes: number;
  byTag: Record<MemoryTag, number>;
  /** Highest liveBytes since creation or the last resetPeak(). */
  peakBytes: number;
  peakByTag: Record<MemoryTag, number>;
  /** Bytes of GPU buffers in existence (live + pooled + staging), i.e. what the device holds. */
  allocatedBytes: number;
  /** Bytes kept in the pool for reuse. */
  pooledBytes: number;
  liveBuffers: number;
}

const emptyTags = (): Record<MemoryTag, number> => ({ weights: 0, activations: 0, grads: 0, optimizer: 0, other: 0 });

/** Buffer sizes are pooled by size class: powers of two split into four steps, at most 25% waste. */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  const step = Math.max(256, p / 4);
  return Math.ceil(bytes / step) * step;
}

export const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x4 /* COPY_SRC */ | 0x8; /* COPY_DST */

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Released while commands using them may still be unsubmitted: reusable after the next submit. */
  private pending: { size: number; buffer: GPUBuffer }[] = [];
  private live = 0;
  private tags = emptyTags();
  private peak = 0;
  private peakTags = emptyTags();
  private allocated = 0;
  private pooled = 0;
  private liveCount = 0;
  /** Optional cap on live bytes (the user's memory budget). */
  budgetBytes = Infinity;
  /** Submits recorded work (set by the runtime), so pending buffers can be reused instead of allocating. */
  flush: (() => void) | undefined;
  private pendingBySize = new Map<number, number>();

  constructor(private readonly device: GPUDevice) {}

  /** A buffer of at least `bytes` for a tensor of `logicalBytes` with `tag`. */
  acquire(bytes: number, tag: MemoryTag, what: string): { buffer: GPUBuffer; size: number } {
    if (this.live + bytes > this.budgetBytes) {
      throw new OutOfMemoryBudgetError({
        what,
        requestedBytes: this.live + bytes,
        budgetBytes: this.budgetBytes,
        detail: `${bytes} bytes more for a ${tag} tensor`,
      });
    }
    const size = sizeClass(bytes);
    if (!this.free.get(size)?.length && (this.pendingBySize.get(size) ?? 0) > 0) this.flush?.();
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.pooled -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
      this.allocated += size;
    }
    this.live += bytes;
    this.tags[tag] += bytes;
    this.liveCount += 1;
    if (this.live > this.peak) this.peak = this.live;
    if (this.tags[tag] > this.peakTags[tag]) this.peakTags[tag] = this.tags[tag];
    return { buffer, size };
  }

  release(buffer: GPUBuffer, size: number, bytes: number, tag: MemoryTag): void {
    this.live -= bytes;
    this.tags[tag] -= bytes;
    this.liveCount -= 1;
    this.pending.push({ size, buffer });
    this.pendingBySize.set(size, (this.pendingBySize.get(size) ?? 0) + 1);
  }

  /** Called after each queue submit: buffers released before it may now be handed out again. */
  afterSubmit(): void {
    for (const { size, buffer } of this.pending) {
      let list = this.free.get(size);
      if (!list) this.free.set(size, (list = []));
      list.push(buffer);
      this.pooled += size;
    }
    this.pending = [];
    this.pendingBySize.clear();
  }

  /** Destroys every pooled buffer (live tensors keep theirs). */
  trim(): void {
    for (const [size, list] of this.free) {
      for (const b of list) b.destroy();
      this.allocated -= size * list.length;
    }
    this.free.clear();
    this.pooled = 0;
  }

  countStaging(bytes: number): void {
    this.allocated += bytes;
  }

  stats(): MemoryStats {
    return {
      liveBytes: this.live,
      byTag: { ...this.tags },
      peakBytes: this.peak,
      peakByTag: { ...this.peakTags },
      allocatedBytes: this.allocated,
      pooledBytes: this.pooled,
      liveBuffers: this.liveCount,
    };
  }

  resetPeak(): void {
    this.peak = this.live;
    this.peakTags = { ...this.tags };
  }
}
