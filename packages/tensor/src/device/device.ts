// Acquires the WebGPU device (Dawn's Node bindings, navigator.gpu in a browser, or a GPU object
// given by the caller) and turns GPU-side failures (validation, out-of-memory, device loss) into
// thrown errors at the next sync point.
import { DeviceError } from '@peft-ts/errors';
import { defaultGpu, prepareGlobals } from './gpu-provider.js';

/** Features requested whenever the adapter offers them. */
export const OPTIONAL_FEATURES = [
  'shader-f16',
  'subgroups',
  'timestamp-query',
  'chromium-experimental-subgroup-matrix',
] as const;

/** Dawn toggles: unsafe APIs expose subgroup matrices; NVIDIA's Vulkan f16 is off without the second. */
export const DAWN_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'] as const;

/** One cooperative-matrix shape the adapter supports (`chromium-experimental-subgroup-matrix`). */
export interface SubgroupMatrixConfig {
  M: number;
  N: number;
  K: number;
  componentType: string;
  resultType: string;
}

export interface DeviceInfo {
  /** Adapter description as the driver reports it, e.g. "NVIDIA H100 80GB HBM3". */
  description: string;
  vendor: string;
  architecture: string;
  /**
   * True for a software adapter such as Mesa's lavapipe: what the adapter reports as
   * `isFallbackAdapter`, or, where an implementation does not report it, its description.
   */
  isSoftware: boolean;
  features: string[];
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
    minStorageBufferOffsetAlignment: number;
  };
  subgroupMinSize: number;
  subgroupMaxSize: number;
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
}

export interface DeviceOptions {
  /** Defaults to 'high-performance'. */
  powerPreference?: GPUPowerPreference;
  /** Features to leave off even when offered (e.g. to test fallback kernels). */
  disableFeatures?: readonly string[];
  /** Extra Dawn toggles, added to DAWN_TOGGLES (Node only: a browser page cannot set toggles). */
  extraToggles?: readonly string[];
  /**
   * The WebGPU entry point to request the adapter from (a `navigator.gpu`-like object). Defaults
   * to Dawn created with DAWN_TOGGLES in Node, and to `navigator.gpu` in the browser build.
   */
  gpu?: GPU;
}

// Dawn's Node bindings resolve GPU promises (mapAsync, onSubmittedWorkDone) from a tick that
// re-arms itself with the global setImmediate for as long as any of them is pending: a busy
// loop that takes a whole core. On a software adapter that core is one the GPU work runs on.
// While we wait, Dawn's native tick callbacks are deferred by a timer after a short spin, so the
// wait polls about once a millisecond instead; every other setImmediate caller is untouched.
const SPIN_MS = 0.5;
let quietDepth = 0;
let quietSince = 0;
let plainSetImmediate: typeof setImmediate | null = null;
function isNativeCallback(fn: unknown): boolean {
  return typeof fn === 'function' && Function.prototype.toString.call(fn).endsWith('{ [native code] }');
}

function quietSetImmediate(this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]): unknown {
  const plain = plainSetImmediate ?? setImmediate;
  if (isNativeCallback(callback) && performance.now() - quietSince > SPIN_MS) return setTimeout(callback, 1, ...args);
  return plain(callback, ...args);
}

/**
 * Waits for a GPU promise without spinning a core: `start` begins the asynchronous operation
 * (mapAsync, onSubmittedWorkDone) and the returned promise settles with it.
 */
export function waitQuietly<T>(start: () => Promise<T>): Promise<T> {
  // Without setImmediate (a browser) there is no such busy tick to quiet.
  if (typeof globalThis.setImmediate !== 'function') return start();
  if (quietDepth++ === 0) {
    plainSetImmediate = globalThis.setImmediate;
    quietSince = performance.now();
    globalThis.setImmediate = quietSetImmediate as unknown as typeof setImmediate;
  }
  const leave = (): void => {
    if (--quietDepth === 0 && plainSetImmediate) {
      globalThis.setImmediate = plainSetImmediate;
      plainSetImmediate = null;
    }
  };
  let pending: Promise<T>;
  try {
    pending = start();
  } catch (error) {
    leave();
    throw error;
  }
  return pending.finally(leave);
}

/** A WebGPU device with what we learned about its adapter, and error plumbing. */
export class Gpu {
  readonly device: GPUDevice;
  readonly queue: GPUQueue;
  readonly info: DeviceInfo;
  /** The GPU instance (Dawn's must outlive the device, or a later mapAsync crashes the process). */
  private readonly instance: GPU;
  private readonly pending: Error[] = [];
  private lostReason: string | undefined;
  private destroyed = false;

  constructor(instance: GPU, device: GPUDevice, info: DeviceInfo) {
    this.instance = instance;
    this.device = device;
    this.queue = device.queue;
    this.info = info;
    device.addEventListener('uncapturederror', (event) => {
      const { error } = event;
      const kind = error instanceof GPUOutOfMemoryError ? 'out-of-memory' : error instanceof GPUValidationError ? 'validation' : 'internal';
      this.pending.push(new DeviceError(`GPU ${kind} error: ${error.message}`, { reason: kind }));
    });
    void device.lost.then((lost) => {
      if (this.destroyed) return;
      this.lostReason = `${lost.reason}: ${lost.message}`;
    });
  }

  has(feature: string): boolean {
    return this.device.features.has(feature);
  }

  /** Throws the first GPU error reported since the last check, or a device-lost error. */
  throwIfFailed(): void {
    if (this.lostReason !== undefined) {
      throw new DeviceError(`GPU device lost (${this.lostReason})`, { reason: 'lost' });
    }
    const first = this.pending.shift();
    if (first) {
      const more = this.pending.length;
      this.pending.length = 0;
      if (more > 0) first.message += ` (and ${more} more GPU error${more > 1 ? 's' : ''})`;
      throw first;
    }
  }

  /** Waits until all submitted work has finished, then surfaces any GPU error. */
  async sync(): Promise<void> {
    await waitQuietly(() => this.queue.onSubmittedWorkDone());
    this.throwIfFailed();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.device.destroy();
  }
}

const NO_ADAPTER_HELP =
  'No WebGPU adapter was found. peft-ts needs a Vulkan, Metal or D3D12 GPU driver, or a software ' +
  'Vulkan driver. On Debian/Ubuntu without a GPU install Mesa >= 24 (lavapipe): on Debian 12 ' +
  '`apt-get install -t bookworm-backports mesa-vulkan-drivers` (add bookworm-backports to the apt ' +
  'sources first; the Mesa 22 of plain bookworm is refused by Dawn), or run tools/install-lavapipe.sh ' +
  'from the peft-ts repository. On NVIDIA machines make sure the Vulkan ICD of the driver is installed.';

function readSubgroupMatrixConfigs(info: GPUAdapterInfo): SubgroupMatrixConfig[] {
  const raw = (info as unknown as { subgroupMatrixConfigs?: Iterable<Record<string, unknown>> }).subgroupMatrixConfigs;
  if (!raw) return [];
  const configs: SubgroupMatrixConfig[] = [];
  for (const c of raw) {
    configs.push({
      M: Number(c.M),
      N: Number(c.N),
      K: Number(c.K),
      componentType: String(c.componentType),
      resultType: String(c.resultComponentType ?? c.resultType),
    });
  }
  return configs;
}

/**
 * Creates the GPU device: a high-performance adapter, the optional features it offers, and its
 * largest buffer limits. Throws a DeviceError that says what to install when there is no adapter.
 */
export async function getDevice(options: DeviceOptions = {}): Promise<Gpu> {
  prepareGlobals();
  // Dawn prints every rejected adapter (e.g. an old Mesa) as a warning; we give one clear error instead.
  const gpu = options.gpu ?? defaultGpu([...DAWN_TOGGLES, ...(options.extraToggles ?? [])]);
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  } catch (cause) {
    throw new DeviceError(NO_ADAPTER_HELP, { reason: 'no-adapter', cause });
  }
  if (!adapter) throw new DeviceError(NO_ADAPTER_HELP, { reason: 'no-adapter' });

  const disabled = new Set(options.disableFeatures ?? []);
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f));
  const al = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
    maxBufferSize: al.maxBufferSize,
    maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: al.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: al.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: al.maxStorageBuffersPerShaderStage,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: requiredFeatures as GPUFeatureName[], requiredLimits });
  } catch (cause) {
    throw new DeviceError(`The GPU adapter refused to create a device: ${String(cause)}`, { reason: 'request-device', cause });
  }

  const ai = adapter.info;
  const dl = device.limits;
  const info: DeviceInfo = {
    description: ai.description || `${ai.vendor} ${ai.architecture} ${ai.device}`.trim(),
    vendor: ai.vendor,
    architecture: ai.architecture,
    isSoftware:
      (ai as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      /llvmpipe|lavapipe|swiftshader|software/i.test(`${ai.description} ${ai.device} ${ai.architecture}`),
    features: [...device.features].sort(),
    limits: {
      maxStorageBufferBindingSize: dl.maxStorageBufferBindingSize,
      maxBufferSize: dl.maxBufferSize,
      maxComputeWorkgroupStorageSize: dl.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: dl.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: dl.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupsPerDimension: dl.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: dl.maxStorageBuffersPerShaderStage,
      minStorageBufferOffsetAlignment: dl.minStorageBufferOffsetAlignment,
    },
    subgroupMinSize: (ai as unknown as { subgroupMinSize?: number }).subgroupMinSize ?? 0,
    subgroupMaxSize: (ai as unknown as { subgroupMaxSize?: number }).subgroupMaxSize ?? 0,
    subgroupMatrixConfigs: device.features.has('chromium-experimental-subgroup-matrix') ? readSubgroupMatrixConfigs(ai) : [],
  };
  return new Gpu(gpu, device, info);
}

/** DeviceInfo as a few readable lines, for `peft-ts info` and the benchmark header. */
export function formatDeviceInfo(info: DeviceInfo): string {
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  const lines = [
    `adapter: ${info.description}${info.isSoftware ? ' (software)' : ''} [vendor ${info.vendor || '?'}, ${info.architecture || '?'}]`,
    `features: ${info.features.join(', ')}`,
    `limits: storage binding ${gib(info.limits.maxStorageBufferBindingSize)}, buffer ${gib(info.limits.maxBufferSize)}, ` +
      `workgroup memory ${info.limits.maxComputeWorkgroupStorageSize / 1024} KiB, ${info.limits.maxComputeInvocationsPerWorkgroup} invocations`,
    `subgroup size: ${info.subgroupMinSize}..${info.subgroupMaxSize}`,
    `subgroup-matrix configs: ${
      info.subgroupMatrixConfigs.length === 0
        ? 'none'
        : info.subgroupMatrixConfigs.map((c) => `${c.componentType}->${c.resultType} ${c.M}x${c.N}x${c.K}`).join(', ')
    }`,
  ];
  return lines.join('\n');
}
