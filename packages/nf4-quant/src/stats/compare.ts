// NF4 vs FP4 vs absmax-int4 on the same values and block size: the comparison users run on
// their own weights before choosing a 4-bit format.
import { dequantize } from '../quantize/dequantize-4bit.js';
import { quantize } from '../quantize/quantize-4bit.js';
import type { QuantizeInput } from '../quantize/types.js';
import { widenInput } from '../quantize/input.js';
import { errorStats, type ErrorStats } from './error-stats.js';
import { dequantizeInt4Absmax, quantizeInt4Absmax } from './int4-absmax.js';

export interface QuantizerComparison {
  nf4: ErrorStats;
  fp4: ErrorStats;
  /** Symmetric absmax int4 with 15 levels (see quantizeInt4Absmax). */
  int4: ErrorStats;
  /** NF4 with double-quantized absmax values (the QLoRA setting). */
  nf4DoubleQuant: ErrorStats;
}

export function compareQuantizers(input: QuantizeInput, options: { blocksize?: number } = {}): QuantizerComparison {
  const { values } = widenInput(input, 'compareQuantizers');
  const blocksize = options.blocksize ?? 64;
  const stats = (type: 'nf4' | 'fp4', doubleQuant: boolean) =>
    errorStats(values, dequantize(quantize(values, { type, blocksize, doubleQuant })));
  return {
    nf4: stats('nf4', false),
    fp4: stats('fp4', false),
    int4: errorStats(values, dequantizeInt4Absmax(quantizeInt4Absmax(values, blocksize))),
    nf4DoubleQuant: stats('nf4', true),
  };
}
