// Splits a [rows, cols] tensor into row ranges that each fit one storage binding, for tables
// bigger than maxStorageBufferBindingSize (a 128k x 4096 f32 embedding is 2 GiB).
import { UnsupportedError } from '@peft-ts/errors';
import { DTYPE_BYTES } from '../../../core/dtype.js';
import type { BufferBinding } from '../../../core/runtime.js';
import type { Tensor } from '../../../core/tensor.js';

export interface RowChunk {
  row0: number;
  rows: number;
  binding: BufferBinding;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Row ranges of `t` (rows = shape[0]) whose bindings stay within `maxBytes`; every range but the
 * first starts at a byte offset that is a multiple of the device's binding offset alignment.
 */
export function rowChunks(op: string, t: Tensor, maxBytes: number): RowChunk[] {
  const rows = t.shape[0] ?? 1;
  const cols = t.numel / Math.max(1, rows);
  const total = t.byteLength;
  if (total <= maxBytes || rows <= 1) {
    if (total > maxBytes) throw new UnsupportedError({ what: 'row larger than one storage binding', got: `${total} bytes`, where: op });
    return [{ row0: 0, rows, binding: t.binding() }];
  }
  const rowBytes = cols * DTYPE_BYTES[t.dtype];
  const align = t.rt.gpu.info.limits.minStorageBufferOffsetAlignment;
  const step = align / gcd(rowBytes, align);
  const perChunk = Math.floor(maxBytes / rowBytes / step) * step;
  if (perChunk < 1) {
    throw new UnsupportedError({
      what: 'row size for splitting across storage bindings',
      got: `${rowBytes}-byte rows in groups of ${step} (offset alignment ${align}) exceed ${maxBytes} bytes`,
      where: op,
    });
  }
  const base = t.binding();
  const chunks: RowChunk[] = [];
  for (let row0 = 0; row0 < rows; row0 += perChunk) {
    const n = Math.min(perChunk, rows - row0);
    const size = Math.ceil((n * rowBytes) / 4) * 4;
    chunks.push({ row0, rows: n, binding: { buffer: base.buffer, offset: base.offset + row0 * rowBytes, size } });
  }
  return chunks;
}
