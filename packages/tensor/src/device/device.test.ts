// The device comes up on whatever adapter the machine has (lavapipe in CI) and runs a kernel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceError, PeftError } from '@peft-ts/errors';
import { getDevice, formatDeviceInfo, type Gpu } from '../index.js';

describe('getDevice', () => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await getDevice();
  });
  afterAll(() => gpu.destroy());

  it('reports the adapter, features and raised limits', () => {
    const { info } = gpu;
    expect(info.description.length).toBeGreaterThan(0);
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(info.limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16 * 1024);
    expect(info.features).toEqual([...gpu.device.features].sort());
    if (gpu.has('subgroups')) expect(info.subgroupMinSize).toBeGreaterThan(0);
    expect(formatDeviceInfo(info)).toContain('subgroup-matrix configs:');
  });

  it('writes a buffer, runs a compute shader and reads the result back', async () => {
    const n = 1000;
    const input = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 17);
    const { device } = gpu;
    const src = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const dst = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(src, 0, input);
    const module = device.createShaderModule({
      code: `
        @group(0) @binding(0) var<storage, read> x: array<f32>;
        @group(0) @binding(1) var<storage, read_write> y: array<f32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3u) {
          if (id.x < arrayLength(&x)) { y[id.x] = x[id.x] * x[id.x] + 1.0; }
        }`,
    });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: src } },
        { binding: 1, resource: { buffer: dst } },
      ],
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(Math.ceil(n / 64));
    pass.end();
    encoder.copyBufferToBuffer(dst, 0, read, 0, n * 4);
    device.queue.submit([encoder.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(read.getMappedRange().slice(0));
    read.unmap();
    await gpu.sync();
    for (let i = 0; i < n; i++) {
      const x = input[i] ?? 0;
      expect(out[i]).toBe(Math.fround(Math.fround(x * x) + 1));
    }
    for (const b of [src, dst, read]) b.destroy();
  });

  it('surfaces a validation error at the next sync point', async () => {
    // A storage buffer whose size is not a multiple of 4 is invalid; WebGPU reports it asynchronously.
    gpu.device.createBuffer({ size: 6, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE });
    const err = await gpu.sync().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(PeftError.isInstance(err)).toBe(true);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).reason).toBe('validation');
    await gpu.sync();
  });
});
