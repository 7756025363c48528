// Tensor handles over reference-counted GPU storage. A handle is released with dispose() or
// by the enclosing tidy() scope; storage goes back to the pool when its last handle goes.
import { PeftError, ShapeMismatchError } from '@peft-ts/errors';
import { bf16ToF32, f16ToF32 } from '@peft-ts/safetensors';
import { DTYPE_BYTES, storageBytes, type DType } from './dtype.js';
import type { MemoryTag } from './memory.js';
import type { BufferBinding, Runtime } from './runtime.js';

export type Shape = readonly number[];

export function numelOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(op: string, shape: Shape): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeMismatchError({ op, expected: 'non-negative integer dims', got: shape });
  }
}

/** Contiguous row-major strides. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i] ?? 1;
  }
  return strides;
}

export class Storage {
  refs = 1;
  constructor(
    readonly rt: Runtime,
    readonly buffer: GPUBuffer,
    /** Allocated (size-class) bytes. */
    readonly size: number,
    /** Logical bytes, as counted in memory accounting. */
    readonly bytes: number,
    readonly tag: MemoryTag,
  ) {}

  release(): void {
    this.refs -= 1;
    if (this.refs === 0) this.rt.pool.release(this.buffer, this.size, this.bytes, this.tag);
  }
}

/** A node of the autograd tape: the op that produced a tensor and how to push gradients back. */
export interface GradNode {
  readonly op: string;
  /** The op's tensor inputs, in order; null where an input takes no gradient. */
  readonly inputs: readonly (Tensor | null)[];
  /**
   * Gradients for each input given the output gradient (owned by the caller); return null for an
   * input that needs none. Only inputs with `requiresGrad` need one.
   */
  backward(gradOutput: Tensor): (Tensor | null)[];
  /** Frees tensors saved for backward. Called once the node has run or the graph is dropped. */
  release(): void;
}

// ---- scopes ------------------------------------------------------------------------------

const scopes: Set<Tensor>[] = [];

/** Runs fn and disposes every tensor created inside it except those it returns (nested values too). */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new PeftError('TIDY_ASYNC', 'tidy() takes a synchronous function; use tidyAsync()');
  finishScope(scope, result);
  return result;
}

/** tidy() for async functions: tensors created before the promise settles belong to the scope. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } finally {
    const i = scopes.lastIndexOf(scope);
    if (i >= 0) scopes.splice(i, 1);
  }
  finishScope(scope, result);
  return result;
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectTensors(v, out, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectTensors(v, out, depth + 1);
}

function finishScope(scope: Set<Tensor>, result: unknown): void {
  const keep = new Set<Tensor>();
  collectTensors(result, keep);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keep.has(t)) parent?.add(t);
    else if (!t.kept) t.dispose();
  }
}

function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

// ---- grad mode ---------------------------------------------------------------------------

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording ops on the tape. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function withGrad<T>(enabled: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = enabled;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

// ---- tensor ------------------------------------------------------------------------------

export interface TensorOptions {
  tag?: MemoryTag;
  requiresGrad?: boolean;
  name?: string;
}

export type HostArray = Float32Array | Int32Array | Uint32Array | Uint16Array | Uint8Array;

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly rt: Runtime;
  readonly shape: Shape;
  readonly dtype: DType;
  readonly storage: Storage;
  /** Byte offset of element 0 inside the storage buffer (a multiple of 4). */
  readonly byteOffset: number;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  gradFn: GradNode | null = null;
  name: string | undefined;
  /** Survives tidy() scopes (parameters, weights): only dispose() frees it. */
  kept = false;
  private disposedFlag = false;

  /** @internal Use the creation functions (fromArray, zeros, ...) or ops. */
  constructor(rt: Runtime, storage: Storage, shape: Shape, dtype: DType, byteOffset = 0, options: TensorOptions = {}) {
    this.rt = rt;
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.byteOffset = byteOffset;
    this.requiresGrad = options.requiresGrad ?? false;
    this.name = options.name;
    track(this);
  }

  get numel(): number {
    return numelOf(this.shape);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Bytes of this tensor's elements (16-bit and 8-bit types packed), rounded up to whole words. */
  get byteLength(): number {
    return storageBytes(this.dtype, this.numel);
  }

  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** The buffer region a kernel binds for this tensor. */
  binding(): BufferBinding {
    this.assertAlive('bind');
    return { buffer: this.storage.buffer, offset: this.byteOffset, size: Math.max(4, this.byteLength) };
  }

  assertAlive(op: string): void {
    if (this.disposedFlag) {
      throw new PeftError('DISPOSED', `${op}: tensor${this.name ? ` "${this.name}"` : ''} [${this.shape.join(', ')}] was already disposed`);
    }
  }

  /** Marks the tensor as surviving tidy() scopes; returns it. */
  keep(): this {
    this.kept = true;
    return this;
  }

  /** Releases this handle (and its gradient). Storage is freed once no handle or saved copy uses it. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.storage.release();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** A new handle on the same storage (for saving a tensor for backward). No autograd link. */
  share(): Tensor {
    this.assertAlive('share');
    this.storage.refs += 1;
    const t = new Tensor(this.rt, this.storage, this.shape, this.dtype, this.byteOffset);
    t.kept = true;
    return t;
  }

  /** Copies the elements to the host: floats as Float32Array (f16/bf16 widened), i32 as Int32Array, u32 as Uint32Array, u8 as Uint8Array. */
  async toArray(): Promise<Float32Array | Int32Array | Uint32Array | Uint8Array> {
    const raw = await this.toRaw();
    switch (this.dtype) {
      case 'f16':
        return f16ToF32(raw as Uint16Array);
      case 'bf16':
        return bf16ToF32(raw as Uint16Array);
      default:
        return raw as Float32Array | Int32Array | Uint32Array | Uint8Array;
    }
  }

  /** Copies the elements to the host in their storage form (16-bit floats as raw Uint16Array words). */
  async toRaw(): Promise<HostArray> {
    this.assertAlive('toArray');
    const bytes = this.numel * DTYPE_BYTES[this.dtype];
    const data = await this.rt.readBytes(this.binding(), bytes);
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(data);
      case 'i32':
        return new Int32Array(data);
      case 'u32':
        return new Uint32Array(data);
      case 'f16':
      case 'bf16':
        return new Uint16Array(data);
      case 'u8':
        return new Uint8Array(data);
    }
  }

  /** The single element of a one-element tensor, as a number. */
  async item(): Promise<number> {
    if (this.numel !== 1) throw new ShapeMismatchError({ op: 'item', expected: 'one element', got: this.shape });
    const a = await this.toArray();
    return a[0] ?? NaN;
  }

  toString(): string {
    return `Tensor(${this.name ? `${this.name}, ` : ''}[${this.shape.join(', ')}], ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

// Half-float conversions are the ones @peft-ts/safetensors defines (round-to-nearest-even, NaN and
// Inf kept), under the names tensor code uses.
export {
  f16ToF32 as f16WordsToF32,
  bf16ToF32 as bf16WordsToF32,
  f32ToBf16Scalar as f32ToBf16Bits,
  f32ToF16Scalar as f32ToF16Bits,
} from '@peft-ts/safetensors';
