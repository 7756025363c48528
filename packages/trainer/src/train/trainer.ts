// The LoRA/QLoRA training loop, built only from the other packages' public APIs: gradient
// accumulation, schedules, clipping, evaluation with early stopping, checkpoints that resume
// bit-exactly, metrics as JSONL, an SVG loss curve and a progress bar. Everything it writes goes
// to a RunStore (a directory in Node, OPFS in a browser, memory), so it runs in both.
import { PeftError } from '@peft-ts/errors';
import type { FileTree } from '@peft-ts/safetensors';
import { add, backward, causalLmLoss, fromArray, noGrad, tidy, type Tensor } from '@peft-ts/tensor';
import type { CausalLM } from '@peft-ts/models';
import type { LoraModel } from '@peft-ts/lora';
import { checkResumeIdentity, type RunIdentity } from '../finetune/identity.js';
import { learningRate, validateSchedule, type ScheduleOptions, type ScheduleType } from '../schedule/schedule.js';
import { lossCurveSvg, type CurvePoint } from '../observe/loss-svg.js';
import { Progress, type ProgressStream } from '../observe/progress.js';
import { readStoreText, subTree, subWriter, whereIn, writeFolder, type RunStore } from './run-store.js';
import type { BatchSource, EvalLog, StepLog, TrainBatch, TrainerCallbacks, TrainOptimizer, TrainSummary } from './types.js';

export interface TrainerOptions {
  model: CausalLM;
  lora: LoraModel;
  train: BatchSource;
  validation?: BatchSource;
  /** Builds the optimizer over the trainable parameters (called after a resume has loaded them). */
  createOptimizer: (params: Map<string, Tensor>) => TrainOptimizer;
  /** Where checkpoints, the adapter, metrics.jsonl, loss.svg and summary.json go. */
  output: RunStore;
  lr: number;
  schedule?: ScheduleType;
  warmupSteps?: number;
  warmupRatio?: number;
  epochs?: number;
  /** Stop after this many optimizer steps (overrides epochs for the schedule's length). */
  maxSteps?: number;
  gradientAccumulation?: number;
  /** Global-norm clipping (transformers' default 1.0); 0 turns it off. */
  maxGradNorm?: number;
  evalEvery?: number;
  /** Also evaluate before the first step (logged as step 0), to see where training starts. */
  evalOnStart?: boolean;
  /** Stop after this many evaluations without a better validation loss. */
  earlyStoppingPatience?: number;
  earlyStoppingThreshold?: number;
  saveEvery?: number;
  /** Checkpoints kept (oldest removed first; default 2). */
  keepCheckpoints?: number;
  /** Resume from this checkpoint (a tree holding trainer_state.json), or 'latest' for the newest in `output`. */
  resumeFrom?: FileTree | 'latest';
  /**
   * What defines this run (model and data fingerprints, adapter shape, batching): stored in each
   * checkpoint, and a resume from a checkpoint that stored a different one is refused.
   */
  runIdentity?: RunIdentity;
  gradientCheckpointing?: boolean;
  callbacks?: TrainerCallbacks;
  /**
   * When aborted, training stops after the step in progress and writes a resumable checkpoint
   * (summary.interrupted); no final adapter is written.
   */
  signal?: AbortSignal;
  /** Where a progress bar is drawn (none by default; `runFinetune` of @peft-ts/trainer/node draws one on stderr). */
  progress?: ProgressStream | false;
  /** Log a plain line every N steps when not on a TTY (default: about 20 lines per run). */
  logEvery?: number;
}

interface Cursor {
  epoch: number;
  index: number;
}

interface TrainerState {
  version: 1;
  step: number;
  cursor: Cursor;
  rng: { seed: number; offset: number };
  bestValLoss: number | null;
  bestStep: number | null;
  evalsWithoutImprovement: number;
  tokens: number;
  trainedTokens: number;
  seconds: number;
  trainCurve: CurvePoint[];
  valCurve: CurvePoint[];
  run?: RunIdentity;
}

const STATE_FILE = 'trainer_state.json';
/** A clipping threshold no finite norm reaches: measures the norm without scaling. */
const NO_CLIP = 3e38;

/** Training stopped because the loss or the gradient norm is NaN or infinite. */
export class NonFiniteError extends PeftError {
  readonly step: number;
  readonly loss: number;
  readonly gradNorm: number;
  readonly lastCheckpoint: string | null;

  constructor(step: number, loss: number, gradNorm: number, lastCheckpoint: string | null) {
    const what = !Number.isFinite(loss) ? `the loss is ${String(loss)}` : `the gradient norm is ${String(gradNorm)}`;
    super(
      'NON_FINITE',
      `training stopped at step ${step}: ${what}; no update was applied and no adapter was written from these weights; ` +
        (lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : 'there is no earlier checkpoint (use saveEvery to keep some)') +
        ' (lower the learning rate, or check the model and data)',
    );
    this.step = step;
    this.loss = loss;
    this.gradNorm = gradNorm;
    this.lastCheckpoint = lastCheckpoint;
  }
}

function fail(field: string, expected: string, got: unknown): never {
  throw new PeftError('BAD_OPTION', `trainer: ${field}: expected ${expected}, got ${String(got)}`);
}

/** Counted label tokens after the causal shift: labels[b, t] != -100 for t >= 1. */
function countedTokens(batch: TrainBatch): number {
  let n = 0;
  for (let b = 0; b < batch.batchSize; b++) for (let t = 1; t < batch.seqLen; t++) if (batch.labels[b * batch.seqLen + t] !== -100) n += 1;
  return n;
}

/** Running sum of scalar losses on the GPU (no graph; the inputs are released). */
function accumulate(sum: Tensor | null, value: Tensor): Tensor {
  if (!sum) return value;
  const next = noGrad(() => add(sum, value));
  sum.dispose();
  value.dispose();
  return next;
}

function realTokens(batch: TrainBatch): number {
  let n = 0;
  for (const m of batch.attentionMask) if (m !== 0) n += 1;
  return n;
}

export class Trainer {
  private readonly o: TrainerOptions;
  private readonly accumulation: number;
  private readonly schedule: ScheduleOptions;
  private readonly totalSteps: number;

  constructor(options: TrainerOptions) {
    this.o = options;
    this.accumulation = options.gradientAccumulation ?? 1;
    if (!(Number.isInteger(this.accumulation) && this.accumulation >= 1)) fail('gradientAccumulation', 'an integer >= 1', options.gradientAccumulation);
    if (options.epochs !== undefined && !(options.epochs > 0)) fail('epochs', 'a number > 0', options.epochs);
    if (options.maxSteps !== undefined && !(Number.isInteger(options.maxSteps) && options.maxSteps > 0)) fail('maxSteps', 'a positive integer', options.maxSteps);
    for (const key of ['evalEvery', 'saveEvery', 'earlyStoppingPatience'] as const) {
      const v = options[key];
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) fail(key, 'a positive integer', v);
    }
    if (options.earlyStoppingPatience && !options.validation) fail('earlyStoppingPatience', 'a validation set to evaluate on', 'none');
    this.totalSteps = this.countSteps();
    this.schedule = {
      type: options.schedule ?? 'linear',
      lr: options.lr,
      totalSteps: this.totalSteps,
      ...(options.warmupSteps !== undefined ? { warmupSteps: options.warmupSteps } : {}),
      ...(options.warmupRatio !== undefined ? { warmupRatio: options.warmupRatio } : {}),
    };
    validateSchedule(this.schedule);
  }

  private countSteps(): number {
    if (this.o.maxSteps !== undefined) return this.o.maxSteps;
    const epochs = this.o.epochs ?? 1;
    let batches = 0;
    for (let e = 0; e < Math.ceil(epochs); e++) {
      const n = this.o.train.numBatches(e);
      batches += e + 1 > epochs ? Math.floor(n * (epochs - e)) : n;
    }
    if (batches === 0) fail('train', 'at least one batch', 0);
    return Math.max(1, Math.floor(batches / this.accumulation));
  }

  get steps(): number {
    return this.totalSteps;
  }

  private advance(c: Cursor): Cursor {
    const next = { epoch: c.epoch, index: c.index + 1 };
    if (next.index >= this.o.train.numBatches(next.epoch)) return { epoch: next.epoch + 1, index: 0 };
    return next;
  }

  /** Checkpoint folders (`checkpoint-<step>`) in the output, newest first. */
  private async checkpointSteps(complete: boolean): Promise<number[]> {
    const steps = new Set<number>();
    for (const name of await this.o.output.list()) {
      const m = /^checkpoint-(\d+)\/(.+)$/.exec(name);
      if (m && (!complete || m[2] === STATE_FILE)) steps.add(Number(m[1]));
    }
    return [...steps].sort((a, b) => b - a);
  }

  private async latestCheckpoint(): Promise<{ tree: FileTree; where: string } | null> {
    const [step] = await this.checkpointSteps(true);
    if (step === undefined) return null;
    const name = `checkpoint-${step}`;
    const where = whereIn(this.o.output, name);
    return { tree: subTree(this.o.output, name, where), where };
  }

  private forwardLoss(batch: TrainBatch, numItems: number): Tensor {
    const rt = this.o.model.rt;
    const shape = [batch.batchSize, batch.seqLen];
    const ids = fromArray(rt, batch.inputIds, shape, 'i32');
    const mask = fromArray(rt, batch.attentionMask, shape, 'i32');
    const labels = fromArray(rt, batch.labels, shape, 'i32');
    const positions = batch.positionIds ? fromArray(rt, batch.positionIds, shape, 'i32') : undefined;
    // Rows holding more than one example (sequence ids above 1) need attention kept inside each.
    const packed = batch.sequenceIds?.some((s) => s > 1) ?? false;
    const segments = packed && batch.sequenceIds ? fromArray(rt, batch.sequenceIds, shape, 'i32') : undefined;
    const logits = this.o.model.forward(ids, { attentionMask: mask, ...(positions ? { positionIds: positions } : {}), ...(segments ? { segmentIds: segments } : {}) });
    return causalLmLoss(logits, labels, { numItemsInBatch: Math.max(1, numItems) });
  }

  /** Mean validation loss over all counted tokens. */
  async evaluate(): Promise<number> {
    const v = this.o.validation;
    if (!v) throw new PeftError('NO_VALIDATION', 'trainer.evaluate: no validation set');
    const batches: TrainBatch[] = [];
    for (let i = 0; i < v.numBatches(0); i++) batches.push(v.batchAt(0, i));
    const total = batches.reduce((s, b) => s + countedTokens(b), 0);
    this.o.lora.train(false);
    try {
      const sum = noGrad(() => {
        let acc: Tensor | null = null;
        for (const b of batches) {
          const l = tidy(() => this.forwardLoss(b, total));
          acc = accumulate(acc, l);
        }
        return acc;
      });
      const value = sum ? await sum.item() : NaN;
      sum?.dispose();
      return value;
    } finally {
      this.o.lora.train(true);
    }
  }

  private async saveCheckpoint(state: TrainerState, optimizer: TrainOptimizer): Promise<string> {
    const name = `checkpoint-${state.step}`;
    await writeFolder(this.o.output, name, async (out) => {
      await this.o.lora.saveAdapterTo(out);
      await optimizer.saveState(subWriter(out, 'optimizer'));
      await out.write(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
    });
    const keep = this.o.keepCheckpoints ?? 2;
    for (const step of (await this.checkpointSteps(false)).slice(keep)) await this.o.output.remove(`checkpoint-${step}`);
    const where = whereIn(this.o.output, name);
    await this.o.callbacks?.onSave?.(where, state.step);
    return where;
  }

  private metricsText = '';

  private async appendLine(name: string, record: object): Promise<void> {
    const line = `${JSON.stringify(record)}\n`;
    this.metricsText += line;
    if (this.o.output.append) await this.o.output.append(name, line);
    else await this.o.output.write(name, this.metricsText);
  }

  private async writeCurve(state: TrainerState): Promise<void> {
    await this.o.output.write('loss.svg', lossCurveSvg({ train: state.trainCurve, validation: state.valCurve }, 'training loss'));
  }

  async train(): Promise<TrainSummary> {
    const o = this.o;
    const rt = o.model.rt;
    if (o.gradientCheckpointing) o.model.setGradientCheckpointing(true);
    let state: TrainerState = {
      version: 1,
      step: 0,
      cursor: { epoch: 0, index: 0 },
      rng: { seed: rt.rngSeed, offset: rt.rngOffset },
      bestValLoss: null,
      bestStep: null,
      evalsWithoutImprovement: 0,
      tokens: 0,
      trainedTokens: 0,
      seconds: 0,
      trainCurve: [],
      valCurve: [],
      ...(o.runIdentity ? { run: o.runIdentity } : {}),
    };
    const resume = o.resumeFrom === 'latest' ? await this.latestCheckpoint() : o.resumeFrom ? { tree: o.resumeFrom, where: o.resumeFrom.name } : null;
    if (o.resumeFrom && !resume) fail('resumeFrom', `a checkpoint under ${o.output.name}`, 'none');
    const resumeDir = resume?.where ?? null;
    if (resume) {
      const text = await readStoreText(resume.tree, STATE_FILE);
      if (text === null) fail('resumeFrom', `a checkpoint holding ${STATE_FILE}`, resume.where);
      state = JSON.parse(text) as TrainerState;
      if (o.runIdentity) checkResumeIdentity(resume.where, state.run, o.runIdentity);
      await o.lora.loadAdapterFrom(resume.tree, o.lora.activeAdapter ?? 'default');
      rt.rngSeed = state.rng.seed;
      rt.rngOffset = state.rng.offset;
    }
    const metricsPath = 'metrics.jsonl';
    // A fresh run starts a new log; a resumed one drops lines written after its checkpoint.
    const previous = resume ? ((await readStoreText(o.output, metricsPath).catch(() => null)) ?? '') : '';
    const kept = previous
      .split('\n')
      .filter((l) => l.trim() !== '')
      .filter((l) => {
        try {
          return (JSON.parse(l) as { step: number }).step <= state.step;
        } catch {
          return false;
        }
      });
    this.metricsText = kept.map((l) => `${l}\n`).join('');
    await o.output.write(metricsPath, this.metricsText);

    o.lora.train(true);
    const optimizer = o.createOptimizer(o.lora.trainableParameters());
    if (resume) await optimizer.loadState(subTree(resume.tree, 'optimizer'));
    const progress = o.progress ? new Progress({ total: this.totalSteps, label: 'train', stream: o.progress, rateUnit: 'tok/s', ...(o.logEvery ? { every: o.logEvery } : {}) }) : null;
    const started = performance.now();
    const baseSeconds = state.seconds;
    const baseTokens = state.tokens;
    let stoppedEarly = false;
    let interrupted = false;
    let lastCheckpoint: string | null = resumeDir;
    let lastLoss: number | null = state.trainCurve.at(-1)?.value ?? null;
    rt.resetPeak();
    if (o.validation && o.evalOnStart && state.step === 0) {
      const valLoss = await this.evaluate();
      state.valCurve.push({ step: 0, value: valLoss });
      const evalLog: EvalLog = { step: 0, valLoss, perplexity: Math.exp(valLoss), best: false };
      await this.appendLine(metricsPath, { type: 'eval', ...evalLog });
      progress?.log(`step 0: validation loss ${valLoss.toFixed(4)} (perplexity ${evalLog.perplexity.toFixed(2)}) before training`);
      await o.callbacks?.onEvaluate?.(evalLog);
    }
    try {
      while (state.step < this.totalSteps) {
        const batches: TrainBatch[] = [];
        for (let k = 0; k < this.accumulation; k++) {
          batches.push(o.train.batchAt(state.cursor.epoch, state.cursor.index));
          state.cursor = this.advance(state.cursor);
        }
        const numItems = batches.reduce((s, b) => s + countedTokens(b), 0);
        let lossSum: Tensor | null = null;
        for (const b of batches) {
          const l = tidy(() => {
            const loss = this.forwardLoss(b, numItems);
            backward(loss);
            return loss;
          });
          lossSum = accumulate(lossSum, l);
          state.tokens += realTokens(b);
        }
        state.trainedTokens += numItems;
        // The norm is measured even without clipping: a NaN or Inf gradient must stop the run
        // before the optimizer writes it into the weights.
        const norm = optimizer.clipGradNorm(o.maxGradNorm === 0 ? NO_CLIP : (o.maxGradNorm ?? 1));
        const loss = lossSum ? await lossSum.item() : NaN;
        lossSum?.dispose();
        const measuredNorm = await norm.item();
        norm.dispose();
        if (!Number.isFinite(loss) || !Number.isFinite(measuredNorm)) {
          optimizer.zeroGrad();
          // The chart marks the step the run stopped at, next to the curve that led there.
          state.trainCurve.push({ step: state.step + 1, value: loss });
          await this.writeCurve(state).catch(() => undefined);
          throw new NonFiniteError(state.step + 1, loss, measuredNorm, lastCheckpoint);
        }
        const gradNorm = o.maxGradNorm === 0 ? null : measuredNorm;
        const lr = learningRate(this.schedule, state.step);
        await optimizer.step(lr);
        optimizer.zeroGrad();
        state.step += 1;
        lastLoss = loss;
        state.seconds = baseSeconds + (performance.now() - started) / 1000;
        state.rng = { seed: rt.rngSeed, offset: rt.rngOffset };
        state.trainCurve.push({ step: state.step, value: loss });
        const log: StepLog = {
          step: state.step,
          epoch: state.cursor.epoch + state.cursor.index / Math.max(1, o.train.numBatches(state.cursor.epoch)),
          loss,
          lr,
          gradNorm,
          tokens: state.tokens,
          tokensPerSecond: (state.tokens - baseTokens) / Math.max(1e-9, (performance.now() - started) / 1000),
          elapsedSeconds: state.seconds,
        };
        await this.appendLine(metricsPath, { type: 'train', ...log });
        progress?.update(state.step, { loss: loss.toFixed(4), lr: lr.toExponential(2) }, state.tokens - baseTokens);
        if ((await o.callbacks?.onStepEnd?.(log)) === 'stop') stoppedEarly = true;

        const last = state.step >= this.totalSteps;
        if (o.validation && o.evalEvery && (state.step % o.evalEvery === 0 || last)) {
          const valLoss = await this.evaluate();
          const improved = state.bestValLoss === null || valLoss < state.bestValLoss - (o.earlyStoppingThreshold ?? 0);
          if (improved) {
            state.bestValLoss = valLoss;
            state.bestStep = state.step;
            state.evalsWithoutImprovement = 0;
            await writeFolder(o.output, 'best-adapter', (out) => o.lora.saveAdapterTo(out));
          } else state.evalsWithoutImprovement += 1;
          state.valCurve.push({ step: state.step, value: valLoss });
          const evalLog: EvalLog = { step: state.step, valLoss, perplexity: Math.exp(valLoss), best: improved };
          await this.appendLine(metricsPath, { type: 'eval', ...evalLog });
          progress?.log(`step ${state.step}: validation loss ${valLoss.toFixed(4)} (perplexity ${evalLog.perplexity.toFixed(2)})${improved ? ', best so far' : ''}`);
          await this.writeCurve(state);
          if ((await o.callbacks?.onEvaluate?.(evalLog)) === 'stop') stoppedEarly = true;
          if (o.earlyStoppingPatience && state.evalsWithoutImprovement >= o.earlyStoppingPatience) {
            progress?.log(`early stopping: no better validation loss in ${o.earlyStoppingPatience} evaluations (best ${state.bestValLoss?.toFixed(4)} at step ${state.bestStep})`);
            stoppedEarly = true;
          }
        }
        const saveNow = o.saveEvery !== undefined && (state.step % o.saveEvery === 0 || stoppedEarly || last);
        if (saveNow) lastCheckpoint = await this.saveCheckpoint(state, optimizer);
        if (stoppedEarly) break;
        if (o.signal?.aborted && !last) {
          // Asked to stop (Ctrl-C, SIGTERM): the step is done; keep it in a resumable checkpoint.
          if (!saveNow) lastCheckpoint = await this.saveCheckpoint(state, optimizer);
          interrupted = true;
          break;
        }
      }
    } finally {
      progress?.finish();
    }
    // An interrupted run's adapter is its checkpoint (a PEFT adapter directory like any other).
    const adapterDir = interrupted && lastCheckpoint ? lastCheckpoint : whereIn(o.output, 'adapter');
    if (!interrupted) await writeFolder(o.output, 'adapter', (out) => o.lora.saveAdapterTo(out));
    await this.writeCurve(state);
    optimizer.dispose();
    const summary: TrainSummary = {
      steps: state.step,
      epochsCompleted: state.cursor.epoch,
      seconds: state.seconds,
      tokens: state.tokens,
      trainedTokens: state.trainedTokens,
      finalLoss: lastLoss,
      bestValLoss: state.bestValLoss,
      bestStep: state.bestStep,
      stoppedEarly,
      interrupted,
      checkpointDir: lastCheckpoint,
      peakGpuBytes: rt.memoryStats().peakBytes,
      adapterDir,
    };
    await o.output.write('summary.json', `${JSON.stringify(summary, null, 2)}\n`);
    await o.callbacks?.onTrainEnd?.(summary);
    return summary;
  }
}
