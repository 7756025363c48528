// Dataset statistics after tokenization: the length distribution, truncation, and how many
// tokens an epoch feeds and trains on.
import type { TokenizedExample } from '../tokenize/tokenize-example.js';

export interface LengthHistogram {
  /** Bin i counts lengths in [edges[i], edges[i + 1]); equal-width integer bins from the shortest length up. */
  edges: number[];
  counts: number[];
}

export interface DatasetStats {
  examples: number;
  /** Tokens in one epoch, padding excluded (sum of lengths after truncation). */
  tokensPerEpoch: number;
  /** Tokens with a label (loss) in one epoch. */
  trainedTokens: number;
  minLength: number;
  maxLength: number;
  meanLength: number;
  medianLength: number;
  p95Length: number;
  /** Examples cut to maxLength, and their share in percent. */
  truncated: number;
  truncatedPercent: number;
  /** Examples with no trained token (e.g. the response was cut away). */
  noTrainedTokens: number;
  histogram: LengthHistogram;
}

function percentile(sorted: Int32Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** Statistics of tokenized examples; `bins` sets the histogram's bin count (default 10). */
export function datasetStats(examples: readonly TokenizedExample[], options: { bins?: number } = {}): DatasetStats {
  const lengths = Int32Array.from(examples, (e) => e.length).sort();
  const n = lengths.length;
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const min = n === 0 ? 0 : (lengths[0] ?? 0);
  const max = n === 0 ? 0 : (lengths[n - 1] ?? 0);
  const bins = Math.max(1, Math.floor(options.bins ?? 10));
  const width = Math.max(1, Math.ceil((max - min + 1) / bins));
  const edges = Array.from({ length: bins + 1 }, (_, i) => min + i * width);
  const counts = new Array<number>(bins).fill(0);
  for (const length of lengths) {
    const bin = Math.min(bins - 1, Math.floor((length - min) / width));
    counts[bin] = (counts[bin] ?? 0) + 1;
  }
  const truncated = examples.filter((e) => e.truncated).length;
  return {
    examples: n,
    tokensPerEpoch: tokens,
    trainedTokens: examples.reduce((a, e) => a + e.trainedTokens, 0),
    minLength: min,
    maxLength: max,
    meanLength: n === 0 ? 0 : tokens / n,
    medianLength: percentile(lengths, 50),
    p95Length: percentile(lengths, 95),
    truncated,
    truncatedPercent: n === 0 ? 0 : (100 * truncated) / n,
    noTrainedTokens: examples.filter((e) => e.trainedTokens === 0).length,
    histogram: { edges, counts },
  };
}

/** The statistics as a few lines of text with a bar per histogram bin. */
export function formatStats(stats: DatasetStats): string {
  const lines = [
    `examples: ${stats.examples}, tokens/epoch: ${stats.tokensPerEpoch}, trained tokens: ${stats.trainedTokens}`,
    `length: min ${stats.minLength}, median ${stats.medianLength}, mean ${stats.meanLength.toFixed(1)}, p95 ${stats.p95Length}, max ${stats.maxLength}`,
    `truncated: ${stats.truncated} (${stats.truncatedPercent.toFixed(1)}%), without trained tokens: ${stats.noTrainedTokens}`,
  ];
  const peak = Math.max(1, ...stats.histogram.counts);
  const edgeWidth = String(stats.histogram.edges[stats.histogram.edges.length - 1] ?? 0).length;
  stats.histogram.counts.forEach((count, i) => {
    const from = String(stats.histogram.edges[i] ?? 0).padStart(edgeWidth);
    const to = String((stats.histogram.edges[i + 1] ?? 0) - 1).padStart(edgeWidth);
    lines.push(`${from}-${to} | ${'#'.repeat(Math.round((40 * count) / peak)).padEnd(40)} ${count}`);
  });
  return lines.join('\n');
}
