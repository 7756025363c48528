// The GPU in Node: Dawn's bindings from the `webgpu` package, created with our Dawn toggles. The
// browser build replaces this module with gpu-provider.browser.ts (navigator.gpu, no toggles).
import { create, globals } from 'webgpu';

let installed = false;

/** Installs Dawn's constants (GPUBufferUsage, GPUMapMode...) and error classes as globals, once. */
export function prepareGlobals(): void {
  if (installed) return;
  for (const [key, value] of Object.entries(globals as Record<string, unknown>)) {
    if (!(key in globalThis)) Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
  }
  installed = true;
}

/** A Dawn instance with `toggles` enabled. */
export function defaultGpu(toggles: readonly string[]): GPU {
  return create([`enable-dawn-features=${toggles.join(',')}`]);
}
