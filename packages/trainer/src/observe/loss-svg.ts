// An SVG loss chart with no dependencies, laid out like the usual training dashboards: the raw
// training loss faint behind its exponential moving average, validation points, non-finite steps
// marked on the top edge, labelled axes and a legend beside (never over) the plot.

export interface CurvePoint {
  step: number;
  value: number;
}

export interface LossCurveOptions {
  /** Chart title (default "loss"). */
  title?: string;
  /**
   * EMA weight in [0, 1): 0 draws the raw curve only; the default grows with the number of
   * points (none below 10 points, 0.5 at 10, 0.75 at 20, at most 0.8), so long noisy runs read
   * without the average lagging far behind.
   */
  smoothing?: number;
}

/** The chart's geometry, exported so that tests and callers can reason about the layout. */
export const LOSS_SVG_LAYOUT = { width: 800, height: 440, plot: { left: 72, top: 40, right: 610, bottom: 384 } } as const;

/**
 * Debiased exponential moving average: s_t = w * s_{t-1} + (1 - w) * x_t, divided by
 * (1 - w^n) over the n finite values seen so far, so that the first output equals the first
 * value instead of being pulled towards zero. Non-finite values yield NaN and leave the average
 * untouched.
 */
export function emaSmooth(values: readonly number[], weight: number): number[] {
  if (!(weight >= 0 && weight < 1)) throw new RangeError(`emaSmooth: weight: expected a number in [0, 1), got ${weight}`);
  let acc = 0;
  let n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return NaN;
    acc = weight * acc + (1 - weight) * v;
    n += 1;
    return weight === 0 ? v : acc / (1 - weight ** n);
  });
}

/** The smoothing weight used when none is given, from the number of training points. */
export function defaultSmoothing(points: number): number {
  if (points < 10) return 0;
  return Math.min(0.8, Math.round((1 - 5 / points) * 100) / 100);
}

function niceStep(span: number, count: number, integer: boolean): number {
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  return integer ? Math.max(1, Math.round(step)) : step;
}

function ticks(min: number, max: number, count: number, integer = false): number[] {
  if (!(max > min)) return [min];
  const step = niceStep(max - min, count, integer);
  const out: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f1 = (n: number) => n.toFixed(1);

function formatValue(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return Number(v.toPrecision(4)).toString();
}

const COLORS = { train: '#1f77b4', validation: '#e6550d', nonFinite: '#d62728', axis: '#444', grid: '#e8e8e8', text: '#222' };

/**
 * The chart as a standalone SVG document. Non-finite training losses are drawn as red crosses
 * on the plot's top edge at their step (their count is in the legend); the raw curve breaks
 * there, the average carries on over them.
 */
export function lossCurveSvg(series: { train: readonly CurvePoint[]; validation: readonly CurvePoint[] }, titleOrOptions: string | LossCurveOptions = {}): string {
  const opts: LossCurveOptions = typeof titleOrOptions === 'string' ? { title: titleOrOptions } : titleOrOptions;
  const title = opts.title ?? 'loss';
  const { width: W, height: H, plot } = LOSS_SVG_LAYOUT;
  const train = [...series.train].sort((a, b) => a.step - b.step);
  const validation = [...series.validation].sort((a, b) => a.step - b.step);
  const finiteTrain = train.filter((p) => Number.isFinite(p.value));
  const nonFinite = train.filter((p) => !Number.isFinite(p.value));
  const finiteVal = validation.filter((p) => Number.isFinite(p.value));
  const weight = opts.smoothing ?? defaultSmoothing(finiteTrain.length);
  const smoothed = emaSmooth(
    train.map((p) => p.value),
    weight,
  );
  const emaPoints = train.map((p, i) => ({ step: p.step, value: smoothed[i] ?? NaN })).filter((p) => Number.isFinite(p.value));

  // Axes: the step range covers every point, finite or not; a single step gets a unit either side.
  const steps = [...train, ...validation].map((p) => p.step);
  let xMin = steps.length ? Math.min(...steps) : 0;
  let xMax = steps.length ? Math.max(...steps) : 1;
  if (xMax - xMin < 1) {
    xMin = Math.max(0, xMin - 1);
    xMax = xMin === 0 && steps.length ? Math.max(...steps) + 1 : xMax + 1;
  }
  const values = [...finiteTrain, ...finiteVal].map((p) => p.value);
  let lo = values.length ? Math.min(...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (hi - lo < 1e-9 * Math.max(1, Math.abs(hi))) {
    const half = Math.max(0.5, Math.abs(hi) * 0.1);
    [lo, hi] = [lo - half, hi + half];
  }
  const margin = (hi - lo) * 0.06;
  lo -= margin;
  hi += margin;
  if (lo < 0 && values.every((v) => v >= 0)) lo = 0;
  // Near zero, start the axis at zero, as loss charts usually do.
  if (lo > 0 && lo < 0.25 * (hi - lo)) lo = 0;
  // Points sit a few pixels inside the frame so that markers on the first and last step show whole.
  const inset = 8;
  const x = (s: number) => plot.left + inset + ((s - xMin) / (xMax - xMin)) * (plot.right - plot.left - 2 * inset);
  const y = (v: number) => plot.top + (1 - (v - lo) / (hi - lo)) * (plot.bottom - plot.top);
  const pts = (ps: readonly CurvePoint[]) => ps.map((p) => `${f1(x(p.step))},${f1(y(p.value))}`).join(' ');

  // The raw curve as runs of consecutive finite points, so that a NaN step breaks the line.
  const runs: CurvePoint[][] = [];
  let current: CurvePoint[] = [];
  for (const p of train) {
    if (Number.isFinite(p.value)) current.push(p);
    else if (current.length) {
      runs.push(current);
      current = [];
    }
  }
  if (current.length) runs.push(current);

  const smoothingOn = weight > 0 && finiteTrain.length > 1;
  const showRawDots = finiteTrain.length <= 40;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12" fill="${COLORS.text}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text class="title" x="${(plot.left + plot.right) / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<rect class="plot-area" x="${plot.left}" y="${plot.top}" width="${plot.right - plot.left}" height="${plot.bottom - plot.top}" fill="#fcfcfc" stroke="none"/>`,
  );
  // Grid and tick labels.
  parts.push('<g class="y-ticks">');
  for (const t of ticks(lo, hi, 6).filter((t) => t >= lo && t <= hi)) {
    parts.push(`<line x1="${plot.left}" x2="${plot.right}" y1="${f1(y(t))}" y2="${f1(y(t))}" stroke="${COLORS.grid}"/><text x="${plot.left - 8}" y="${f1(y(t) + 4)}" text-anchor="end">${formatValue(t)}</text>`);
  }
  parts.push('</g>', '<g class="x-ticks">');
  for (const t of ticks(xMin, xMax, 8, true).filter((t) => t >= xMin && t <= xMax)) {
    parts.push(`<line x1="${f1(x(t))}" x2="${f1(x(t))}" y1="${plot.bottom}" y2="${plot.bottom + 5}" stroke="${COLORS.axis}"/><text x="${f1(x(t))}" y="${plot.bottom + 19}" text-anchor="middle">${t}</text>`);
  }
  parts.push('</g>');
  parts.push(
    `<line x1="${plot.left}" x2="${plot.right}" y1="${plot.bottom}" y2="${plot.bottom}" stroke="${COLORS.axis}"/>`,
    `<line x1="${plot.left}" x2="${plot.left}" y1="${plot.top}" y2="${plot.bottom}" stroke="${COLORS.axis}"/>`,
    `<text class="x-label" x="${(plot.left + plot.right) / 2}" y="${plot.bottom + 42}" text-anchor="middle" font-size="13">optimizer step</text>`,
    `<text class="y-label" x="${18}" y="${(plot.top + plot.bottom) / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 18 ${(plot.top + plot.bottom) / 2})">loss (cross-entropy)</text>`,
  );

  // Curves, clipped to the plot area.
  parts.push(`<clipPath id="plot-clip"><rect x="${plot.left}" y="${plot.top - 1}" width="${plot.right - plot.left}" height="${plot.bottom - plot.top + 2}"/></clipPath>`, '<g clip-path="url(#plot-clip)">');
  const rawOpacity = smoothingOn ? 0.3 : 1;
  for (const run of runs) {
    if (run.length > 1) parts.push(`<polyline class="train-raw" fill="none" stroke="${COLORS.train}" stroke-opacity="${rawOpacity}" stroke-width="1.5" stroke-linejoin="round" points="${pts(run)}"/>`);
  }
  if (showRawDots || finiteTrain.length === 1) {
    for (const p of finiteTrain) parts.push(`<circle class="train-point" cx="${f1(x(p.step))}" cy="${f1(y(p.value))}" r="${finiteTrain.length === 1 ? 4 : 2.5}" fill="${COLORS.train}" fill-opacity="${rawOpacity}"/>`);
  }
  if (smoothingOn) parts.push(`<polyline class="train-ema" fill="none" stroke="${COLORS.train}" stroke-width="2.5" stroke-linejoin="round" points="${pts(emaPoints)}"/>`);
  if (finiteVal.length > 1) parts.push(`<polyline class="validation-line" fill="none" stroke="${COLORS.validation}" stroke-width="1.5" stroke-dasharray="5 4" points="${pts(finiteVal)}"/>`);
  for (const p of finiteVal) parts.push(`<circle class="validation-point" cx="${f1(x(p.step))}" cy="${f1(y(p.value))}" r="4" fill="white" stroke="${COLORS.validation}" stroke-width="2"/>`);
  parts.push('</g>');
  parts.push('<g class="nonfinite">');
  for (const p of nonFinite) {
    const cx = x(p.step);
    const cy = plot.top + 6;
    parts.push(
      `<line x1="${f1(cx)}" x2="${f1(cx)}" y1="${plot.top}" y2="${plot.bottom}" stroke="${COLORS.nonFinite}" stroke-opacity="0.25" stroke-dasharray="2 3"/>` +
        `<path class="nonfinite-marker" data-step="${p.step}" d="M${f1(cx - 4)},${f1(cy - 4)}L${f1(cx + 4)},${f1(cy + 4)}M${f1(cx - 4)},${f1(cy + 4)}L${f1(cx + 4)},${f1(cy - 4)}" stroke="${COLORS.nonFinite}" stroke-width="2"><title>step ${p.step}: loss ${String(p.value)}</title></path>`,
    );
  }
  parts.push('</g>');
  if (finiteTrain.length === 0 && finiteVal.length === 0) {
    parts.push(`<text class="empty" x="${(plot.left + plot.right) / 2}" y="${(plot.top + plot.bottom) / 2}" text-anchor="middle" fill="#888">no finite loss values yet</text>`);
  }

  // Legend, right of the plot area.
  const lx = plot.right + 20;
  const legend: string[] = [];
  let ly = plot.top + 8;
  const row = (swatch: string, label: string, detail?: string) => {
    legend.push(`<g transform="translate(${lx}, ${ly})">${swatch}<text x="30" y="4">${esc(label)}</text>${detail ? `<text x="30" y="19" fill="#666" font-size="11">${esc(detail)}</text>` : ''}</g>`);
    ly += detail ? 38 : 24;
  };
  const lastEma = emaPoints.at(-1);
  const lastTrain = finiteTrain.at(-1);
  if (smoothingOn) {
    row(`<line x1="0" x2="22" y1="0" y2="0" stroke="${COLORS.train}" stroke-width="2.5"/>`, `train (EMA ${weight.toFixed(2)})`, lastEma ? `last ${formatValue(lastEma.value)} at step ${lastEma.step}` : undefined);
    row(`<line x1="0" x2="22" y1="0" y2="0" stroke="${COLORS.train}" stroke-opacity="0.3" stroke-width="1.5"/>`, 'train (raw)');
  } else {
    row(`<line x1="0" x2="22" y1="0" y2="0" stroke="${COLORS.train}" stroke-width="1.5"/><circle cx="11" cy="0" r="2.5" fill="${COLORS.train}"/>`, 'train', lastTrain ? `last ${formatValue(lastTrain.value)} at step ${lastTrain.step}` : 'no finite values');
  }
  if (validation.length) {
    const best = finiteVal.reduce<CurvePoint | undefined>((b, p) => (b === undefined || p.value < b.value ? p : b), undefined);
    row(`<line x1="0" x2="22" y1="0" y2="0" stroke="${COLORS.validation}" stroke-width="1.5" stroke-dasharray="5 4"/><circle cx="11" cy="0" r="4" fill="white" stroke="${COLORS.validation}" stroke-width="2"/>`, 'validation', best ? `best ${formatValue(best.value)} at step ${best.step}` : 'no finite values');
  }
  if (nonFinite.length) {
    row(`<path d="M7,-4L15,4M7,4L15,-4" stroke="${COLORS.nonFinite}" stroke-width="2"/>`, `non-finite loss (${nonFinite.length})`, `step${nonFinite.length > 1 ? 's' : ''} ${nonFinite.slice(0, 4).map((p) => p.step).join(', ')}${nonFinite.length > 4 ? ', ...' : ''}`);
  }
  parts.push(`<g class="legend" data-x="${lx}">`, ...legend, '</g>', '</svg>');
  return `${parts.join('\n')}\n`;
}
