// The page's settings as the trainer's configuration, and the masked preview as text runs: the
// worker's pure parts, kept apart so that they are tested without a browser.
import { resolveFinetuneConfig, type FinetuneConfig } from '@peft-ts/trainer';
import type { TrainSettings } from './protocol.js';

/** The page's settings as the configuration `peft-ts train` resolves from the same flags. */
export function finetuneConfig(settings: TrainSettings, model: string, data: string, output: string): FinetuneConfig {
  return resolveFinetuneConfig(
    {
      model,
      data,
      output,
      method: settings.method,
      r: settings.r,
      alpha: settings.alpha,
      dropout: settings.dropout,
      targets: settings.targets === 'all-linear' ? 'all-linear' : settings.targets.split(',').map((s) => s.trim()).filter((s) => s !== ''),
      lr: settings.lr,
      schedule: settings.schedule,
      warmupSteps: settings.warmupSteps,
      maxSteps: settings.maxSteps,
      batchSize: settings.batchSize,
      gradientAccumulation: settings.gradientAccumulation,
      maxLength: settings.maxLength,
      validationSplit: settings.validationSplit,
      evalEvery: settings.evalEvery,
      saveEvery: settings.saveEvery,
      seed: settings.seed,
    },
    'settings',
  );
}

/** Markers around trained text in previewMasks' output: control characters no dataset text holds. */
export const TRAINED_OPEN = '\u0001';
export const TRAINED_CLOSE = '\u0002';

/** previewMasks' text with TRAINED_OPEN/TRAINED_CLOSE markers as [text, trained] runs, empty runs dropped. */
export function maskedRuns(text: string): [string, boolean][] {
  const runs: [string, boolean][] = [];
  for (const part of text.split(TRAINED_OPEN)) {
    const end = part.indexOf(TRAINED_CLOSE);
    if (end < 0) runs.push([part, false]);
    else runs.push([part.slice(0, end), true], [part.slice(end + TRAINED_CLOSE.length), false]);
  }
  return runs.filter(([t]) => t !== '');
}
