// An SVG loss curve (train and validation) with no dependencies: polylines over axes with ticks.

export interface CurvePoint {
  step: number;
  value: number;
}

function niceTicks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function lossCurveSvg(series: { train: CurvePoint[]; validation: CurvePoint[] }, title = 'loss'): string {
  const W = 720;
  const H = 420;
  const pad = { left: 64, right: 20, top: 36, bottom: 48 };
  const all = [...series.train, ...series.validation].filter((p) => Number.isFinite(p.value));
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const minStep = Math.min(maxStep - 1, ...all.map((p) => p.step));
  let lo = Math.min(...all.map((p) => p.value));
  let hi = Math.max(...all.map((p) => p.value));
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  const span = hi - lo;
  lo -= span * 0.05;
  hi += span * 0.05;
  const x = (s: number) => pad.left + ((s - minStep) / (maxStep - minStep)) * (W - pad.left - pad.right);
  const y = (v: number) => pad.top + (1 - (v - lo) / (hi - lo)) * (H - pad.top - pad.bottom);
  const line = (pts: CurvePoint[], color: string, dash = '') =>
    pts.length === 0
      ? ''
      : `<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${pts
          .filter((p) => Number.isFinite(p.value))
          .map((p) => `${x(p.step).toFixed(1)},${y(p.value).toFixed(1)}`)
          .join(' ')}"/>` + pts.filter((p) => Number.isFinite(p.value)).map((p) => `<circle cx="${x(p.step).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="2.5" fill="${color}"/>`).join('');
  const xTicks = niceTicks(minStep, maxStep, 8).filter((t) => t >= minStep && t <= maxStep);
  const yTicks = niceTicks(lo, hi, 6).filter((t) => t >= lo && t <= hi);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
    ...yTicks.map((t) => `<line x1="${pad.left}" x2="${W - pad.right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#e5e5e5"/><text x="${pad.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`),
    ...xTicks.map((t) => `<text x="${x(t).toFixed(1)}" y="${H - pad.bottom + 18}" text-anchor="middle">${t}</text>`),
    `<line x1="${pad.left}" x2="${W - pad.right}" y1="${H - pad.bottom}" y2="${H - pad.bottom}" stroke="#333"/>`,
    `<line x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${H - pad.bottom}" stroke="#333"/>`,
    `<text x="${W / 2}" y="${H - 10}" text-anchor="middle">optimizer step</text>`,
    line(series.train, '#1f77b4'),
    line(series.validation, '#d62728', '6 4'),
    `<g transform="translate(${W - pad.right - 150}, ${pad.top + 8})"><line x1="0" x2="24" y1="0" y2="0" stroke="#1f77b4" stroke-width="2"/><text x="30" y="4">train</text>`,
    series.validation.length ? `<line x1="0" x2="24" y1="18" y2="18" stroke="#d62728" stroke-width="2" stroke-dasharray="6 4"/><text x="30" y="22">validation</text>` : '',
    `</g></svg>`,
  ];
  return `${parts.join('\n')}\n`;
}
