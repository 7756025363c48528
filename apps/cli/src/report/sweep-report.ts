// The sweep's report: a table per grid point (mean ± std over seeds) and three plots, as
// Markdown and as one self-contained HTML page with inline SVG.
import { formatBytes } from '@peft-ts/errors';
import { defaultSmoothing, emaSmooth } from '@peft-ts/trainer';
import { escapeHtml } from './write-atomic.js';
import { PALETTE, plotSvg, type PlotSeries } from './svg-plot.js';

/** What one finished run of a sweep measured; stored as result.json in its directory. */
export interface SweepRunResult {
  id: string;
  /** The grid point, e.g. { r: 4, targets: 'attn' }, without the seed. */
  point: Record<string, string | number>;
  seed: number;
  /** A fingerprint of the run's resolved configuration; a stored result with another is run again. */
  configKey: string;
  trainableParams: number;
  adapterBytes: number;
  peakGpuBytes: number;
  tokensPerSecond: number;
  secondsPerEpoch: number;
  seconds: number;
  steps: number;
  bestValLoss: number | null;
  bestStep: number | null;
  /** The final adapter's loss on the validation split, scored by `peft-ts eval`'s code. */
  finalValLoss: number | null;
  /** max |logits with the adapter - logits of the merged weights| on a validation batch; null when not checked. */
  mergeMaxAbsDiff: number | null;
  mergeNote: string | null;
  trainCurve: { step: number; loss: number }[];
  valCurve: { step: number; loss: number }[];
}

export interface SweepMeta {
  config: string;
  model: string;
  data: string;
  method: string;
  grid: Record<string, (string | number)[]>;
  seeds: number[];
}

export interface Stat {
  mean: number;
  std: number;
  n: number;
}

/** Mean and sample standard deviation (0 for a single value) of the finite values. */
export function stat(values: readonly (number | null)[]): Stat | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.length > 1 ? v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1) : 0;
  return { mean, std: Math.sqrt(variance), n: v.length };
}

export interface PointSummary {
  key: string;
  point: Record<string, string | number>;
  runs: SweepRunResult[];
  trainableParams: number;
  adapterBytes: number;
  peakGpuBytes: Stat | null;
  tokensPerSecond: Stat | null;
  secondsPerEpoch: Stat | null;
  bestValLoss: Stat | null;
  bestValPerplexity: Stat | null;
  bestStep: Stat | null;
  finalValLoss: Stat | null;
  mergeMaxAbsDiff: number | null;
}

export function pointKey(point: Record<string, string | number>): string {
  return Object.entries(point)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** The runs grouped by grid point (seeds together), in the order of first appearance. */
export function summarize(results: readonly SweepRunResult[]): PointSummary[] {
  const groups = new Map<string, SweepRunResult[]>();
  for (const r of results) {
    const key = pointKey(r.point);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups].map(([key, runs]) => {
    const [first] = runs as [SweepRunResult, ...SweepRunResult[]];
    const merges = runs.map((r) => r.mergeMaxAbsDiff).filter((x): x is number => x !== null);
    return {
      key,
      point: first.point,
      runs,
      trainableParams: first.trainableParams,
      adapterBytes: first.adapterBytes,
      peakGpuBytes: stat(runs.map((r) => r.peakGpuBytes)),
      tokensPerSecond: stat(runs.map((r) => r.tokensPerSecond)),
      secondsPerEpoch: stat(runs.map((r) => r.secondsPerEpoch)),
      bestValLoss: stat(runs.map((r) => r.bestValLoss)),
      bestValPerplexity: stat(runs.map((r) => (r.bestValLoss === null ? null : Math.exp(r.bestValLoss)))),
      bestStep: stat(runs.map((r) => r.bestStep)),
      finalValLoss: stat(runs.map((r) => r.finalValLoss)),
      mergeMaxAbsDiff: merges.length > 0 ? Math.max(...merges) : null,
    };
  });
}

const fmt = (s: Stat | null, digits: number, unit = ''): string => (s === null ? 'n/a' : s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}${unit}` : `${s.mean.toFixed(digits)}${unit}`);
const fmtBytes = (s: Stat | null): string => (s === null ? 'n/a' : s.n > 1 ? `${formatBytes(s.mean)} ± ${formatBytes(s.std)}` : formatBytes(s.mean));

const COLUMNS = ['run', 'seeds', 'trainable params', 'adapter bytes', 'peak GPU memory', 'tokens/s', 'time/epoch', 'best val loss', 'best val ppl', 'best step', 'final val loss', 'merge check max |Δlogits|'];

function rows(points: readonly PointSummary[]): string[][] {
  return points.map((p) => [
    p.key,
    p.runs.map((r) => r.seed).join(','),
    p.trainableParams.toLocaleString('en-US'),
    p.adapterBytes.toLocaleString('en-US'),
    fmtBytes(p.peakGpuBytes),
    fmt(p.tokensPerSecond, 0),
    fmt(p.secondsPerEpoch, 2, ' s'),
    fmt(p.bestValLoss, 4),
    fmt(p.bestValPerplexity, 2),
    fmt(p.bestStep, 0),
    fmt(p.finalValLoss, 4),
    p.mergeMaxAbsDiff === null ? (p.runs[0]?.mergeNote ?? 'n/a') : p.mergeMaxAbsDiff.toExponential(2),
  ]);
}

/** The three plots as SVG text: validation loss vs trainable parameters, loss curves, tokens/s vs r. */
export function sweepPlots(points: readonly PointSummary[]): { params: string; curves: string; speed: string } {
  const hasR = points.every((p) => typeof p.point.r === 'number');
  // One line per setting of the grid keys other than r, its points ordered by size.
  const families = new Map<string, PointSummary[]>();
  for (const p of points) {
    const rest = pointKey(Object.fromEntries(Object.entries(p.point).filter(([k]) => k !== 'r'))) || 'runs';
    families.set(rest, [...(families.get(rest) ?? []), p]);
  }
  const familySeries = (y: (p: PointSummary) => { y: number; err: number } | null, x: (p: PointSummary) => number): PlotSeries[] =>
    [...families].map(([name, ps], i) => ({
      name,
      color: PALETTE[i % PALETTE.length] ?? '#000',
      points: ps
        .map((p) => ({ p, v: y(p) }))
        .filter((e): e is { p: PointSummary; v: { y: number; err: number } } => e.v !== null)
        .map(({ p, v }) => ({ x: x(p), y: v.y, err: v.err, label: hasR ? `r=${p.point.r}` : '' }))
        .sort((a, b) => a.x - b.x),
    }));
  const params = plotSvg(
    familySeries((p) => (p.bestValLoss ? { y: p.bestValLoss.mean, err: p.bestValLoss.std } : null), (p) => p.trainableParams),
    { title: 'Best validation loss vs trainable parameters', xLabel: 'trainable parameters', yLabel: 'validation loss', logX: true },
  );
  const curveSeries: PlotSeries[] = [];
  points.forEach((p, i) => {
    const color = PALETTE[i % PALETTE.length] ?? '#000';
    p.runs.forEach((r, k) => {
      const suffix = p.runs.length > 1 ? ` seed ${r.seed}` : '';
      const smooth = emaSmooth(r.trainCurve.map((c) => c.loss), defaultSmoothing(r.trainCurve.length));
      curveSeries.push({ name: `${p.key}${suffix} train`, color, markers: false, points: r.trainCurve.map((c, j) => ({ x: c.step, y: smooth[j] ?? c.loss })) });
      if (r.valCurve.length > 0 && k === 0) curveSeries.push({ name: `${p.key} validation`, color, dashed: true, points: r.valCurve.map((c) => ({ x: c.step, y: c.loss })) });
    });
  });
  const curves = plotSvg(curveSeries, { title: 'Loss curves (solid: training loss, EMA-smoothed; dashed: validation loss)', xLabel: 'optimizer step', yLabel: 'loss', width: 760, height: 380 + 16 * Math.ceil(curveSeries.length / 3) });
  const speed = plotSvg(
    familySeries((p) => (p.tokensPerSecond ? { y: p.tokensPerSecond.mean, err: p.tokensPerSecond.std } : null), (p) => (hasR ? Number(p.point.r) : p.trainableParams)),
    { title: hasR ? 'Training throughput vs r' : 'Training throughput vs trainable parameters', xLabel: hasR ? 'LoRA rank r' : 'trainable parameters', yLabel: 'tokens/s', logX: !hasR },
  );
  return { params, curves, speed };
}

function heading(meta: SweepMeta): string[] {
  const grid = Object.entries(meta.grid)
    .map(([k, v]) => `${k} ∈ {${v.join(', ')}}`)
    .join(', ');
  return [
    `Base config ${meta.config}: ${meta.method.toUpperCase()} on ${meta.model}, data ${meta.data}.`,
    `Grid ${grid}; seeds ${meta.seeds.join(', ')}. ${meta.seeds.length > 1 ? 'Values are mean ± standard deviation over the seeds.' : ''}`.trim(),
  ];
}

const NOTES = [
  'Trainable parameters and adapter bytes are those of the saved adapter (adapter_model.safetensors).',
  'Peak GPU memory is the tensor accounting of the run (base weights included); tokens/s counts every token fed, padding excluded.',
  'Best validation loss is the lowest evaluation during training (perplexity = exp(loss)); final val loss scores the final adapter with `peft-ts eval`.',
  'The first run of a sweep also compiles the GPU kernels, so its tokens/s reads lower than the later runs.',
  'The merge check merges the adapter into the base weights (a 4-bit base dequantized first, as the adapter saw it) and compares logits on a validation batch with those of the unmerged adapter.',
];

export function sweepMarkdown(meta: SweepMeta, results: readonly SweepRunResult[]): string {
  const points = summarize(results);
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [
    '# LoRA sweep report',
    '',
    ...heading(meta),
    '',
    line(COLUMNS),
    line(COLUMNS.map(() => '---')),
    ...rows(points).map(line),
    '',
    ...NOTES.map((n) => `- ${n}`),
    '',
    'Plots (validation loss vs trainable parameters, loss curves, tokens/s vs r) are in report.html.',
    '',
  ].join('\n');
}

export function sweepHtml(meta: SweepMeta, results: readonly SweepRunResult[]): string {
  const points = summarize(results);
  const plots = sweepPlots(points);
  const table = `<table><thead><tr>${COLUMNS.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${rows(points)
    .map((r) => `<tr>${r.map((c, i) => `<td${i > 1 ? ' class="n"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LoRA sweep report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:22px 0 8px}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:4px 8px}th{background:#f0f0ee;text-align:left}
td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}tbody tr:nth-child(even){background:#fafaf8}
.plots{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.plots svg{border:1px solid #ddd;background:#fff}
ul{color:#555;font-size:13px}
</style></head><body>
<h1>LoRA sweep report</h1>
${heading(meta)
  .map((l) => `<p>${escapeHtml(l)}</p>`)
  .join('\n')}
<h2>Runs</h2>
${table}
<ul>${NOTES.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>
<h2>Plots</h2>
<div class="plots">${plots.params}${plots.speed}</div>
<div class="plots" style="margin-top:16px">${plots.curves}</div>
</body></html>
`;
}
