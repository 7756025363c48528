// End-to-end training benchmark: one optimizer step (forward, loss, backward, clipping, AdamW) of a
// LoRA or QLoRA model with random weights made on the device, at synthetic and real model shapes.
import { LoraModel } from '@peft-ts/lora';
import { CausalLM, DenseLinear, estimateMemory, modelLayout, parseModelConfig, NAMED_SIZES, type Linear, type ModelConfig } from '@peft-ts/models';
import { Linear4bit, quantize4bitGpu } from '@peft-ts/nf4-quant/gpu';
import { AdamW, clipGradNorm } from '@peft-ts/paged-optim';
import { backward, causalLmLoss, fromArray, full, randn, scale, tidy, type Runtime, type Tensor } from '@peft-ts/tensor';
import { stats, type BenchResult, type SuiteOptions } from './types.js';

export interface TrainCase {
  name: string;
  /** config.json fields of the model shape. */
  config: Record<string, unknown>;
  method: 'lora' | 'qlora';
  checkpointing: boolean;
  batch: number;
  seq: number;
  r: number;
  alpha: number;
  /** Runs on a software adapter only when asked for by name. */
  big: boolean;
  /**
   * Exactly this many steps, memory recorded after each from the first: for shapes where a step
   * takes minutes on a software adapter. Without it: warm-up steps, then steps for at least 10 s.
   */
  steps?: number;
}

const TINY = { vocab_size: 256, n_positions: 64, max_position_embeddings: 64 };
const SMALL = { vocab_size: 8192, n_positions: 256, max_position_embeddings: 256 };
const gpt2 = (d: number, layers: number, extra: Record<string, unknown>) => ({ model_type: 'gpt2', n_embd: d, n_layer: layers, n_head: 4, ...extra });
const llama = (d: number, layers: number, extra: Record<string, unknown>) => ({
  model_type: 'llama',
  hidden_size: d,
  intermediate_size: Math.floor((d * 8) / 3 / 16) * 16,
  num_hidden_layers: layers,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  ...extra,
});

function cases(): TrainCase[] {
  const small = (name: string, config: Record<string, unknown>, method: 'lora' | 'qlora'): TrainCase => ({ name, config, method, checkpointing: false, batch: 2, seq: 128, r: 8, alpha: 16, big: false });
  const real = (shape: string, method: 'lora' | 'qlora', checkpointing: boolean): TrainCase => ({
    name: `${shape} ${method}${checkpointing ? ' ckpt' : ''}`,
    config: NAMED_SIZES[shape === 'llama2-7b' ? '7b' : shape] ?? {},
    method,
    checkpointing,
    batch: 4,
    seq: 512,
    r: 16,
    alpha: 32,
    big: true,
  });
  return [
    { name: 'tiny gpt2 lora', config: gpt2(64, 2, TINY), method: 'lora', checkpointing: false, batch: 2, seq: 32, r: 8, alpha: 16, big: false },
    { name: 'tiny llama lora', config: llama(64, 2, TINY), method: 'lora', checkpointing: false, batch: 2, seq: 32, r: 8, alpha: 16, big: false },
    small('small gpt2 lora', gpt2(256, 4, SMALL), 'lora'),
    small('small llama lora', llama(256, 4, SMALL), 'lora'),
    small('small llama qlora', llama(256, 4, SMALL), 'qlora'),
    { ...small('small llama lora ckpt', llama(256, 4, SMALL), 'lora'), checkpointing: true },
    { ...small('small llama qlora ckpt', llama(256, 4, SMALL), 'qlora'), checkpointing: true },
    real('qwen2.5-0.5b', 'lora', false),
    real('qwen2.5-0.5b', 'qlora', true),
    real('tinyllama-1.1b', 'lora', false),
    real('tinyllama-1.1b', 'qlora', false),
    real('tinyllama-1.1b', 'qlora', true),
    real('llama2-7b', 'qlora', true),
    // Memory step to step on a real shape at a size a software adapter finishes in minutes.
    { ...real('tinyllama-1.1b', 'qlora', true), name: 'tinyllama-1.1b qlora ckpt 1x128', batch: 1, seq: 128, steps: 5 },
  ];
}

export const TRAIN_CASES: readonly TrainCase[] = cases();

/** Cases the suite runs: those matching `--case` (a prefix, e.g. "small" or "tiny llama"), else the default set for the device. */
export function selectTrainCases(rt: Runtime, filter: string | undefined): TrainCase[] {
  if (filter) return TRAIN_CASES.filter((c) => filter.split(',').some((f) => c.name === f || c.name.startsWith(`${f} `)));
  return TRAIN_CASES.filter((c) => !c.big || !rt.gpu.info.isSoftware);
}

/** A weight of `shape` drawn from N(0, 0.02^2) on the device (GPT-2/Llama's initializer range). */
function randomWeight(rt: Runtime, shape: number[]): Tensor {
  // scale() binds big tensors in pieces (an embedding passes the 128 MiB binding limit of a software adapter).
  return tidy(() => scale(randn(rt, shape), 0.02)).keep();
}

/** Builds the model with random weights directly on the device; linear weights are quantized to NF4 on the GPU for QLoRA. */
export async function buildModel(rt: Runtime, config: ModelConfig, method: 'lora' | 'qlora'): Promise<CausalLM> {
  const layout = modelLayout(config);
  const tensors = new Map<string, Tensor>();
  for (const t of layout.others) {
    if (t.kind === 'bias') continue;
    // Norm weights start at one and their biases at zero, as in a fresh model.
    const value = t.name.endsWith('.bias') ? 0 : 1;
    tensors.set(t.name, t.kind === 'norm' ? full(rt, [...t.shape], value, 'f32', { tag: 'weights', name: t.name }).keep() : randomWeight(rt, [...t.shape]));
  }
  const linears = new Map<string, Linear>();
  for (const l of layout.linears) {
    const bias = l.bias ? fromArray(rt, new Float32Array(l.outFeatures), [l.outFeatures], 'f32', { tag: 'weights', name: `${l.name}.bias` }).keep() : null;
    const weight = randomWeight(rt, [l.outFeatures, l.inFeatures]);
    if (method === 'qlora') {
      const q = await quantize4bitGpu(weight, { doubleQuant: true, name: `${l.name}.weight` });
      weight.dispose();
      linears.set(l.name, new Linear4bit(l.name, q, bias));
    } else {
      linears.set(l.name, new DenseLinear(l.name, weight, bias));
    }
  }
  const lmHead = layout.lmHead ? new DenseLinear('lm_head', randomWeight(rt, [layout.lmHead.outFeatures, layout.lmHead.inFeatures])) : null;
  return new CausalLM(rt, { config, linears, tensors, lmHead });
}

/** Deterministic token ids in [0, vocab). */
export function tokens(n: number, vocab: number, seed: number): Int32Array {
  let s = seed >>> 0 || 1;
  return Int32Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % vocab;
  });
}

interface Counters {
  dispatches: number;
  submits: number;
  readbacks: number;
}

function counters(rt: Runtime): Counters {
  const r = rt as Runtime & { totalReadbacks?: number };
  return { dispatches: rt.totalDispatches, submits: rt.totalSubmits, readbacks: r.totalReadbacks ?? NaN };
}

/**
 * One optimizer step on `ids` [batch, seq] as both inputs and labels, every position attended:
 * forward, loss, backward, gradient clipping to norm 1, the optimizer's update; synced at the
 * end. `mark` is awaited after the forward, the backward and the update (for phase timing).
 */
export async function optimizerStep(
  model: CausalLM,
  params: Tensor[],
  optimizer: AdamW,
  ids: Int32Array,
  shape: number[],
  mark?: (phase: 'forward' | 'backward' | 'optimizer') => Promise<void>,
): Promise<number> {
  const rt = model.rt;
  const mask = new Int32Array(ids.length).fill(1);
  const lossT = tidy(() => {
    const logits = model.forward(fromArray(rt, ids, shape, 'i32'), { attentionMask: fromArray(rt, mask, shape, 'i32') });
    return causalLmLoss(logits, fromArray(rt, ids, shape, 'i32')).keep();
  });
  await mark?.('forward');
  backward(lossT);
  await mark?.('backward');
  const norm = clipGradNorm(params, 1);
  const loss = await lossT.item();
  await norm.item();
  lossT.dispose();
  norm.dispose();
  await optimizer.step();
  optimizer.zeroGrad();
  await rt.sync();
  await mark?.('optimizer');
  return loss;
}

export async function runTrainCase(rt: Runtime, c: TrainCase, opts: SuiteOptions): Promise<BenchResult[]> {
  const config = parseModelConfig(c.config, `bench case "${c.name}"`);
  rt.trimPool();
  rt.resetPeak();
  // Each case draws the same weights whatever ran before it, so its step-0 loss is comparable across runs and commits.
  rt.manualSeed(1234);
  const model = await buildModel(rt, config, c.method);
  model.setGradientCheckpointing(c.checkpointing);
  const lora = LoraModel.inject(model, { r: c.r, lora_alpha: c.alpha, target_modules: 'all-linear' });
  const params = [...lora.trainableParameters().values()];
  const optimizer = new AdamW(params, { lr: 1e-4, weightDecay: 0 });
  const shape = [c.batch, c.seq];
  const ids = tokens(c.batch * c.seq, config.vocabSize, 1);
  const phases = { forward: 0, backward: 0, optimizer: 0 };
  let loss0 = NaN;
  const step = async (timePhases: boolean): Promise<number> => {
    let t = performance.now();
    const mark = async (phase: keyof typeof phases) => {
      if (!timePhases) return;
      await rt.sync();
      const now = performance.now();
      phases[phase] = now - t;
      t = now;
    };
    return optimizerStep(model, params, optimizer, ids, shape, mark);
  };
  const results: BenchResult[] = [];
  // Per step, from the first: the highest live bytes during it, what the device holds after it
  // (live + pooled buffers), the pool alone, and the process RSS.
  const stepMemory: { peak: number; held: number; pooled: number; rss: number }[] = [];
  let peakBefore = rt.memoryStats().peakBytes;
  const recorded = async (timePhases: boolean): Promise<number> => {
    peakBefore = Math.max(peakBefore, rt.memoryStats().peakBytes);
    rt.resetPeak();
    const l = await step(timePhases);
    const m = rt.memoryStats();
    stepMemory.push({ peak: m.peakBytes, held: m.allocatedBytes, pooled: m.pooledBytes, rss: process.memoryUsage().rss });
    return l;
  };
  try {
    const warmup = c.steps ? 1 : opts.quick ? 1 : 2;
    for (let i = 0; i < warmup; i++) {
      const l = await recorded(false);
      if (i === 0) loss0 = l;
    }
    const before = counters(rt);
    const times: number[] = [];
    // Memory after every timed step: what the device holds (live + pooled) and the process RSS.
    const held: number[] = [];
    const rss: number[] = [];
    const minIters = opts.quick ? 3 : 5;
    const budgetMs = opts.quick ? 2000 : 10000;
    const started = performance.now();
    const more = (): boolean =>
      c.steps ? warmup + times.length < c.steps : times.length < minIters || (performance.now() - started < budgetMs && times.length < 50);
    while (more()) {
      const t0 = performance.now();
      await recorded(false);
      times.push(performance.now() - t0);
      held.push(rt.memoryStats().allocatedBytes);
      rss.push(process.memoryUsage().rss);
    }
    const after = counters(rt);
    // Cases with a fixed step count skip the synced and the profiled step (minutes each on a software adapter).
    if (!c.steps) await step(true);
    // One more step with a timestamp around every dispatch, where the device has them.
    let kernels = '';
    // (An older runtime, measured side by side with this bench, may lack the profiler.)
    if (!c.steps && rt.has('timestamp-query') && typeof (rt as Partial<Runtime>).setProfiling === 'function') {
      rt.setProfiling(true);
      await step(false);
      const profile = await rt.kernelProfile(true);
      rt.setProfiling(false);
      const total = profile.reduce((s, k) => s + k.ms, 0);
      kernels = profile
        .slice(0, 6)
        .map((k) => `${k.kernel} ${k.ms.toFixed(1)} ms (${((100 * k.ms) / total).toFixed(0)}%, ${k.dispatches}x)`)
        .join(', ');
      kernels = `; GPU time ${total.toFixed(1)} ms: ${kernels}`;
    }
    const mem = rt.memoryStats();
    const peakBytes = Math.max(peakBefore, mem.peakBytes, ...stepMemory.map((m) => m.peak));
    const s = stats(times);
    const perStep = (k: keyof Counters) => (after[k] - before[k]) / times.length;
    const tok = c.batch * c.seq;
    const base = { suite: 'train', iterations: times.length, min: s.min, max: s.max };
    const detail =
      `${config.className} ${config.numLayers}L d${config.hiddenSize} V${config.vocabSize}, ${c.method} r${c.r}, batch ${c.batch}x${c.seq}` +
      `${c.checkpointing ? ', checkpointing' : ''}; step-0 loss ${loss0.toFixed(4)}`;
    results.push({ ...base, name: `${c.name} step`, value: s.median, unit: 'ms', better: 'lower', detail });
    results.push({ ...base, name: `${c.name} throughput`, value: (tok / s.median) * 1000, unit: 'tok/s', better: 'higher', min: (tok / s.max) * 1000, max: (tok / s.min) * 1000 });
    // What `peft-ts estimate` predicts for the same run, beside what the runtime accounted.
    const est = estimateMemory(config, {
      method: c.method,
      r: c.r,
      targets: 'all-linear',
      batch: c.batch,
      seqLen: c.seq,
      checkpointing: c.checkpointing,
      weightDtype: 'f32',
      activationDtype: 'f32',
    });
    results.push({
      suite: 'train',
      name: `${c.name} peak memory`,
      value: peakBytes,
      unit: 'bytes',
      better: 'lower',
      iterations: 1,
      detail: `estimate ${est.bytes.total.toExponential(3)} bytes (${(est.bytes.total / peakBytes).toFixed(2)}x the measured peak)`,
    });
    const mb = (b: number): string => (b / 1e6).toFixed(1);
    const pick = (xs: number[]): number[] => (xs.length <= 6 ? xs : [...xs.slice(0, 3), ...xs.slice(-3)]);
    results.push({
      suite: 'train',
      name: `${c.name} memory growth`,
      value: (held[held.length - 1] ?? 0) - (held[0] ?? 0),
      unit: 'bytes',
      iterations: held.length,
      detail: `GPU buffers held after each timed step (MB): ${pick(held).map(mb).join(', ')}; process RSS (MB): ${pick(rss).map(mb).join(', ')}`,
    });
    // Steady memory: after the first step, neither what the device holds nor the process RSS grows.
    const first = stepMemory[0];
    const lastStep = stepMemory[stepMemory.length - 1];
    const list = (f: (m: (typeof stepMemory)[number]) => number): string => {
      const xs = stepMemory.map((m) => mb(f(m)));
      return (xs.length <= 8 ? xs : [...xs.slice(0, 4), '…', ...xs.slice(-3)]).join(', ');
    };
    results.push({
      suite: 'train',
      name: `${c.name} memory after step 1`,
      value: first && lastStep ? lastStep.held - first.held : 0,
      unit: 'bytes',
      iterations: stepMemory.length,
      detail:
        `per step from the first (MB): peak live ${list((m) => m.peak)}; device held ${list((m) => m.held)}; ` +
        `pooled ${list((m) => m.pooled)}; process RSS ${list((m) => m.rss)}; ` +
        `RSS change after step 1: ${first && lastStep ? mb(lastStep.rss - first.rss) : '0'} MB`,
    });
    results.push({
      suite: 'train',
      name: `${c.name} per step`,
      value: perStep('dispatches'),
      unit: 'dispatches',
      iterations: times.length,
      detail: `${perStep('submits').toFixed(1)} submits, ${Number.isNaN(perStep('readbacks')) ? '?' : perStep('readbacks').toFixed(1)} readbacks; ${c.steps ? 'phases not timed' : `phases (synced step) forward ${phases.forward.toFixed(1)} ms, backward ${phases.backward.toFixed(1)} ms, optimizer ${phases.optimizer.toFixed(1)} ms`}${kernels}`,
    });
  } finally {
    optimizer.dispose();
    model.dispose();
    rt.trimPool();
  }
  return results;
}

export async function runTrainBench(rt: Runtime, opts: SuiteOptions): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const c of selectTrainCases(rt, opts.cases)) {
    opts.log?.(`  case ${c.name}`);
    const caseResults = await runTrainCase(rt, c, opts);
    opts.emit?.(caseResults);
    results.push(...caseResults);
  }
  return results;
}
