// What defines a run, stored in each checkpoint so that a resume can check it continues the
// same run: the base model, the adapter's shape, the data and how it is cut into batches.
import { PeftError } from '@peft-ts/errors';
import type { FinetuneConfig } from './config.js';

/** Values that must be equal for a checkpoint to be resumed; fingerprints are SHA-256 hex. */
export type RunIdentity = Record<string, string | number | boolean | null | string[]>;

/**
 * The identity of the run `config` describes, given fingerprints of its model and data (SHA-256
 * hex in Node's `runIdentity`; any stable strings elsewhere).
 */
export function runIdentityFrom(config: FinetuneConfig, fingerprints: { model: string; data: string }): RunIdentity {
  return {
    model: fingerprints.model,
    data: fingerprints.data,
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
