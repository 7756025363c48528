import { defineConfig } from 'tsup';

// The declarations use the global WebGPU types (GPUDevice, GPUBuffer, ...): every .d.ts file
// references @webgpu/types, a dependency, so consumers type-check with skipLibCheck off.
export default defineConfig({
  entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' },
  format: ['esm'],
  dts: { compilerOptions: { composite: false }, banner: '/// <reference types="@webgpu/types" />' },
  sourcemap: true,
  clean: true,
  target: 'node20',
});
