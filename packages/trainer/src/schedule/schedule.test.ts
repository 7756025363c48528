// Schedules against the closed forms transformers uses (get_linear_schedule_with_warmup,
// get_cosine_schedule_with_warmup, get_constant_schedule_with_warmup).
import { describe, expect, it } from 'vitest';
import { learningRate, validateSchedule, warmupStepsOf } from './schedule.js';

describe('learning-rate schedules', () => {
  it('warms up linearly from zero', () => {
    const o = { type: 'linear' as const, lr: 1e-3, totalSteps: 100, warmupSteps: 10 };
    expect(learningRate(o, 0)).toBe(0);
    expect(learningRate(o, 5)).toBeCloseTo(5e-4, 15);
    expect(learningRate(o, 10)).toBeCloseTo(1e-3, 15);
  });

  it('decays linearly to zero at the last step', () => {
    const o = { type: 'linear' as const, lr: 1e-3, totalSteps: 100, warmupSteps: 10 };
    expect(learningRate(o, 55)).toBeCloseTo((1e-3 * 45) / 90, 15);
    expect(learningRate(o, 100)).toBe(0);
  });

  it('follows a half cosine after warmup', () => {
    const o = { type: 'cosine' as const, lr: 2e-4, totalSteps: 50, warmupRatio: 0.1 };
    expect(warmupStepsOf(o)).toBe(5);
    expect(learningRate(o, 5)).toBeCloseTo(2e-4, 15);
    expect(learningRate(o, 27.5)).toBeCloseTo(1e-4, 12);
    expect(learningRate(o, 50)).toBeCloseTo(0, 15);
    const mid = learningRate(o, 20);
    expect(mid).toBeCloseTo(2e-4 * 0.5 * (1 + Math.cos((Math.PI * 15) / 45)), 15);
  });

  it('stays constant after warmup', () => {
    const o = { type: 'constant' as const, lr: 3e-4, totalSteps: 10, warmupSteps: 2 };
    expect([0, 1, 2, 9].map((s) => learningRate(o, s))).toEqual([0, 1.5e-4, 3e-4, 3e-4]);
    expect(learningRate({ type: 'constant', lr: 3e-4, totalSteps: 10 }, 0)).toBe(3e-4);
  });

  it('names the bad field', () => {
    expect(() => validateSchedule({ type: 'linear', lr: 0, totalSteps: 10 })).toThrow(/schedule: lr: expected a number > 0, got 0/);
    expect(() => validateSchedule({ type: 'step' as 'linear', lr: 1, totalSteps: 10 })).toThrow(/type/);
    expect(() => validateSchedule({ type: 'linear', lr: 1, totalSteps: 10, warmupRatio: 1.5 })).toThrow(/warmupRatio/);
  });
});
