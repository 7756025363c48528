// Node-only: a run's output directory as the RunStore the trainer writes to. Each file is
// written through `<name>.<pid>.tmp` and a rename, each folder (checkpoint, adapter) through a
// temporary sibling directory, so a killed run never leaves a half-written one behind.
import { appendFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { dirTree, dirWriter, writeDirAtomically } from '@peft-ts/safetensors/node';
import type { RunStore } from '../train/run-store.js';
import { errnoCode, withPath } from './paths.js';

/** The directory `dir` (created as files are written) as a RunStore; names are paths below it. */
export function outputDirStore(dir: string): RunStore {
  const tree = dirTree(dir);
  return {
    name: dir,
    list: async () => {
      try {
        return await tree.list();
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') return [];
        throw error;
      }
    },
    open: (name) => tree.open(name),
    write: async (name, data) => {
      const path = join(dir, name);
      const tmp = `${path}.${process.pid}.tmp`;
      await withPath(path, 'a file written in full', async () => {
        await mkdir(dirname(path), { recursive: true });
        await writeFile(tmp, data);
        await rename(tmp, path);
      });
    },
    append: async (name, text) => {
      const path = join(dir, name);
      await withPath(path, 'a file that can be appended to', () => appendFile(path, text));
    },
    remove: (name) => rm(join(dir, name), { recursive: true, force: true }),
    writeFolder: async (name, fill) => {
      const path = join(dir, name);
      const what = name.startsWith('checkpoint-') ? 'a checkpoint directory written in full' : 'an adapter directory written in full';
      await withPath(path, what, () => writeDirAtomically(path, true, (tmp) => fill(dirWriter(tmp))));
    },
    where: (name) => join(dir, name),
  };
}
