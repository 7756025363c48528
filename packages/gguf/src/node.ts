// Node entry of @peft-ts/gguf: everything the main entry has, plus GGUF files read and written
// by path.
import { fileSource } from '@peft-ts/safetensors/node';
import { readGgufInfoFrom, readGgufTensorFrom, type GgufFileInfo, type GgufTensorInfo } from './read/read-gguf.js';

export * from './index.js';
export { writeGguf } from './write/write-gguf-file.js';

/** Parses everything of the file at `path` up to the tensor data. */
export async function readGgufInfo(path: string): Promise<GgufFileInfo> {
  const source = await fileSource(path);
  try {
    return await readGgufInfoFrom(source);
  } finally {
    await source.close();
  }
}

/** Reads one tensor (f32, f16, bf16 or q8_0) of the file at `path` as f32 values. */
export async function readGgufTensor(path: string, info: GgufTensorInfo): Promise<Float32Array> {
  const source = await fileSource(path);
  try {
    return await readGgufTensorFrom(source, info);
  } finally {
    await source.close();
  }
}
