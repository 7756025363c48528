import { fileURLToPath } from 'node:url';
import { defineConfig } from 'tsup';
import type { Plugin } from 'esbuild';

// The declarations use the global WebGPU types (GPUDevice, GPUBuffer, ...): every .d.ts file
// references @webgpu/types, a dependency, so consumers type-check with skipLibCheck off.
const dts = { compilerOptions: { composite: false }, banner: '/// <reference types="@webgpu/types" />' };

// The browser build differs from the Node one in a single module: the GPU provider, which is
// navigator.gpu instead of Dawn's bindings from the `webgpu` package.
const browserProvider: Plugin = {
  name: 'browser-gpu-provider',
  setup(build) {
    build.onResolve({ filter: /\/gpu-provider\.js$/ }, () => ({
      path: fileURLToPath(new URL('./src/device/gpu-provider.browser.ts', import.meta.url)),
    }));
  },
};

export default defineConfig([
  {
    entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' },
    format: ['esm'],
    dts,
    sourcemap: true,
    // The browser build below owns dist/browser; the two builds run at once.
    clean: ['!browser/**'],
    target: 'node20',
  },
  {
    entry: { index: 'src/index.ts' },
    outDir: 'dist/browser',
    format: ['esm'],
    platform: 'browser',
    sourcemap: true,
    clean: true,
    target: 'es2022',
    esbuildPlugins: [browserProvider],
  },
]);
