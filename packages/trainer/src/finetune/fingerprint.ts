// Node-only parts of a run's identity: fingerprints of the model directory and the data file,
// and the identity stored in a checkpoint directory.
import { createHash } from 'node:crypto';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeftError } from '@peft-ts/errors';
import type { FinetuneConfig } from './config.js';
import { runIdentityFrom, type RunIdentity } from './identity.js';
import { withPath } from './paths.js';

async function safetensorsHeader(path: string): Promise<Buffer> {
  const f = await open(path, 'r');
  try {
    const size = Buffer.alloc(8);
    await f.read(size, 0, 8, 0);
    const n = Number(size.readBigUInt64LE(0));
    const header = Buffer.alloc(Math.min(n, 100 * 2 ** 20));
    await f.read(header, 0, header.length, 8);
    return Buffer.concat([size, header, Buffer.from(String((await f.stat()).size))]);
  } finally {
    await f.close();
  }
}

/**
 * The model's fingerprint: config.json and every safetensors header (names, shapes, dtypes,
 * offsets) with the file sizes; cheap for any size of model, and changed by any other model.
 */
export async function modelFingerprint(dir: string): Promise<string> {
  return withPath(dir, 'a model directory that can be read', async () => {
    const hash = createHash('sha256');
    hash.update(await readFile(join(dir, 'config.json')));
    for (const name of (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort()) {
      hash.update(name);
      hash.update(await safetensorsHeader(join(dir, name)));
    }
    return hash.digest('hex');
  });
}

export async function fileFingerprint(path: string): Promise<string> {
  return withPath(path, 'a file that can be read', async () => createHash('sha256').update(await readFile(path)).digest('hex'));
}

/** The identity of the run `config` describes: fingerprints of its model directory and data file. */
export async function runIdentity(config: FinetuneConfig): Promise<RunIdentity> {
  return runIdentityFrom(config, { model: await modelFingerprint(config.model), data: await fileFingerprint(config.data) });
}

/** The identity stored in a checkpoint's trainer_state.json, if it has one. */
export async function savedIdentity(checkpoint: string): Promise<{ step: number; run: RunIdentity | undefined }> {
  const path = join(checkpoint, 'trainer_state.json');
  const text = await withPath(path, 'a checkpoint state file that can be read', () => readFile(path, 'utf8'));
  let state: { step?: unknown; run?: unknown };
  try {
    state = JSON.parse(text) as { step?: unknown; run?: unknown };
  } catch {
    throw new PeftError('FORMAT', `${path}: expected valid JSON, got a file that does not parse`);
  }
  return { step: typeof state.step === 'number' ? state.step : 0, run: typeof state.run === 'object' && state.run !== null ? (state.run as RunIdentity) : undefined };
}
