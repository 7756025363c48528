// Puts the CLI demo's model and the example dataset in public/demo/ (served as /demo/), made by
// the built CLI itself so that the page trains on the very bytes `peft-ts demo` trains on.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(app, '..', 'cli', 'dist', 'cli.js');
const out = join(app, 'public', 'demo');
if (!existsSync(cli)) {
  console.error(`web build: ${cli} is missing; build the CLI first (pnpm --filter peft-ts... build, or pnpm build at the root)`);
  process.exit(1);
}
const made = spawnSync(process.execPath, [cli, 'demo', '--write-assets', out], { stdio: 'inherit' });
if (made.status !== 0) {
  console.error(`web build: ${cli} demo --write-assets failed (exit ${made.status ?? made.signal}); is the CLI's build up to date?`);
  process.exit(1);
}
// The page lists the model's files from this manifest (a static host cannot list a directory).
const model = join(out, 'model');
const files = readdirSync(model)
  .filter((name) => statSync(join(model, name)).isFile())
  .sort()
  .map((name) => ({ name, size: statSync(join(model, name)).size }));
const manifest = { model: { dir: 'model', files }, dataset: 'example-alpaca.json' };
writeFileSync(join(out, 'manifest.json.tmp'), `${JSON.stringify(manifest, null, 2)}\n`);
renameSync(join(out, 'manifest.json.tmp'), join(out, 'manifest.json'));
