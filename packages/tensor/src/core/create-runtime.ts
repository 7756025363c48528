// One call from nothing to a ready runtime: acquire the device, wrap it.
import { getDevice, type DeviceOptions } from '../device/device.js';
import { Runtime } from './runtime.js';

export interface RuntimeOptions extends DeviceOptions {
  /** Seed of the counter-based RNG (default 0). */
  seed?: number;
  /** Cap on live tensor bytes; allocations past it throw OutOfMemoryBudgetError. */
  memoryBudgetBytes?: number;
}

export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const rt = new Runtime(await getDevice(options));
  rt.manualSeed(options.seed ?? 0);
  if (options.memoryBudgetBytes !== undefined) rt.setMemoryBudget(options.memoryBudgetBytes);
  return rt;
}
