// getDevice and createRuntime take the GPU object they are given (as a page passes navigator.gpu),
// and the browser build's provider hands out navigator.gpu or says why there is none.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { create } from 'webgpu';
import { DeviceError } from '@peft-ts/errors';
import { createRuntime, DAWN_TOGGLES, fromArray, getDevice, mul } from '../index.js';
import { defaultGpu as browserGpu, prepareGlobals as browserGlobals } from './gpu-provider.browser.js';

/** A GPU object that records the adapter requests it forwards to a Dawn instance of our own. */
function recordingGpu(): { gpu: GPU; requests: (GPURequestAdapterOptions | undefined)[] } {
  const dawn = create([`enable-dawn-features=${DAWN_TOGGLES.join(',')}`]);
  const requests: (GPURequestAdapterOptions | undefined)[] = [];
  const gpu = {
    requestAdapter: (options?: GPURequestAdapterOptions) => {
      requests.push(options);
      return dawn.requestAdapter(options);
    },
    getPreferredCanvasFormat: () => dawn.getPreferredCanvasFormat(),
    wgslLanguageFeatures: dawn.wgslLanguageFeatures,
  } as unknown as GPU;
  return { gpu, requests };
}

describe('a GPU object given by the caller', () => {
  it('getDevice requests its adapter from the given GPU', async () => {
    const { gpu, requests } = recordingGpu();
    const device = await getDevice({ gpu, powerPreference: 'low-power' });
    try {
      expect(requests).toEqual([{ powerPreference: 'low-power' }]);
      expect(device.info.description.length).toBeGreaterThan(0);
      await device.sync();
    } finally {
      device.destroy();
    }
  });

  it('createRuntime computes on the given GPU', async () => {
    const { gpu, requests } = recordingGpu();
    const rt = await createRuntime({ gpu, seed: 3 });
    try {
      expect(requests).toHaveLength(1);
      const a = fromArray(rt, [1.5, -2, 4], [3]);
      const b = fromArray(rt, [2, 3, 0.25], [3]);
      expect([...(await mul(a, b).toArray())]).toEqual([3, -6, 1]);
    } finally {
      rt.destroy();
    }
  });
});

describe('the browser GPU provider', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('gives navigator.gpu, whatever toggles are asked for', () => {
    const gpu = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
    vi.stubGlobal('navigator', { gpu });
    expect(browserGpu(['allow_unsafe_apis'])).toBe(gpu);
    expect(() => browserGlobals()).not.toThrow();
  });

  it('without navigator.gpu, throws a DeviceError that says what a page needs', () => {
    vi.stubGlobal('navigator', {});
    expect(() => browserGpu([])).toThrow(DeviceError);
    expect(() => browserGpu([])).toThrow(/navigator\.gpu is undefined.*--enable-unsafe-webgpu/);
  });
});
