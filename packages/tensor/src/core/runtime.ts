// The runtime owns the device, the buffer pool, the pipeline cache and the command encoder that
// ops record into. Work is submitted at sync points (readback, flush), not once per op.
import { DeviceError, UnsupportedError } from '@peft-ts/errors';
import { waitQuietly, type Gpu } from '../device/device.js';
import { kernelKey, type BindingKind, type KernelSpec, type UniformField } from './kernel.js';
import { BufferPool, type MemoryStats } from './memory.js';

const UNIFORM_CHUNK = 64 * 1024;
/** Submit on our own once this many dispatches are recorded, so pooled buffers come back. */
const AUTO_FLUSH_DISPATCHES = 2048;

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  uniformBinding: number;
  uniformBytes: number;
  fields: readonly UniformField[];
  spec: KernelSpec;
}

/** What `Runtime.precompile` did: pipelines it created, kernels already compiled, wall time. */
export interface PrecompileResult {
  created: number;
  skipped: number;
  ms: number;
}

/** A buffer region bound to one kernel binding. */
export interface BufferBinding {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** GPU time spent in one kernel (by name and variant) while profiling. */
export interface KernelTime {
  kernel: string;
  ms: number;
  dispatches: number;
}

/** Timestamp queries of one submit: which kernel each begin/end pair belongs to. */
interface ProfileBatch {
  querySet: GPUQuerySet;
  resolve: GPUBuffer;
  readback: GPUBuffer;
  kernels: string[];
}

interface UniformChunk {
  buffer: GPUBuffer;
  data: ArrayBuffer;
  used: number;
}

export class Runtime {
  readonly gpu: Gpu;
  readonly device: GPUDevice;
  readonly pool: BufferPool;
  private readonly pipelines = new Map<string, CachedPipeline>();
  private readonly pendingPipelines = new Map<string, Promise<void>>();
  private readonly spareBuffers = new Map<BindingKind, { buffer: GPUBuffer; slots: number }>();
  private readonly retiredSpares: GPUBuffer[] = [];
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private uniformChunks: UniformChunk[] = [];
  private uniformFree: UniformChunk[] = [];
  private readonly afterSubmitHooks: (() => void)[] = [];
  /** Seed and position of the counter-based RNG: every random draw advances rngOffset. */
  rngSeed = 0;
  rngOffset = 0;
  /** Dispatch count since creation, for tests and benchmarks. */
  totalDispatches = 0;
  totalSubmits = 0;
  /** Host readbacks (buffer maps) since creation: each one waits for the GPU. */
  totalReadbacks = 0;
  /**
   * Compute pipelines and shader modules created since creation, and the host time a dispatch
   * spent blocked compiling a pipeline it needed (precompiled ones cost nothing there).
   */
  pipelinesCreated = 0;
  shaderModulesCreated = 0;
  pipelineMs = 0;
  private profiling = false;
  private profileBatch: ProfileBatch | null = null;
  private readonly profilePending: Promise<void>[] = [];
  private readonly kernelTimes = new Map<string, KernelTime>();

  constructor(gpu: Gpu) {
    this.gpu = gpu;
    this.device = gpu.device;
    this.pool = new BufferPool(gpu.device);
    this.pool.flush = () => this.flush();
  }

  /** Resets the RNG to `seed`; draws then repeat exactly across runs and devices. */
  manualSeed(seed: number): void {
    this.rngSeed = seed >>> 0;
    this.rngOffset = 0;
  }

  /** Reserves `count` RNG counters and returns the first. */
  takeRng(count: number): number {
    const at = this.rngOffset;
    this.rngOffset += Math.ceil(count / 4) * 4;
    return at;
  }

  has(feature: string): boolean {
    return this.gpu.has(feature);
  }

  get maxBindingBytes(): number {
    return this.gpu.info.limits.maxStorageBufferBindingSize;
  }

  /** Subgroup size to plan for: the adapter's minimum (kernels must also work at the maximum). */
  get subgroupSize(): number {
    return this.gpu.info.subgroupMinSize || 0;
  }

  private checkFeatures(spec: KernelSpec, key: string): void {
    for (const feature of spec.features ?? []) {
      if (!this.has(feature)) {
        throw new UnsupportedError({ what: 'GPU feature for kernel', got: `${spec.name} needs ${feature}`, where: key });
      }
    }
  }

  /** The bind group layout, shader module and pipeline descriptor of a kernel (nothing compiled yet). */
  private describe(spec: KernelSpec, key: string): { layout: GPUBindGroupLayout; descriptor: GPUComputePipelineDescriptor; uniformBinding: number } {
    const entries: GPUBindGroupLayoutEntry[] = spec.bindings.map((kind, binding) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: kind === 'read' ? 'read-only-storage' : 'storage' },
    }));
    const uniformBinding = spec.bindings.length;
    if (spec.uniforms.length > 0) {
      entries.push({ binding: uniformBinding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    }
    const layout = this.device.createBindGroupLayout({ entries });
    const module = this.device.createShaderModule({ code: spec.wgsl, label: key });
    this.shaderModulesCreated += 1;
    const descriptor: GPUComputePipelineDescriptor = {
      label: key,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    };
    return { layout, descriptor, uniformBinding };
  }

  private cache(spec: KernelSpec, key: string, pipeline: GPUComputePipeline, layout: GPUBindGroupLayout, uniformBinding: number): CachedPipeline {
    const entry: CachedPipeline = {
      pipeline,
      layout,
      uniformBinding,
      uniformBytes: Math.max(16, Math.ceil((spec.uniforms.length * 4) / 16) * 16),
      fields: spec.uniforms,
      spec,
    };
    this.pipelines.set(key, entry);
    this.pipelinesCreated += 1;
    return entry;
  }

  private pipelineFor(spec: KernelSpec): CachedPipeline {
    const key = kernelKey(spec);
    const cached = this.pipelines.get(key);
    if (cached) return cached;
    this.checkFeatures(spec, key);
    // Compiles on this thread: a kernel missed by precompile costs its compile time here.
    const t0 = performance.now();
    const { layout, descriptor, uniformBinding } = this.describe(spec, key);
    const pipeline = this.device.createComputePipeline(descriptor);
    this.pipelineMs += performance.now() - t0;
    return this.cache(spec, key, pipeline, layout, uniformBinding);
  }

  /**
   * Compiles the pipelines of `specs` ahead of their first dispatch, in parallel and off the
   * calling thread where the implementation can (`createComputePipelineAsync`), so that other
   * work (loading weights, tokenizing) overlaps the compiles. Kernels already compiled or being
   * compiled are skipped. Rejects with a DeviceError naming the kernel when a shader does not
   * compile, and with an UnsupportedError when a kernel needs a feature the device lacks.
   */
  async precompile(specs: Iterable<KernelSpec>): Promise<PrecompileResult> {
    const t0 = performance.now();
    const jobs: Promise<void>[] = [];
    let created = 0;
    let skipped = 0;
    for (const spec of specs) {
      const key = kernelKey(spec);
      const pending = this.pendingPipelines.get(key);
      if (this.pipelines.has(key) || pending) {
        skipped += 1;
        if (pending) jobs.push(pending);
        continue;
      }
      this.checkFeatures(spec, key);
      const job = this.compileAsync(spec, key).finally(() => this.pendingPipelines.delete(key));
      this.pendingPipelines.set(key, job);
      jobs.push(job);
      created += 1;
    }
    const settled = await Promise.allSettled(jobs);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return { created, skipped, ms: performance.now() - t0 };
  }

  private async compileAsync(spec: KernelSpec, key: string): Promise<void> {
    // The scope catches a WGSL error of the module here, so it is reported once, with the kernel's name.
    this.device.pushErrorScope('validation');
    const { layout, descriptor, uniformBinding } = this.describe(spec, key);
    const created = this.device.createComputePipelineAsync(descriptor);
    const scope = this.device.popErrorScope();
    const [moduleError, result] = await Promise.all([scope, created.catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))))]);
    if (moduleError) throw new DeviceError(`kernel ${key}: the shader does not compile: ${moduleError.message}`, { reason: 'shader' });
    if (result instanceof Error) throw new DeviceError(`kernel ${key}: creating its pipeline failed: ${result.message}`, { reason: 'pipeline', cause: result });
    const pipeline = result;
    // A dispatch that could not wait compiled it meanwhile: keep that one.
    if (!this.pipelines.has(key)) this.cache(spec, key, pipeline, layout, uniformBinding);
  }

  /**
   * The specs of every kernel this runtime has compiled, in the order they were first needed:
   * what `precompile` needs to prepare the same work on another runtime (plain data, so it can be
   * saved as JSON between runs).
   */
  compiledKernels(): KernelSpec[] {
    return [...this.pipelines.values()].map((p) => p.spec);
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  private getEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private getPass(): GPUComputePassEncoder {
    this.pass ??= this.getEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private uniformSlot(bytes: number): { chunk: UniformChunk; offset: number } {
    let chunk = this.uniformChunks[this.uniformChunks.length - 1];
    if (!chunk || chunk.used + bytes > UNIFORM_CHUNK) {
      chunk = this.uniformFree.pop() ?? {
        buffer: this.device.createBuffer({ size: UNIFORM_CHUNK, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
        data: new ArrayBuffer(UNIFORM_CHUNK),
        used: 0,
      };
      chunk.used = 0;
      this.uniformChunks.push(chunk);
    }
    const offset = chunk.used;
    chunk.used += Math.ceil(bytes / 256) * 256;
    return { chunk, offset };
  }

  /**
   * A small binding that stands in for a slot a kernel declares but this dispatch leaves unused
   * (multi-tensor kernels pass how many slots hold work in a uniform), so that one pipeline serves
   * every slot count instead of one per count. Read-only and writable spares live in different
   * buffers, and each `index` gets its own range, so spares never alias in one dispatch.
   */
  spareBinding(kind: BindingKind, index: number): BufferBinding {
    const align = this.gpu.info.limits.minStorageBufferOffsetAlignment;
    let spare = this.spareBuffers.get(kind);
    if (!spare || index >= spare.slots) {
      // Recorded commands may still use the old one: keep it until the runtime goes.
      if (spare) this.retiredSpares.push(spare.buffer);
      const slots = Math.max(8, index + 1);
      spare = { buffer: this.device.createBuffer({ size: slots * align, usage: GPUBufferUsage.STORAGE, label: `spare ${kind} bindings` }), slots };
      this.spareBuffers.set(kind, spare);
    }
    return { buffer: spare.buffer, offset: index * align, size: 16 };
  }

  /**
   * Records one dispatch of `spec` with the given buffer bindings (in `spec.bindings` order) and
   * uniform values (in `spec.uniforms` order).
   */
  dispatch(spec: KernelSpec, bindings: readonly BufferBinding[], uniformValues: readonly number[], workgroups: readonly [number, number, number]): void {
    if (bindings.length !== spec.bindings.length) {
      throw new Error(`kernel ${spec.name}: ${spec.bindings.length} bindings declared, ${bindings.length} given`);
    }
    if (uniformValues.length !== spec.uniforms.length) {
      throw new Error(`kernel ${spec.name}: ${spec.uniforms.length} uniforms declared, ${uniformValues.length} given`);
    }
    const limit = this.gpu.info.limits.maxComputeWorkgroupsPerDimension;
    if (workgroups.some((w) => w > limit)) {
      throw new UnsupportedError({ what: 'dispatch size', got: workgroups, where: `kernel ${spec.name}` });
    }
    if (workgroups.some((w) => w === 0)) return;
    const cached = this.pipelineFor(spec);
    const entries: GPUBindGroupEntry[] = bindings.map((b, binding) => ({
      binding,
      resource: { buffer: b.buffer, offset: b.offset, size: b.size },
    }));
    if (spec.uniforms.length > 0) {
      const { chunk, offset } = this.uniformSlot(cached.uniformBytes);
      const view = new DataView(chunk.data, offset, cached.uniformBytes);
      cached.fields.forEach((field, i) => {
        const value = uniformValues[i] ?? 0;
        if (field.type === 'f32') view.setFloat32(i * 4, value, true);
        else if (field.type === 'i32') view.setInt32(i * 4, value, true);
        else view.setUint32(i * 4, value >>> 0, true);
      });
      entries.push({ binding: cached.uniformBinding, resource: { buffer: chunk.buffer, offset, size: cached.uniformBytes } });
    }
    const bindGroup = this.device.createBindGroup({ layout: cached.layout, entries });
    const pass = this.profiling ? this.profiledPass(spec.name) : this.getPass();
    pass.setPipeline(cached.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    this.dispatches += 1;
    this.totalDispatches += 1;
    if (this.profiling) this.endPass();
    if (this.dispatches >= AUTO_FLUSH_DISPATCHES) this.flush();
  }

  /**
   * Starts or stops measuring GPU time per kernel with timestamp queries (each dispatch then gets
   * a compute pass of its own, which costs a little). Needs the `timestamp-query` feature.
   */
  setProfiling(enabled: boolean): void {
    if (enabled && !this.has('timestamp-query')) throw new UnsupportedError({ what: 'kernel profiling without timestamp-query', got: 'timestamp-query missing', where: 'Runtime.setProfiling' });
    this.flush();
    this.profiling = enabled;
  }

  /** GPU time per kernel since profiling started (or the last reset), slowest first. */
  async kernelProfile(reset = false): Promise<KernelTime[]> {
    this.flush();
    await Promise.all(this.profilePending.splice(0));
    const out = [...this.kernelTimes.values()].map((k) => ({ ...k })).sort((a, b) => b.ms - a.ms);
    if (reset) this.kernelTimes.clear();
    return out;
  }

  private profiledPass(kernel: string): GPUComputePassEncoder {
    this.endPass();
    let batch = this.profileBatch;
    if (!batch) {
      const count = 2 * AUTO_FLUSH_DISPATCHES;
      batch = {
        querySet: this.device.createQuerySet({ type: 'timestamp', count }),
        resolve: this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
        readback: this.device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
        kernels: [],
      };
      this.profileBatch = batch;
    }
    const at = 2 * batch.kernels.length;
    batch.kernels.push(kernel);
    this.pass = this.getEncoder().beginComputePass({ timestampWrites: { querySet: batch.querySet, beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 } });
    return this.pass;
  }

  /** Resolves this submit's timestamps into the readback buffer (recorded before the submit). */
  private resolveProfile(): ProfileBatch | null {
    const batch = this.profileBatch;
    if (!batch || batch.kernels.length === 0) return null;
    this.profileBatch = null;
    const bytes = batch.kernels.length * 16;
    const encoder = this.getEncoder();
    encoder.resolveQuerySet(batch.querySet, 0, batch.kernels.length * 2, batch.resolve, 0);
    encoder.copyBufferToBuffer(batch.resolve, 0, batch.readback, 0, bytes);
    return batch;
  }

  private collectProfile(batch: ProfileBatch): void {
    const bytes = batch.kernels.length * 16;
    const done = this.mapAsync(batch.readback, GPUMapMode.READ, 0, bytes).then(() => {
      const t = new BigUint64Array(batch.readback.getMappedRange(0, bytes));
      batch.kernels.forEach((kernel, i) => {
        const begin = t[2 * i] ?? 0n;
        const end = t[2 * i + 1] ?? 0n;
        const entry = this.kernelTimes.get(kernel) ?? { kernel, ms: 0, dispatches: 0 };
        entry.ms += end > begin ? Number(end - begin) / 1e6 : 0;
        entry.dispatches += 1;
        this.kernelTimes.set(kernel, entry);
      });
      batch.readback.unmap();
      for (const b of [batch.resolve, batch.readback]) b.destroy();
      batch.querySet.destroy();
    });
    this.profilePending.push(done);
  }

  /** Records a buffer-to-buffer copy (offsets and size multiples of 4). */
  copy(src: BufferBinding, dst: BufferBinding, size: number): void {
    this.endPass();
    this.getEncoder().copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, size);
  }

  /** Records a zero fill of a buffer region (offset and size multiples of 4). */
  clear(dst: BufferBinding, size: number): void {
    this.endPass();
    this.getEncoder().clearBuffer(dst.buffer, dst.offset, size);
  }

  /** Runs `fn` once after the next submit (e.g. to destroy staging buffers). */
  onSubmit(fn: () => void): void {
    this.afterSubmitHooks.push(fn);
  }

  /** Submits everything recorded so far. */
  flush(): void {
    this.endPass();
    const profiled = this.resolveProfile();
    const encoder = this.encoder;
    this.encoder = null;
    this.dispatches = 0;
    for (const chunk of this.uniformChunks) {
      this.device.queue.writeBuffer(chunk.buffer, 0, chunk.data, 0, chunk.used);
    }
    if (encoder) {
      this.device.queue.submit([encoder.finish()]);
      this.totalSubmits += 1;
    }
    this.uniformFree.push(...this.uniformChunks);
    this.uniformChunks = [];
    this.pool.afterSubmit();
    for (const hook of this.afterSubmitHooks.splice(0)) hook();
    if (profiled) this.collectProfile(profiled);
  }

  /** Submits and waits for the GPU; throws any GPU error reported meanwhile. */
  async sync(): Promise<void> {
    this.flush();
    await this.gpu.sync();
  }

  /**
   * Maps a buffer for host access, like `buffer.mapAsync`, without keeping a CPU core busy while
   * the GPU finishes the work before it.
   */
  mapAsync(buffer: GPUBuffer, mode: number, offset?: number, size?: number): Promise<void> {
    this.totalReadbacks += 1;
    return waitQuietly(() => buffer.mapAsync(mode, offset, size));
  }

  /** Reads `size` bytes of a buffer region back to the host (a sync point). */
  async readBytes(src: BufferBinding, size: number): Promise<ArrayBuffer> {
    const padded = Math.ceil(size / 4) * 4;
    const staging = this.device.createBuffer({ size: Math.max(4, padded), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (padded > 0) this.copy(src, { buffer: staging, offset: 0, size: padded }, padded);
    this.flush();
    try {
      await this.mapAsync(staging, GPUMapMode.READ);
    } catch (cause) {
      this.gpu.throwIfFailed();
      throw new DeviceError(`reading a GPU buffer back failed: ${String(cause)}`, { cause });
    }
    const out = staging.getMappedRange(0, padded).slice(0, size);
    staging.unmap();
    staging.destroy();
    this.gpu.throwIfFailed();
    return out;
  }

  /** Uploads host bytes into a buffer region, ordered after everything recorded so far. */
  writeBytes(dst: BufferBinding, data: ArrayBufferView): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const padded = Math.ceil(bytes.byteLength / 4) * 4;
    if (padded === 0) return;
    if (!this.encoder) {
      // Nothing is pending, so the queue's own write is correctly ordered and cheapest.
      if (padded === bytes.byteLength) this.device.queue.writeBuffer(dst.buffer, dst.offset, bytes);
      else {
        const tmp = new Uint8Array(padded);
        tmp.set(bytes);
        this.device.queue.writeBuffer(dst.buffer, dst.offset, tmp);
      }
      return;
    }
    // Recorded commands may still read this region: stage the data and copy it in order.
    const staging = this.device.createBuffer({ size: padded, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(bytes);
    staging.unmap();
    this.copy({ buffer: staging, offset: 0, size: padded }, dst, padded);
    this.onSubmit(() => staging.destroy());
  }

  memoryStats(): MemoryStats {
    return this.pool.stats();
  }

  resetPeak(): void {
    this.pool.resetPeak();
  }

  /** Sets a cap on live tensor bytes; allocations past it throw OutOfMemoryBudgetError. */
  setMemoryBudget(bytes: number | undefined): void {
    this.pool.budgetBytes = bytes ?? Infinity;
  }

  /** Frees pooled buffers (live tensors keep theirs). */
  trimPool(): void {
    this.flush();
    this.pool.trim();
  }

  destroy(): void {
    this.pool.trim();
    for (const c of [...this.uniformFree, ...this.uniformChunks]) c.buffer.destroy();
    for (const b of [...this.retiredSpares, ...[...this.spareBuffers.values()].map((s) => s.buffer)]) b.destroy();
    this.gpu.destroy();
  }
}
