// Compiling pipelines ahead of the first step: the kernels one runtime compiled, precompiled on a
// fresh one, leave nothing to compile during the same work, which gives the same bits; a shader
// that does not compile is reported once, naming the kernel.
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceError, UnsupportedError } from '@peft-ts/errors';
import { backward, createRuntime, fromArray, gelu, matmul, mean, mul, softmax, tidy, type KernelSpec, type Runtime } from '../index.js';
import { randn } from '../testing/index.js';

/** A small forward and backward pass; returns the loss and the input's gradient. */
async function step(rt: Runtime): Promise<{ loss: number; grad: Float32Array }> {
  const x = fromArray(rt, randn(6 * 20, 1), [6, 20], 'f32', { requiresGrad: true });
  const w = fromArray(rt, randn(20 * 12, 2, 0.3), [20, 12]);
  const loss = tidy(() => mean(mul(softmax(gelu(matmul(x, w))), gelu(matmul(x, w)))).keep());
  backward(loss);
  const value = await loss.item();
  const grad = (await x.grad?.toArray()) as Float32Array;
  loss.dispose();
  x.dispose();
  w.dispose();
  return { loss: value, grad };
}

const BROKEN: KernelSpec = {
  name: 'broken',
  variant: 'test',
  bindings: ['read_write'],
  uniforms: [],
  wgsl: `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() { out[0] = undefined_value; }`,
};

describe('Runtime.precompile', () => {
  const runtimes: Runtime[] = [];
  const fresh = async (): Promise<Runtime> => {
    const rt = await createRuntime({ seed: 7 });
    runtimes.push(rt);
    return rt;
  };
  afterAll(() => {
    for (const rt of runtimes) rt.destroy();
  });

  it('creates the pipelines a step needs, so that the step creates none and gives the same bits', async () => {
    const first = await fresh();
    const expected = await step(first);
    const kernels = first.compiledKernels();
    expect(kernels.length).toBeGreaterThanOrEqual(6);
    expect(first.pipelinesCreated).toBe(kernels.length);
    expect(first.shaderModulesCreated).toBe(kernels.length);
    expect(first.pipelineMs).toBeGreaterThan(0);

    // Through JSON, as a list saved by an earlier run would come back.
    const saved = JSON.parse(JSON.stringify(kernels)) as KernelSpec[];
    const rt = await fresh();
    const result = await rt.precompile(saved);
    expect(result).toMatchObject({ created: kernels.length, skipped: 0 });
    expect(rt.pipelinesCreated).toBe(kernels.length);
    expect(rt.pipelineMs).toBe(0);

    const got = await step(rt);
    expect(rt.pipelinesCreated).toBe(kernels.length);
    expect(rt.pipelineCount).toBe(kernels.length);
    expect(rt.pipelineMs).toBe(0);
    expect(got.loss).toBe(expected.loss);
    expect(got.grad).toEqual(expected.grad);

    const again = await rt.precompile(saved);
    expect(again).toMatchObject({ created: 0, skipped: kernels.length });
  });

  it('compiles a kernel asked for twice at once only once', async () => {
    const donor = await fresh();
    await step(donor);
    const kernels = donor.compiledKernels();
    const rt = await fresh();
    const [a, b] = await Promise.all([rt.precompile(kernels), rt.precompile(kernels)]);
    expect(a.created).toBe(kernels.length);
    expect(b).toMatchObject({ created: 0, skipped: kernels.length });
    expect(rt.pipelinesCreated).toBe(kernels.length);
  });

  it('rejects a shader that does not compile with a DeviceError naming the kernel, reported once', async () => {
    const rt = await fresh();
    const error = await rt.precompile([BROKEN]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as DeviceError).reason).toBe('shader');
    expect((error as Error).message).toMatch(/^kernel broken:test: the shader does not compile: .*undefined_value/s);
    expect(rt.pipelineCount).toBe(0);
    // Caught by the error scope: the device is still fine and later work runs.
    await expect(rt.sync()).resolves.toBeUndefined();
    const { loss } = await step(rt);
    expect(Number.isFinite(loss)).toBe(true);
  });

  it('refuses a kernel that needs a feature the device lacks, before compiling anything', async () => {
    const rt = await fresh();
    const error = await rt.precompile([{ ...BROKEN, name: 'needs-feature', features: ['no-such-feature'] }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedError);
    expect((error as Error).message).toMatch(/needs-feature needs no-such-feature/);
    expect(rt.pipelinesCreated).toBe(0);
  });
});
