// Exits 0 when Dawn finds a WebGPU adapter that can create a device, 1 otherwise (used by .ci/run).
import { createRequire } from 'node:module';

const require = createRequire(new URL('../packages/tensor/package.json', import.meta.url));
const { create, globals } = await import(require.resolve('webgpu'));
Object.assign(globalThis, globals);
const gpu = create(['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia']);
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
if (!adapter) {
  console.log('probe: no WebGPU adapter');
  process.exit(1);
}
const device = await adapter.requestDevice();
console.log(`probe: ${adapter.info.description || adapter.info.vendor}`);
device.destroy();
