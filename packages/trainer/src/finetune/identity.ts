// What defines a run, stored in each checkpoint so that a resume can check it continues the
// same run: the base model, the adapter's shape, the data and how it is cut into batches.
import { createHash } from 'node:crypto';
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeftError } from '@peft-ts/errors';
import type { FinetuneConfig } from './config.js';
import { withPath } from './paths.js';

/** Values that must be equal for a checkpoint to be resumed; fingerprints are SHA-256 hex. */
export type RunIdentity = Record<string, string | number | boolean | null | string[]>;

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

/** The identity of the run `config` describes. */
export async function runIdentity(config: FinetuneConfig): Promise<RunIdentity> {
  return {
    model: await modelFingerprint(config.model),
    data: await fileFingerprint(config.data),
    method: config.method,
    quant: config.method === 'qlora' ? `${config.quantType}/${config.blocksize}/${config.doubleQuant ? 'double' : 'single'}` : null,
    r: config.r,
    alpha: config.alpha,
    dropout: config.dropout,
    targets: config.targets === 'all-linear' ? ['all-linear'] : [...config.targets],
    modulesToSave: config.modulesToSave ? [...config.modulesToSave] : null,
    template: config.template,
    trainOn: config.trainOn,
    maxLength: config.maxLength,
    pack: config.pack,
    validationSplit: config.validationSplit,
    batchSize: config.batchSize,
    gradientAccumulation: config.gradientAccumulation,
    seed: config.seed,
  };
}

const show = (v: unknown): string => (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? `${v.slice(0, 12)}…` : JSON.stringify(v));

/** The keys whose values differ, as "key: <in the checkpoint> in the checkpoint, <now> now". */
export function identityDifferences(saved: RunIdentity, current: RunIdentity): string[] {
  const keys = [...new Set([...Object.keys(current), ...Object.keys(saved)])];
  const out: string[] = [];
  for (const k of keys) {
    const a = saved[k];
    const b = current[k];
    if (JSON.stringify(a ?? null) === JSON.stringify(b ?? null)) continue;
    const what = k === 'model' ? 'model (config.json and weight files)' : k === 'data' ? 'data (file contents)' : k;
    out.push(`${what}: ${show(a)} in the checkpoint, ${show(b)} now`);
  }
  return out;
}

/** Refuses to resume `checkpoint` (saved with `saved`) as the run `current`, listing every difference. */
export function checkResumeIdentity(checkpoint: string, saved: RunIdentity | undefined, current: RunIdentity): void {
  if (!saved) return;
  const diffs = identityDifferences(saved, current);
  if (diffs.length > 0) {
    throw new PeftError('RESUME_MISMATCH', `resume: ${checkpoint} belongs to a different run; it differs in ${diffs.join('; ')} (start a new run in another output directory, or resume with the original settings)`);
  }
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
