import { defineConfig } from 'tsup';

// The CLI ships as one file with the workspace packages bundled in; `webgpu` stays external
// because it carries Dawn's native addon.
export default defineConfig({
  entry: { cli: 'src/cli.ts' },
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  noExternal: [/^@peft-ts\//],
  external: ['webgpu'],
  banner: { js: '#!/usr/bin/env node' },
});
