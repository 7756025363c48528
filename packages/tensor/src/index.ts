// Public API of @peft-ts/tensor.
export { getDevice, formatDeviceInfo, Gpu, DAWN_TOGGLES, OPTIONAL_FEATURES } from './device/device.js';
export type { DeviceInfo, DeviceOptions, SubgroupMatrixConfig } from './device/device.js';
