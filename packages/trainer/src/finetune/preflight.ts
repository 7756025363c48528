// Everything about a run's paths that can be known before the GPU is touched: the model and
// data exist and are what they should be, the output can be written and holds no earlier run
// (unless asked to replace or resume it), and the checkpoint to resume from exists.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PeftError } from '@peft-ts/errors';
import type { FinetuneConfig } from './config.js';
import { checkResumeIdentity, type RunIdentity } from './identity.js';
import { runIdentity, savedIdentity } from './fingerprint.js';
import { checkInputDir, checkInputFile, checkOutputDir, entriesOf, PathError } from './paths.js';

export interface PreflightOptions {
  /** How a configuration key is named to the user (a command-line flag, say); default the key. */
  name?: (key: keyof FinetuneConfig) => string;
}

export interface Preflight {
  /** The checkpoint directory a resume starts from, or null. */
  resumeDir: string | null;
  /** The step of that checkpoint (0 without one). */
  resumeStep: number;
  /** Whether the output directory holds files from before. */
  outputNonEmpty: boolean;
  /** What defines this run, stored in its checkpoints. */
  identity: RunIdentity;
}

/** Checkpoint directories (`checkpoint-<step>` with a trainer_state.json) under a run's output, newest first. */
export async function listCheckpoints(outputDir: string): Promise<string[]> {
  const steps: number[] = [];
  for (const e of await entriesOf(outputDir)) {
    const m = /^checkpoint-(\d+)$/.exec(e);
    if (!m) continue;
    const files = await entriesOf(join(outputDir, e));
    if (files.includes('trainer_state.json')) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => b - a).map((s) => join(outputDir, `checkpoint-${s}`));
}

export async function preflightFinetune(config: FinetuneConfig, options: PreflightOptions = {}): Promise<Preflight> {
  const name = options.name ?? ((k: string) => k);
  await checkInputDir(config.model, 'a model directory', ['config.json', 'tokenizer.json'], name('model'));
  await checkInputFile(config.data, 'a dataset file (JSON or JSONL)', name('data'));
  const out = await checkOutputDir(config.output, name('output'));
  let resumeDir: string | null = null;
  if (config.resume === 'latest') {
    resumeDir = (await listCheckpoints(config.output))[0] ?? null;
    if (!resumeDir) throw new PathError({ label: name('resume'), path: config.output, expected: 'a checkpoint-<step> directory to resume from (latest)', got: 'no checkpoint; save some with saveEvery, or start without resume' });
  } else if (config.resume !== null) {
    await checkInputDir(config.resume, 'a checkpoint directory', ['trainer_state.json', 'adapter_config.json'], name('resume'));
    resumeDir = config.resume;
  }
  if (out.nonEmpty && !config.overwrite && resumeDir === null) {
    throw new PeftError(
      'OUTPUT_EXISTS',
      `${name('output')}: ${config.output}: expected an empty or new directory, got one with files of an earlier run; pass ${name('overwrite')} to replace that run or ${name('resume')} latest to continue it`,
    );
  }
  const identity = await runIdentity(config);
  let resumeStep = 0;
  if (resumeDir !== null) {
    const saved = await savedIdentity(resumeDir);
    checkResumeIdentity(resumeDir, saved.run, identity);
    resumeStep = saved.step;
  }
  return { resumeDir, resumeStep, outputNonEmpty: out.nonEmpty, identity };
}

/** What a run writes into its output directory; replacing a run removes these and nothing else. */
const RUN_FILES = /^(checkpoint-\d+|adapter|best-adapter|metrics\.jsonl|loss\.svg|summary\.json)$/;

/** Removes an earlier run's files from the output directory (other files stay). */
export async function clearEarlierRun(outputDir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const e of await entriesOf(outputDir)) {
    if (!RUN_FILES.test(e)) continue;
    await rm(join(outputDir, e), { recursive: true, force: true });
    removed.push(e);
  }
  return removed;
}
