// First-step compile cost: on a fresh device, how many compute pipelines the first training step
// of a small model creates and how long they take, against the steps after it; then the same with
// the pipelines compiled ahead (Runtime.precompile, overlapped with building the model).
import { LoraModel } from '@peft-ts/lora';
import { parseModelConfig, type CausalLM, type ModelConfig } from '@peft-ts/models';
import { AdamW } from '@peft-ts/paged-optim';
import { createRuntime, type KernelSpec, type Runtime } from '@peft-ts/tensor';
import { buildModel, optimizerStep, tokens, TRAIN_CASES, type TrainCase } from './train.js';
import type { BenchResult, SuiteOptions } from './types.js';

export interface CompileCase extends Omit<TrainCase, 'big' | 'checkpointing'> {
  /** LoRA targets (default all-linear) and modules trained in full. */
  targets?: string[];
  modulesToSave?: string[];
  /** A second sequence length, as the next batch of a padded dataset would have. */
  otherSeq: number;
}

/** The model `peft-ts demo` trains: its shape, adapter and batch (weights random here). */
const DEMO_CASE: CompileCase = {
  name: 'demo qlora',
  config: {
    model_type: 'llama',
    vocab_size: 1024,
    hidden_size: 64,
    intermediate_size: 192,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    max_position_embeddings: 256,
    tie_word_embeddings: false,
  },
  method: 'qlora',
  batch: 8,
  seq: 128,
  otherSeq: 101,
  r: 16,
  alpha: 32,
  targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'lm_head'],
  modulesToSave: ['embed_tokens'],
};

function cases(): CompileCase[] {
  const small = TRAIN_CASES.filter((c) => !c.big && !c.checkpointing).map(({ big: _big, checkpointing: _ckpt, ...c }) => ({ ...c, otherSeq: c.seq - 27 }));
  return [...small, DEMO_CASE];
}

export const COMPILE_CASES: readonly CompileCase[] = cases();

export interface Counts {
  pipelines: number;
  /** Blocking compile time; NaN on a runtime without the counter (an older commit run side by side). */
  compileMs: number;
}

function counts(rt: Runtime): Counts {
  const r = rt as Partial<Pick<Runtime, 'pipelineMs'>> & Runtime;
  return { pipelines: rt.pipelineCount, compileMs: r.pipelineMs ?? NaN };
}

interface Trainer {
  model: CausalLM;
  step(seq: number): Promise<number>;
  dispose(): void;
}

async function prepare(rt: Runtime, c: CompileCase, config: ModelConfig): Promise<Trainer> {
  rt.manualSeed(1234);
  const model = await buildModel(rt, config, c.method);
  const lora = LoraModel.inject(model, {
    r: c.r,
    lora_alpha: c.alpha,
    target_modules: c.targets ?? 'all-linear',
    ...(c.modulesToSave ? { modules_to_save: c.modulesToSave } : {}),
  });
  const params = [...lora.trainableParameters().values()];
  const optimizer = new AdamW(params, { lr: 1e-4, weightDecay: 0 });
  const step = (seq: number): Promise<number> => optimizerStep(model, params, optimizer, tokens(c.batch * seq, config.vocabSize, 1), [c.batch, seq]);
  return {
    model,
    step,
    dispose: () => {
      optimizer.dispose();
      model.dispose();
    },
  };
}

export interface Measured {
  /** Building the model (random weights, quantization) and, when precompiling, the compiles overlapped with it. */
  readyMs: number;
  firstMs: number;
  secondMs: number;
  first: Counts;
  /** What the first step at another sequence length created and cost. */
  otherMs: number;
  other: Counts;
  loss0: number;
  kernels: KernelSpec[];
}

/** One case on a fresh device, so nothing is compiled yet (in this process; a driver may still cache on disk). */
export async function measure(c: CompileCase, config: ModelConfig, precompile: KernelSpec[] | null): Promise<Measured> {
  const rt = await createRuntime({ seed: 0 });
  try {
    const t0 = performance.now();
    // The compiles start first and run while the model is built.
    const compiled = precompile ? rt.precompile(precompile) : null;
    const trainer = await prepare(rt, c, config);
    await compiled;
    await rt.sync();
    const readyMs = performance.now() - t0;
    try {
      const at0 = counts(rt);
      let t = performance.now();
      const loss0 = await trainer.step(c.seq);
      const firstMs = performance.now() - t;
      const at1 = counts(rt);
      t = performance.now();
      await trainer.step(c.seq);
      const secondMs = performance.now() - t;
      const at2 = counts(rt);
      t = performance.now();
      await trainer.step(c.otherSeq);
      const otherMs = performance.now() - t;
      const at3 = counts(rt);
      const delta = (a: Counts, b: Counts): Counts => ({ pipelines: b.pipelines - a.pipelines, compileMs: b.compileMs - a.compileMs });
      if (at2.pipelines !== at1.pipelines) throw new Error(`case ${c.name}: a repeated step created ${at2.pipelines - at1.pipelines} more pipelines`);
      const kernels = typeof (rt as Partial<Runtime>).compiledKernels === 'function' ? rt.compiledKernels() : [];
      return { readyMs, firstMs, secondMs, first: delta(at0, at1), otherMs, other: delta(at2, at3), loss0, kernels };
    } finally {
      trainer.dispose();
    }
  } finally {
    rt.destroy();
  }
}

export function selectCompileCases(filter: string | undefined): CompileCase[] {
  if (!filter) return [...COMPILE_CASES];
  return COMPILE_CASES.filter((c) => filter.split(',').some((f) => c.name === f || c.name.startsWith(`${f} `)));
}

export async function runCompileBench(_rt: Runtime, opts: SuiteOptions): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const c of selectCompileCases(opts.cases)) {
    opts.log?.(`  case ${c.name}`);
    const config = parseModelConfig(c.config, `bench case "${c.name}"`);
    const cold = await measure(c, config, null);
    const ms = (v: number): string => (Number.isNaN(v) ? '?' : v.toFixed(0));
    const detail =
      `${config.className} ${config.numLayers}L d${config.hiddenSize} V${config.vocabSize}, ${c.method} r${c.r}, batch ${c.batch}x${c.seq}; ` +
      `build ${ms(cold.readyMs)} ms, blocked compiling ${ms(cold.first.compileMs)} ms of the first step, later steps ${ms(cold.secondMs)} ms; step-0 loss ${cold.loss0.toFixed(4)}`;
    const caseResults: BenchResult[] = [
      { suite: 'compile', name: `${c.name} first step`, value: cold.firstMs, unit: 'ms', better: 'lower', iterations: 1, detail },
      { suite: 'compile', name: `${c.name} pipelines`, value: cold.first.pipelines, unit: 'pipelines', better: 'lower', iterations: 1, detail: `created by the first step` },
      {
        suite: 'compile',
        name: `${c.name} pipelines at seq ${c.otherSeq}`,
        value: cold.other.pipelines,
        unit: 'pipelines',
        better: 'lower',
        iterations: 1,
        detail: `created by a step at another sequence length (${c.seq} -> ${c.otherSeq}), ${ms(cold.otherMs)} ms, ${ms(cold.other.compileMs)} ms of it compiling`,
      },
      { suite: 'compile', name: `${c.name} build + first step`, value: cold.readyMs + cold.firstMs, unit: 'ms', better: 'lower', iterations: 1 },
    ];
    if (typeof (_rt as Partial<Runtime>).precompile === 'function') {
      const warm = await measure(c, config, cold.kernels);
      if (warm.loss0 !== cold.loss0) throw new Error(`case ${c.name}: step-0 loss ${warm.loss0} with precompiled pipelines, ${cold.loss0} without`);
      caseResults.push({
        suite: 'compile',
        name: `${c.name} build + first step, precompiled`,
        value: warm.readyMs + warm.firstMs,
        unit: 'ms',
        better: 'lower',
        iterations: 1,
        detail: `${cold.kernels.length} pipelines compiled while building (build + compile ${ms(warm.readyMs)} ms), first step ${ms(warm.firstMs)} ms`,
      });
      caseResults.push({
        suite: 'compile',
        name: `${c.name} pipelines, precompiled`,
        value: warm.first.pipelines,
        unit: 'pipelines',
        better: 'lower',
        iterations: 1,
        detail: `created by the first step after precompiling, ${ms(warm.first.compileMs)} ms of it blocked compiling`,
      });
    }
    opts.emit?.(caseResults);
    results.push(...caseResults);
  }
  return results;
}
