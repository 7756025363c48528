// The GPU in a browser: the page's navigator.gpu. Dawn toggles cannot be set from a page, so
// they are ignored; the WebGPU constants and error classes are already globals.
import { DeviceError } from '@peft-ts/errors';

export function prepareGlobals(): void {
  // Nothing to install: the browser defines GPUBufferUsage, GPUMapMode and the error classes.
}

export function defaultGpu(_toggles: readonly string[]): GPU {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    throw new DeviceError(
      'WebGPU is not available here (navigator.gpu is undefined): use a browser with WebGPU enabled ' +
        '(Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows), served over https or from localhost; ' +
        'in headless Chromium pass --enable-unsafe-webgpu.',
      { reason: 'no-adapter' },
    );
  }
  return gpu;
}
