// Conversions between f32 and the ggml tensor encodings (f32, f16, bf16, q8_0), on the host.
import { bf16ToF32, f16ToF32, f16ToF32Scalar, f32ToBf16, f32ToF16, f32ToF16Scalar } from '@peft-ts/safetensors';
import { UnsupportedError } from '@peft-ts/errors';
import type { GgmlTypeName } from './constants.js';

const Q8_BLOCK = 32;

/** Encodes row-major f32 values; for q8_0 the innermost dimension `rowLength` must be a multiple of 32. */
export function encodeTensor(values: Float32Array, type: GgmlTypeName, rowLength: number = values.length): Uint8Array {
  switch (type) {
    case 'F32':
      return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
    case 'F16':
      return new Uint8Array(f32ToF16(values).buffer);
    case 'BF16':
      return new Uint8Array(f32ToBf16(values).buffer);
    case 'Q8_0':
      if (rowLength % Q8_BLOCK !== 0) throw new UnsupportedError({ what: 'q8_0 row length (must be a multiple of 32)', got: rowLength });
      return quantizeQ8_0(values);
  }
}

/** Blocks of 32: scale d = max|x| / 127 stored as f16, then round(x / d) as int8. */
function quantizeQ8_0(values: Float32Array): Uint8Array {
  const blocks = values.length / Q8_BLOCK;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b += 1) {
    let amax = 0;
    for (let i = 0; i < Q8_BLOCK; i += 1) amax = Math.max(amax, Math.abs(values[b * Q8_BLOCK + i] ?? 0));
    const d = amax / 127;
    const inv = d === 0 ? 0 : 1 / d;
    view.setUint16(b * 34, f32ToF16Scalar(d), true);
    for (let i = 0; i < Q8_BLOCK; i += 1) {
      // Round half away from zero, as C's roundf does.
      const x = (values[b * Q8_BLOCK + i] ?? 0) * inv;
      view.setInt8(b * 34 + 2 + i, Math.sign(x) * Math.round(Math.abs(x)));
    }
  }
  return out;
}

/** Decodes tensor bytes of `type` back to f32. */
export function decodeTensor(bytes: Uint8Array, type: GgmlTypeName, elements: number): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (type) {
    case 'F32':
      return new Float32Array(aligned.buffer, aligned.byteOffset, elements).slice();
    case 'F16':
      return f16ToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, elements));
    case 'BF16':
      return bf16ToF32(new Uint16Array(aligned.buffer, aligned.byteOffset, elements));
    case 'Q8_0': {
      const out = new Float32Array(elements);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let b = 0; b < elements / Q8_BLOCK; b += 1) {
        const d = f16ToF32Scalar(view.getUint16(b * 34, true));
        for (let i = 0; i < Q8_BLOCK; i += 1) out[b * Q8_BLOCK + i] = d * view.getInt8(b * 34 + 2 + i);
      }
      return out;
    }
  }
}
