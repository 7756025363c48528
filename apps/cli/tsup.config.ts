import { defineConfig } from 'tsup';

// The CLI is one ESM file; the @peft-ts packages (and `webgpu`, with Dawn's native addon) are
// its dependencies, resolved from node_modules like any install.
export default defineConfig({
  entry: { cli: 'src/cli.ts' },
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
});
