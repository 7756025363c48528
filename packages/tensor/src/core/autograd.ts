// Reverse-mode autograd on a tape: ops attach a GradNode to their output; backward() walks the
// nodes in reverse topological order. Frozen tensors (requiresGrad false) never get gradients.
import { DTypeError, PeftError, ShapeMismatchError } from '@peft-ts/errors';
import { fromArray, onesLike, empty } from './create.js';
import { GRID_HELPERS, grid1d, type KernelSpec } from './kernel.js';
import { isGradEnabled, noGrad, tidy, withGrad, Tensor, type GradNode } from './tensor.js';

/** True when an op on these inputs should be recorded. */
export function needsGrad(...inputs: readonly (Tensor | null | undefined)[]): boolean {
  return isGradEnabled() && inputs.some((t) => t?.requiresGrad === true);
}

/**
 * Attaches a GradNode to `out` when grad mode is on and an input requires grad. `saved` tensors
 * are kept alive (shared) until the node runs; `backward` gets the output gradient and the saved
 * handles, in order, and returns one gradient (or null) per input.
 */
export function record(
  out: Tensor,
  op: string,
  inputs: readonly (Tensor | null)[],
  saved: readonly Tensor[],
  backward: (gradOutput: Tensor, saved: readonly Tensor[]) => (Tensor | null)[],
): Tensor {
  if (!needsGrad(...inputs)) return out;
  const keep = saved.map((t) => t.share());
  let released = false;
  const node: GradNode = {
    op,
    inputs,
    backward: (g) => {
      if (released) throw new PeftError('GRAPH_FREED', `${op}: backward through a graph that was already freed (call backward once per forward)`);
      return backward(g, keep);
    },
    release: () => {
      if (released) return;
      released = true;
      for (const t of keep) t.dispose();
    },
  };
  out.gradFn = node;
  out.requiresGrad = true;
  return out;
}

const axpySpec: KernelSpec = {
  name: 'axpy',
  variant: 'f32',
  bindings: ['read_write', 'read'],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'alpha', type: 'f32' },
  ],
  wgsl: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
struct Params { n: u32, alpha: f32, }
@group(0) @binding(2) var<uniform> u: Params;
${GRID_HELPERS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = gid(wid, nwg, lid, 256u);
  if (i < u.n) { y[i] = y[i] + u.alpha * x[i]; }
}`,
};

/** y += alpha * x, in place, for f32 tensors of the same shape. */
export function axpyInPlace(y: Tensor, x: Tensor, alpha = 1): Tensor {
  if (y.dtype !== 'f32' || x.dtype !== 'f32') throw new DTypeError({ op: 'axpy', expected: 'f32', got: `${y.dtype}, ${x.dtype}` });
  if (y.numel !== x.numel) throw new ShapeMismatchError({ op: 'axpy', expected: y.shape, got: x.shape });
  y.rt.dispatch(axpySpec, [y.binding(), x.binding()], [y.numel, alpha], grid1d(y.numel, 256));
  return y;
}

/** A copy of `t` with its own storage (same shape/dtype, no autograd link). */
export function clone(t: Tensor, tag = t.storage.tag): Tensor {
  const out = empty(t.rt, t.shape, t.dtype, { tag });
  t.rt.copy(t.binding(), out.binding(), t.byteLength);
  return out;
}

function accumulateLeaf(leaf: Tensor, g: Tensor): void {
  if (leaf.grad) {
    axpyInPlace(leaf.grad, g);
    g.dispose();
  } else if (g.storage.tag === 'grads' && g.storage.refs === 1 && g.shape.length === leaf.shape.length) {
    g.keep();
    leaf.grad = g;
  } else {
    const owned = clone(g, 'grads').keep();
    g.dispose();
    leaf.grad = owned;
  }
}

export interface BackwardOptions {
  /** Keep the graph so backward can run again (saved tensors are not freed). */
  retainGraph?: boolean;
}

/**
 * The nodes reachable from `root` through inputs that require grad, each after all of its
 * inputs (a post-order; walk it backwards for the reverse pass). Iterative, so a long tape does
 * not overflow the stack. Nodes already in `seen` are skipped, and those visited are added to it,
 * so several roots share one order without repeats. Used by autograd and by anything that replays
 * a tape of the same shape (the memory estimate).
 */
export function tapeOrder<T extends { readonly id: number; readonly requiresGrad: boolean }>(
  root: T,
  inputsOf: (node: T) => readonly (T | null | undefined)[],
  seen = new Set<number>(),
): T[] {
  const order: T[] = [];
  const stack: [T, number][] = [[root, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (!top) break;
    const [node, i] = top;
    const inputs = inputsOf(node);
    if (i === 0) {
      if (seen.has(node.id)) {
        stack.pop();
        continue;
      }
      seen.add(node.id);
    }
    if (i < inputs.length) {
      top[1] = i + 1;
      const input = inputs[i];
      if (input?.requiresGrad && !seen.has(input.id)) stack.push([input, 0]);
    } else {
      order.push(node);
      stack.pop();
    }
  }
  return order;
}

/**
 * Back-propagates from `root`. Without `gradient`, root must have one element and the seed is 1.
 * Leaf tensors with requiresGrad accumulate into `.grad` (f32, tag 'grads').
 */
export function backward(root: Tensor, gradient?: Tensor, options: BackwardOptions = {}): void {
  backwardMany([root], gradient ? [gradient] : undefined, options);
}

export function backwardMany(roots: readonly Tensor[], gradients?: readonly Tensor[], options: BackwardOptions = {}): void {
  noGrad(() => {
    // Topological order over tensors reachable through gradFn.
    const order: Tensor[] = [];
    const seen = new Set<number>();
    const grads = new Map<number, Tensor>();
    roots.forEach((root, k) => {
      if (!root.requiresGrad) throw new PeftError('NO_GRAD', `backward: ${root.toString()} does not require grad (no input of it has requiresGrad)`);
      let seed = gradients?.[k];
      if (seed) {
        if (seed.numel !== root.numel) throw new ShapeMismatchError({ op: 'backward', expected: root.shape, got: seed.shape });
        seed = clone(seed);
      } else {
        if (root.numel !== 1) throw new ShapeMismatchError({ op: 'backward', expected: 'a one-element tensor (or pass a gradient)', got: root.shape });
        seed = onesLike(root);
      }
      const prev = grads.get(root.id);
      if (prev) {
        axpyInPlace(prev, seed);
        seed.dispose();
      } else grads.set(root.id, seed);
      for (const t of tapeOrder(root, (node) => node.gradFn?.inputs ?? [], seen)) order.push(t);
    });
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      if (!t) continue;
      const g = grads.get(t.id);
      grads.delete(t.id);
      if (!g) continue;
      const node = t.gradFn;
      if (!node) {
        accumulateLeaf(t, g);
        continue;
      }
      const inputGrads = node.backward(g);
      g.dispose();
      if (!options.retainGraph) node.release();
      node.inputs.forEach((input, j) => {
        const ig = inputGrads[j];
        if (!input || !ig) {
          ig?.dispose();
          return;
        }
        if (!input.requiresGrad) {
          ig.dispose();
          return;
        }
        if (ig.numel !== input.numel) {
          throw new ShapeMismatchError({ op: `${node.op} backward`, expected: input.shape, got: ig.shape, detail: `gradient of input ${j}` });
        }
        const prev = grads.get(input.id);
        if (prev) {
          axpyInPlace(prev, ig);
          ig.dispose();
        } else grads.set(input.id, ig);
      });
    }
    for (const g of grads.values()) g.dispose();
  });
}

/** Drops the graph below `t` without computing gradients (frees saved tensors). */
export function freeGraph(t: Tensor): void {
  const stack = [t];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const x = stack.pop();
    if (!x || seen.has(x.id)) continue;
    seen.add(x.id);
    const node = x.gradFn;
    if (!node) continue;
    node.release();
    for (const input of node.inputs) if (input) stack.push(input);
  }
}

/** A new leaf on the same storage, outside any graph. */
export function detach(t: Tensor, requiresGrad = false): Tensor {
  const d = t.share();
  d.kept = false;
  d.requiresGrad = requiresGrad;
  return d;
}

/**
 * Gradient checkpointing: runs `fn` without recording, and recomputes it with recording during
 * backward. Parameters used inside `fn` get their gradients then. The RNG position is restored
 * for the recomputation so dropout masks repeat exactly.
 */
export function checkpoint(fn: (...inputs: Tensor[]) => Tensor, ...inputs: Tensor[]): Tensor {
  if (!isGradEnabled()) return fn(...inputs);
  const rt = inputs[0]?.rt;
  if (!rt) throw new PeftError('CHECKPOINT', 'checkpoint: needs at least one input tensor');
  const rngAt = rt.rngOffset;
  // Only the block's output outlives the forward: its intermediates are recomputed in backward.
  const out = noGrad(() => tidy(() => fn(...inputs)));
  const saved = inputs.map((t) => t.share());
  let released = false;
  out.gradFn = {
    op: 'checkpoint',
    inputs,
    backward: (g) =>
      withGrad(true, () => {
        const resume = rt.rngOffset;
        rt.rngOffset = rngAt;
        const leaves = saved.map((s, i) => detach(s, inputs[i]?.requiresGrad ?? false));
        // The recomputed activations live only while this block's backward runs: without their
        // own scope they would stay until the caller's scope ends (all blocks at once, which is
        // what checkpointing is meant to avoid) or, outside any scope, for good. Gradients of the
        // leaves and parameters are kept tensors and survive the scope.
        tidy(() => {
          const again = fn(...leaves);
          rt.rngOffset = resume;
          if (again.requiresGrad) backward(again, g);
        });
        const result = leaves.map((l) => {
          const lg = l.grad;
          l.grad = null;
          if (lg) lg.kept = false;
          l.dispose();
          return lg;
        });
        return result;
      }),
    release: () => {
      if (released) return;
      released = true;
      for (const s of saved) s.dispose();
    },
  };
  out.requiresGrad = true;
  return out;
}

/** A host-side scalar as an f32 tensor on the same runtime as `like`. */
export function scalarLike(like: Tensor, value: number): Tensor {
  return fromArray(like.rt, [value], [], 'f32');
}
