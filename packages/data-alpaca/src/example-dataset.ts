// The small Alpaca dataset shipped with the package (sentiment labels and text formatting),
// written by scripts/make-example-dataset.mjs, for demos and smoke tests of fine-tuning.
import { fileURLToPath } from 'node:url';

/**
 * Absolute path of `data/example-alpaca.json`. This file sits one folder below the package
 * root both as source (src/) and as the bundle (dist/), so the relative URL holds in both.
 */
export function exampleDatasetPath(): string {
  return fileURLToPath(new URL('../data/example-alpaca.json', import.meta.url));
}
