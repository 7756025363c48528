// Flag parsing: a negative number after an option that takes a value is that option's value.
import { describe, expect, it } from 'vitest';
import { joinNegativeValues, parse, UsageError } from './args.js';
import { generateCommand } from './commands/generate.js';

const FLAGS = { lr: { type: 'string' }, seed: { type: 'string', short: 's' }, json: { type: 'boolean' } } as const;

describe('peft-ts flag parsing', () => {
  it('takes a negative number after an option as its value, in every spelling', () => {
    const { values, positionals } = parse('x', ['--lr', '-1e-4', '-s', '-3', 'pos', '--json'], FLAGS);
    expect(values.lr).toBe('-1e-4');
    expect(values.seed).toBe('-3');
    expect(values.json).toBe(true);
    expect(positionals).toEqual(['pos']);
    for (const v of ['-1', '-0.5', '-.5', '-2.5E+3', '-7e-10']) expect(parse('x', ['--lr', v], FLAGS).values.lr).toBe(v);
    expect(parse('x', ['--lr=-1e-4'], FLAGS).values.lr).toBe('-1e-4');
  });

  it('leaves everything else to parseArgs: flags that look like values, boolean options, and what follows --', () => {
    expect(joinNegativeValues(['--json', '-1', '--', '--lr', '-2'], FLAGS)).toEqual(['--json', '-1', '--', '--lr', '-2']);
    // A dash-word after an option is still the ambiguous case parseArgs reports.
    expect(() => parse('x', ['--lr', '-s'], FLAGS)).toThrow(UsageError);
    expect(() => parse('x', ['--lr', '--json'], FLAGS)).toThrow(UsageError);
  });

  it('reaches the range check of a command instead of an "ambiguous" error', async () => {
    await expect(generateCommand(['/nope', '--prompt', 'hi', '--temperature', '-1'])).rejects.toThrow(/^peft-ts generate: --temperature: expected a number >= 0, got "-1"$/);
  });
});
