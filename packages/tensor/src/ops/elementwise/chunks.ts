// Splits a dispatch over rows (or elements) into pieces whose bindings each fit the device's
// per-binding limit, with every piece starting at an offset the device accepts.
import { UnsupportedError } from '@peft-ts/errors';
import type { BufferBinding, Runtime } from '../../core/runtime.js';
import type { Tensor } from '../../core/tensor.js';

export interface RowChunk {
  /** First row of the piece. */
  start: number;
  /** Rows in the piece. */
  count: number;
}

function gcd(a: number, b: number): number {
  let x = a;
  let y = b;
  while (y !== 0) [x, y] = [y, x % y];
  return x;
}

/**
 * Pieces of `rows` rows such that for each chunked buffer (bytes per row in `rowBytes`) a piece
 * binds at most `rt.maxBindingBytes` and starts on the storage offset alignment. One piece when
 * everything fits. Throws UnsupportedError when a single aligned group of rows is already too big.
 */
export function planRowChunks(rt: Runtime, op: string, rows: number, rowBytes: readonly number[]): RowChunk[] {
  const maxBytes = rt.maxBindingBytes;
  const widest = Math.max(1, ...rowBytes);
  if (rows * widest <= maxBytes) return [{ start: 0, count: rows }];
  const align = rt.gpu.info.limits.minStorageBufferOffsetAlignment || 256;
  // A piece may start at row r only where r * bytes is a multiple of the alignment for every buffer.
  let unit = 1;
  for (const b of rowBytes) {
    const need = align / gcd(align, b);
    unit = (unit * need) / gcd(unit, need);
  }
  const per = Math.floor(maxBytes / widest / unit) * unit;
  if (per === 0) {
    throw new UnsupportedError({
      what: 'row size for one storage binding',
      got: `${unit} row(s) of ${widest} bytes`,
      where: `${op}: the device binds at most ${maxBytes} bytes`,
    });
  }
  const out: RowChunk[] = [];
  for (let start = 0; start < rows; start += per) out.push({ start, count: Math.min(per, rows - start) });
  return out;
}

/** The binding of rows [start, start + count) of `t`, where one row takes `rowBytes` bytes. */
export function rowsBinding(t: Tensor, chunk: RowChunk, rowBytes: number): BufferBinding {
  const whole = t.binding();
  const offset = chunk.start * rowBytes;
  const size = Math.max(4, Math.ceil((chunk.count * rowBytes) / 4) * 4);
  return { buffer: whole.buffer, offset: whole.offset + offset, size: Math.min(size, whole.size - offset) };
}

/** Throws UnsupportedError when a tensor bound whole would pass the per-binding limit. */
export function assertBindable(rt: Runtime, op: string, t: Tensor): void {
  if (t.byteLength > rt.maxBindingBytes) {
    throw new UnsupportedError({
      what: 'tensor size for one storage binding',
      got: `[${t.shape.join(', ')}] ${t.dtype} (${t.byteLength} bytes)`,
      where: `${op}: the device binds at most ${rt.maxBindingBytes} bytes`,
    });
  }
}
