// Learning-rate schedules as transformers' get_scheduler builds them: linear warmup, then
// constant, linear decay to zero, or half-cosine decay to zero, over the total optimizer steps.
import { PeftError } from '@peft-ts/errors';

export type ScheduleType = 'constant' | 'linear' | 'cosine';

export interface ScheduleOptions {
  type: ScheduleType;
  /** Peak learning rate. */
  lr: number;
  /** Optimizer steps in the whole run. */
  totalSteps: number;
  /** Warmup steps, or use warmupRatio (fraction of totalSteps, rounded up as transformers does). */
  warmupSteps?: number;
  warmupRatio?: number;
}

export function warmupStepsOf(o: ScheduleOptions): number {
  if (o.warmupSteps !== undefined && o.warmupSteps > 0) return o.warmupSteps;
  if (o.warmupRatio !== undefined) return Math.ceil(o.warmupRatio * o.totalSteps);
  return 0;
}

export function validateSchedule(o: ScheduleOptions): void {
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new PeftError('BAD_OPTION', `schedule: ${field}: expected ${expected}, got ${String(got)}`);
  };
  if (!['constant', 'linear', 'cosine'].includes(o.type)) bad('type', '"constant", "linear" or "cosine"', o.type);
  if (!(o.lr > 0)) bad('lr', 'a number > 0', o.lr);
  if (!(Number.isInteger(o.totalSteps) && o.totalSteps > 0)) bad('totalSteps', 'a positive integer', o.totalSteps);
  if (o.warmupSteps !== undefined && !(Number.isInteger(o.warmupSteps) && o.warmupSteps >= 0)) bad('warmupSteps', 'an integer >= 0', o.warmupSteps);
  if (o.warmupRatio !== undefined && !(o.warmupRatio >= 0 && o.warmupRatio < 1)) bad('warmupRatio', 'a number in [0, 1)', o.warmupRatio);
}

/**
 * The learning rate for optimizer step `step` (0-based: the rate the step-th update uses), as
 * transformers' LambdaLR schedules compute it.
 */
export function learningRate(o: ScheduleOptions, step: number): number {
  const warmup = warmupStepsOf(o);
  if (step < warmup) return (o.lr * step) / Math.max(1, warmup);
  if (o.type === 'constant') return o.lr;
  const progress = (step - warmup) / Math.max(1, o.totalSteps - warmup);
  if (o.type === 'linear') return o.lr * Math.max(0, (o.totalSteps - step) / Math.max(1, o.totalSteps - warmup));
  return o.lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
