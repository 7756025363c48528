// Replays one training step (forward, causal-LM loss, backward) on sizes alone: every buffer the
// model's ops allocate and free, in the order the runtime does, to find the step's peak bytes.
import { sizeClass, tapeOrder } from '@peft-ts/tensor';
import type { ModelConfig } from '../config/config.js';

/**
 * A buffer of the replay. `refs` counts handles, as the runtime's storage does: a view (reshape,
 * cast backward) shares its source's buffer, which is freed when its last handle goes.
 */
interface Buf {
  bytes: number;
  refs: number;
  /** Bytes the pool's size class adds to the buffer (not counted in live bytes). */
  slack: number;
  phase: Phase;
}

/** What a buffer is for, to break the peak down. */
export type Phase = 'forward' | 'recomputed' | 'backward' | 'decode' | 'grads';
const PHASES: readonly Phase[] = ['forward', 'recomputed', 'backward', 'decode', 'grads'];

/** A tensor of the replay: its buffer, its element count, and whether it is on the tape. */
interface Sym {
  id: number;
  buf: Buf;
  numel: number;
  requiresGrad: boolean;
  node: Node | null;
}

interface Node {
  inputs: (Sym | null)[];
  /** Buffers kept only for backward (a norm's reciprocal RMS, attention's logsumexp). */
  saved: Buf[];
  /** Allocates the input gradients (null where none), with any temporaries the op frees itself. */
  backward(g: Buf): (Buf | null)[];
}

/** Live and peak bytes of the replay, counted as the runtime counts them: logical sizes, 4 bytes at least. */
class Ledger {
  live = 0;
  peak = 0;
  slack = 0;
  slackAtPeak = 0;
  phase: Phase = 'forward';
  private readonly byPhase = new Map<Phase, number>(PHASES.map((p) => [p, 0]));
  atPeak = new Map<Phase, number>(this.byPhase);

  alloc(bytes: number, phase: Phase = this.phase): Buf {
    const b = Math.max(4, bytes);
    const slack = sizeClass(b) - b;
    this.live += b;
    this.slack += slack;
    this.byPhase.set(phase, (this.byPhase.get(phase) ?? 0) + b);
    if (this.live > this.peak) {
      this.peak = this.live;
      this.slackAtPeak = this.slack;
      this.atPeak = new Map(this.byPhase);
    }
    return { bytes: b, refs: 1, slack, phase };
  }

  share(buf: Buf): Buf {
    buf.refs += 1;
    return buf;
  }

  free(buf: Buf): void {
    buf.refs -= 1;
    if (buf.refs === 0) {
      this.live -= buf.bytes;
      this.slack -= buf.slack;
      this.byPhase.set(buf.phase, (this.byPhase.get(buf.phase) ?? 0) - buf.bytes);
    }
  }
}

export interface StepShape {
  batch: number;
  seqLen: number;
  /** LoRA rank per target linear (by HF short name); absent names have no adapter. */
  loraRank: ReadonlyMap<string, number>;
  quantized: boolean;
  /** A software adapter decodes a whole 4-bit weight to f32 for one product; a GPU decodes tiles. */
  decode4bit: 'whole-layer' | 'tiles';
  checkpointing: boolean;
  activationDtype: 'f32' | 'f16';
  /** LoRA dropout probability: above 0 each adapter multiplies a dropped-out copy of its input. */
  loraDropout: number;
  /** Full fine-tuning: every linear weight takes a gradient. */
  trainBase: boolean;
}

export interface StepPeak {
  /** Highest live bytes of the step, over what was live before it (the weights and optimizer state). */
  peak: number;
  /**
   * The peak by what its buffers are for: tensors the forward left alive, one checkpointed layer's
   * recomputation, the backward's activation gradients and temporaries, a decoded 4-bit weight,
   * and the trainable parameters' gradients.
   */
  atPeak: Record<Phase, number>;
  /** Bytes the forward leaves alive until the step ends (the step's scope frees them then). */
  forwardKept: number;
  /** Of which: the logits, f32 over the vocabulary. */
  logits: number;
  /** The largest 4-bit decoding temporary (a whole weight in f32), 0 without one. */
  decodeTemp: number;
  /** Size-class rounding of the buffers live at the peak: device bytes beyond the accounted ones. */
  poolSlack: number;
}

/**
 * The replay. Mirrors CausalLM's forward (Llama-family, Phi-3 and GPT-2 layouts), LoRA layers,
 * causalLmLoss and the tape's reverse walk (same visiting order, same accumulation). As in the
 * trainer's step, every tensor an op creates stays alive until the step's scope ends unless the op
 * frees it; checkpoint() opens its own scopes (the layer's forward keeps only its output, the
 * recomputation is freed after that layer's backward). Any change to what an op allocates or
 * frees must be mirrored here: the trainer's memory test compares the two.
 */
export function traceTrainingStep(config: ModelConfig, s: StepShape): StepPeak {
  const m = new Ledger();
  let nextId = 1;
  let recording = true;
  /** Outputs created inside a nested scope (a checkpointed layer), freed when it closes. */
  let scope: Buf[] | null = null;
  const tokens = s.batch * s.seqLen;
  const F32 = 4;
  let decodeTemp = 0;

  const sym = (buf: Buf, numel: number, requiresGrad: boolean, node: Node | null = null): Sym => ({ id: nextId++, buf, numel, requiresGrad, node });
  /** A new tensor of `numel` elements at `bytesPer` bytes each, on the tape when an input is. */
  const op = (numel: number, bytesPer: number, inputs: (Sym | null)[], saved: Buf[], backward: Node['backward']): Sym => {
    const out = m.alloc(numel * bytesPer);
    return attach(out, numel, inputs, saved, backward);
  };
  const attach = (out: Buf, numel: number, inputs: (Sym | null)[], saved: Buf[], backward: Node['backward']): Sym => {
    scope?.push(out);
    const rec = recording && inputs.some((t) => t?.requiresGrad === true);
    if (!rec) {
      for (const b of saved) m.free(b);
      return sym(out, numel, false);
    }
    return sym(out, numel, true, { inputs, saved, backward });
  };
  const needs = (t: Sym | null): boolean => t?.requiresGrad === true;
  const gradOf = (t: Sym | null): Buf | null => (needs(t) && t ? m.alloc(t.numel * F32) : null);
  /** A trainable parameter: its own storage lives outside the step (counted under weights). */
  const params = new Set<number>();
  const param = (numel: number): Sym => {
    const p = sym({ bytes: numel * F32, refs: 1, slack: 0, phase: 'grads' }, numel, true);
    params.add(p.id);
    return p;
  };

  // ---- ops -----------------------------------------------------------------------------------
  const view = (x: Sym): Sym => attach(m.share(x.buf), x.numel, [x], [], (g) => [m.share(g)]);
  const elementwise = (x: Sym): Sym => op(x.numel, F32, [x], [], () => [gradOf(x)]);
  const add = (a: Sym, b: Sym): Sym => op(a.numel, F32, [a, b], [], () => [gradOf(a), gradOf(b)]);
  const cast16 = (x: Sym): Sym => op(x.numel, 2, [x], [], (g) => [m.share(g)]);
  const norm = (x: Sym, stats: number): Sym => {
    const out = m.alloc(x.numel * F32);
    const rec = recording && x.requiresGrad;
    const saved = rec ? [m.alloc(stats * F32)] : [];
    return attach(out, x.numel, [x], saved, () => [gradOf(x)]);
  };
  /** x [tokens, inF] times W^T, W [outF, inF]; a trainable W (LoRA A/B, full fine-tuning) gets dW. */
  const matmul = (x: Sym, inF: number, outF: number, w: Sym | null): Sym =>
    op(tokens * outF, F32, [x, w], [], () => {
      const gx = gradOf(x);
      const gw = w ? m.alloc(inF * outF * F32) : null;
      return [gx, gw];
    });
  /** A 4-bit product: the output, with the whole weight decoded to f32 beside it on a software adapter. */
  const matmul4bit = (rows: number, inF: number, outF: number): Buf => {
    const tiledOut = m.alloc(rows * outF * F32);
    if (s.decode4bit !== 'whole-layer' || rows <= 8) return tiledOut;
    m.free(tiledOut);
    const dense = m.alloc(inF * outF * F32, 'decode');
    decodeTemp = Math.max(decodeTemp, inF * outF * F32);
    const out = m.alloc(rows * outF * F32);
    m.free(dense);
    return out;
  };
  const baseLinear = (x: Sym, inF: number, outF: number): Sym => {
    if (s.trainBase) return matmul(x, inF, outF, param(inF * outF));
    if (!s.quantized) return op(tokens * outF, F32, [x], [], () => [gradOf(x)]);
    return attach(matmul4bit(tokens, inF, outF), tokens * outF, [x], [], () => [needs(x) ? matmul4bit(tokens, outF, inF) : null]);
  };
  const linear = (short: string, x: Sym, inF: number, outF: number): Sym => {
    let y = baseLinear(x, inF, outF);
    const r = s.loraRank.get(short);
    if (r === undefined) return y;
    const xin = s.loraDropout > 0 ? elementwise(x) : x;
    const a = matmul(xin, inF, r, param(r * inF));
    const delta = matmul(a, r, outF, param(outF * r));
    y = add(y, elementwise(delta));
    return y;
  };
  const attention = (q: Sym, k: Sym, v: Sym, heads: number): Sym => {
    const tok = m.alloc(tokens * 2 * 4);
    const out = m.alloc(q.numel * F32);
    const lse = m.alloc(tokens * heads * F32);
    return attach(out, q.numel, [q, k, v], [tok, lse], () => {
      const stats = m.alloc(tokens * heads * 2 * F32);
      const dq = gradOf(q);
      const dk = m.alloc(k.numel * F32);
      const dv = m.alloc(v.numel * F32);
      m.free(stats);
      return [dq, dk, dv];
    });
  };
  /** Pieces of the last dim, each a copy; each piece's gradient is a zero-filled tensor of the whole. */
  const split = (x: Sym, widths: number[]): Sym[] =>
    widths.map((w) => op(tokens * w, F32, [x], [], () => [gradOf(x)]));

  // ---- the model ------------------------------------------------------------------------------
  const c = config;
  const H = c.hiddenSize;
  const I = c.intermediateSize;
  const D = c.headDim;
  const qDim = c.numHeads * D;
  const kvDim = c.numKvHeads * D;
  const between = (h: Sym): Sym => (s.activationDtype === 'f16' ? cast16(h) : h);

  const llamaLayer = (x: Sym): Sym => {
    const xn = norm(x, tokens);
    let q: Sym;
    let k: Sym;
    let v: Sym;
    if (c.arch === 'phi3') {
      const qkv = linear('qkv_proj', xn, H, qDim + 2 * kvDim);
      [q, k, v] = split(qkv, [qDim, kvDim, kvDim]) as [Sym, Sym, Sym];
    } else {
      q = linear('q_proj', xn, H, qDim);
      k = linear('k_proj', xn, H, kvDim);
      v = linear('v_proj', xn, H, kvDim);
    }
    const q4 = elementwise(view(q));
    const k4 = elementwise(view(k));
    const a = attention(q4, k4, view(v), c.numHeads);
    const h1 = add(x, linear('o_proj', view(a), qDim, H));
    const hn = norm(h1, tokens);
    let act: Sym;
    if (c.arch === 'phi3') {
      const [gate, up] = split(linear('gate_up_proj', hn, H, 2 * I), [I, I]) as [Sym, Sym];
      act = siluMul(gate, up);
    } else {
      act = siluMul(linear('gate_proj', hn, H, I), linear('up_proj', hn, H, I));
    }
    return add(h1, linear('down_proj', act, I, H));
  };
  const siluMul = (gate: Sym, up: Sym): Sym => op(gate.numel, F32, [gate, up], [], () => [gradOf(gate), gradOf(up)]);
  const gpt2Layer = (x: Sym): Sym => {
    const xn = norm(x, 2 * tokens);
    const qkv = linear('c_attn', xn, H, 3 * H);
    const [q, k, v] = split(qkv, [H, H, H]) as [Sym, Sym, Sym];
    const a = attention(view(q), view(k), view(v), c.numHeads);
    const h1 = add(x, linear('c_proj', view(a), H, H));
    const hn = norm(h1, 2 * tokens);
    const mlp = linear('c_proj', elementwise(linear('c_fc', hn, H, I)), I, H);
    return add(h1, mlp);
  };
  const layer = c.arch === 'gpt2' ? gpt2Layer : llamaLayer;

  /** Runs fn in a nested scope: what it creates is freed when it returns, except its result. */
  const scoped = (fn: () => Sym): Sym => {
    const outer = scope;
    const inner: Buf[] = [];
    scope = inner;
    let out: Sym;
    try {
      out = fn();
    } finally {
      scope = outer;
    }
    for (const b of inner) if (b !== out.buf) m.free(b);
    scope?.push(out.buf);
    return out;
  };

  /**
   * Gradient checkpointing: the layer runs off the tape in its own scope (only its output stays),
   * and again on the tape during backward, in a scope that closes once that layer's backward is done.
   */
  const checkpointed = (x: Sym): Sym => {
    const prev = recording;
    recording = false;
    const out = scoped(() => layer(x));
    recording = prev;
    if (!recording) return out;
    return sym(out.buf, out.numel, true, {
      inputs: [x],
      saved: [],
      backward: (g) => {
        recording = true;
        const leaf = sym(m.share(x.buf), x.numel, x.requiresGrad);
        const phase = m.phase;
        m.phase = 'recomputed';
        let leafGrad = new Map<number, Buf>();
        const outer = scope;
        const inner: Buf[] = [];
        scope = inner;
        const again = layer(leaf);
        m.phase = phase;
        if (again.requiresGrad) leafGrad = walk(again, m.alloc(g.bytes));
        scope = outer;
        for (const b of inner) m.free(b);
        m.free(leaf.buf);
        recording = prev;
        return [leafGrad.get(leaf.id) ?? null];
      },
    });
  };

  /** The tape's reverse walk from `root` with seed `seed`; returns the gradients of the leaves it reached. */
  const walk = (root: Sym, seed: Buf): Map<number, Buf> => {
    const order = tapeOrder(root, (t) => t.node?.inputs ?? []);
    const grads = new Map<number, Buf>([[root.id, seed]]);
    const leaves = new Map<number, Buf>();
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      if (!t) continue;
      const g = grads.get(t.id);
      grads.delete(t.id);
      if (!g) continue;
      const node = t.node;
      if (!node) {
        // Accumulation into a leaf's .grad: matmul's gradient is copied into a 'grads' buffer.
        const owned = m.alloc(g.bytes, params.has(t.id) ? 'grads' : m.phase);
        m.free(g);
        leaves.set(t.id, owned);
        continue;
      }
      const inputGrads = node.backward(g);
      m.free(g);
      for (const b of node.saved) m.free(b);
      node.saved = [];
      node.inputs.forEach((input, j) => {
        const ig = inputGrads[j];
        if (!ig) return;
        if (!input?.requiresGrad || grads.has(input.id)) {
          m.free(ig);
          return;
        }
        grads.set(input.id, ig);
      });
    }
    for (const g of grads.values()) m.free(g);
    return leaves;
  };

  // The trainer's inputs: ids, attention mask, labels; CausalLM adds default positions.
  for (let i = 0; i < 4; i++) m.alloc(tokens * 4);
  let h: Sym;
  if (c.arch === 'gpt2') {
    const wte = sym(m.alloc(tokens * H * F32), tokens * H, false);
    const wpe = sym(m.alloc(tokens * H * F32), tokens * H, false);
    h = between(add(wte, wpe));
  } else {
    h = between(sym(m.alloc(tokens * H * F32), tokens * H, false));
  }
  for (let i = 0; i < c.numLayers; i++) h = between(s.checkpointing ? checkpointed(h) : layer(h));
  const hn = norm(h, c.arch === 'gpt2' ? 2 * tokens : tokens);
  const logits = op(tokens * c.vocabSize, F32, [hn], [], () => [gradOf(hn)]);
  const forwardKept = m.live;
  // causalLmLoss: shifted labels, per-row logsumexp and loss, a weight; the scalar loss stays.
  const shifted = m.alloc(tokens * 4);
  const lse = m.alloc(tokens * F32);
  const rowLoss = m.alloc(tokens * F32);
  const loss = m.alloc(4);
  const weight = m.alloc(4);
  m.free(rowLoss);
  void loss;
  const lossSym = sym({ bytes: 4, refs: 1, slack: 0, phase: 'forward' }, 1, true, {
    inputs: [logits],
    saved: [shifted, lse, weight],
    backward: () => [m.alloc(tokens * c.vocabSize * F32)],
  });
  m.phase = 'backward';
  if (lossSym.node && logits.requiresGrad) walk(lossSym, m.alloc(4));
  const atPeak = Object.fromEntries(PHASES.map((p) => [p, m.atPeak.get(p) ?? 0])) as Record<Phase, number>;
  return { peak: m.peak, atPeak, forwardKept, logits: logits.buf.bytes, decodeTemp, poolSlack: m.slackAtPeak };
}
