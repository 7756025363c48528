// Paths to the golden fixtures and small readers for them, shared by this package's tests.
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '@peft-ts/safetensors/node';

export const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
export const BNB = `${FIXTURES}bnb/`;
export const BNB4BIT_FILE = `${BNB}bnb4bit.safetensors`;
export const LLAMA_BNB_DIR = `${BNB}llama-bnb-nf4`;
export const HF_TINY = `${FIXTURES}hf-tiny/`;

/** The fixture's input tensor names (without `.input`). */
export const INPUTS = ['normal_1000', 'normal_odd_999', 'q_proj_64x64', 'gate_proj_160x64', 'with_zero_block_256', 'heavy_tail_4096'] as const;

/** Opens a fixture file, runs `use`, and closes it. */
export async function withFile<T>(path: string, use: (file: SafetensorsFile) => Promise<T>): Promise<T> {
  const file = await SafetensorsFile.open(path);
  try {
    return await use(file);
  } finally {
    await file.close();
  }
}

/** Float32 bit patterns, for bitwise comparisons that tell -0 from 0 and see NaN payloads. */
export function bits(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** Number of positions where two byte arrays differ (plus any length difference). */
export function countDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = Math.abs(a.length - b.length);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) d++;
  return d;
}
