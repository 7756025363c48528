// Node-only entry of @peft-ts/trainer: runs from a config's paths (`runFinetune`, as `peft-ts
// train` runs them), the output directory as a RunStore, path checks with clear errors, and the
// fingerprints a resume is checked against. Re-exports the main entry, which runs in a browser
// and never imports this file.
export * from './index.js';
export { runFinetune, prepareFinetune, modelLoadOptions, type FinetuneOptions, type PreparedFinetune } from './finetune/run.js';
export { outputDirStore } from './finetune/output-dir.js';
export { preflightFinetune, listCheckpoints, clearEarlierRun, type Preflight, type PreflightOptions } from './finetune/preflight.js';
export { PathError, withPath, errnoCode, describeErrno, removeStaleTemporaries } from './finetune/paths.js';
export { checkInputDir, checkInputFile, checkOutputDir } from './finetune/paths.js';
export { runIdentity, modelFingerprint } from './finetune/fingerprint.js';
