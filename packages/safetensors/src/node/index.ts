// Node entry of @peft-ts/safetensors: everything the main entry has, plus reading and writing
// files and directories on disk (path-based SafetensorsFile.open and Checkpoint.open, the
// streaming writers, atomic directories).
export * from '../index.js';
export { Checkpoint, SafetensorsFile } from './open.js';
export type { OpenOptions } from './open.js';
export { dirTree, dirWriter, fileSource } from './file-tree.js';
export type { FileSourceOptions } from './file-tree.js';
export { writeSafetensors } from './write-safetensors-file.js';
export { DEFAULT_MAX_SHARD_BYTES, writeCheckpoint } from './write-checkpoint.js';
export type { WriteCheckpointOptions, WrittenCheckpoint } from './write-checkpoint.js';
export { checkOutputDir, writeDirAtomically } from './atomic-dir.js';
