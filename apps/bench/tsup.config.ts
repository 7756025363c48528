import { defineConfig } from 'tsup';

// One self-contained file (all but `webgpu`), so it also runs on a GPU machine with no install,
// and the `peft-ts-bench` command of the published package.
export default defineConfig({
  entry: { bench: 'src/bench.ts' },
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
  noExternal: [/^(?!webgpu$)/],
  external: ['webgpu'],
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __peftCreateRequire } from 'node:module'; const require = __peftCreateRequire(import.meta.url);" },
});
