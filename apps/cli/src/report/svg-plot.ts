// Small line/scatter plots as inline SVG text for the sweep report: linear or log x axis, nice
// ticks, error bars, a legend; no scripts, fonts or anything fetched, so the page stands alone.
import { escapeHtml } from './write-atomic.js';

export interface PlotPoint {
  x: number;
  y: number;
  /** Half-height of an error bar (a standard deviation), drawn when > 0. */
  err?: number;
  /** A short label written beside the point. */
  label?: string;
}

export interface PlotSeries {
  name: string;
  color: string;
  points: PlotPoint[];
  line?: boolean;
  dashed?: boolean;
  markers?: boolean;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  width?: number;
  height?: number;
}

/** Distinct colours that stay apart for the colour-blind (Okabe–Ito, then a few more). */
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#7f7f7f', '#000000', '#8c564b', '#bcbd22'];

/** About `count` round tick values covering [min, max] (steps of 1, 2 or 5 times a power of ten). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(Number.isFinite(min) && Number.isFinite(max))) return [];
  if (min === max) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    return niceTicks(min - pad, max + pad, count);
  }
  const raw = (max - min) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const ticks: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if ((ticks[0] ?? min) > min) ticks.unshift(Number(((ticks[0] ?? min) - step).toPrecision(12)));
  if ((ticks[ticks.length - 1] ?? max) < max) ticks.push(Number(((ticks[ticks.length - 1] ?? max) + step).toPrecision(12)));
  return ticks;
}

/** Ticks of a log axis: 1, 2 and 5 times the powers of ten within [min, max], or fewer when crowded. */
export function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let p = Math.floor(Math.log10(min)); p <= Math.ceil(Math.log10(max)); p += 1) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** p;
      if (v >= min * 0.999 && v <= max * 1.001) ticks.push(Number(v.toPrecision(6)));
    }
  }
  return ticks.length >= 2 ? ticks : [min, max];
}

/** A number short enough for an axis: 1.2k, 35k, 1.5M, 0.25, 3.5. */
export function shortNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  if (a >= 1000) return `${Number((v / 1e3).toPrecision(2))}k`;
  if (a === 0) return '0';
  return String(Number(v.toPrecision(3)));
}

export function plotSvg(series: readonly PlotSeries[], o: PlotOptions): string {
  const width = o.width ?? 560;
  const height = o.height ?? 340;
  const legendRows = Math.ceil(series.length / 3);
  const margin = { left: 64, right: 34, top: 30, bottom: 46 + legendRows * 16 };
  const pw = width - margin.left - margin.right;
  const ph = height - margin.top - margin.bottom;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const parts: string[] = [`<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(o.title)}" font-family="sans-serif" font-size="11">`];
  parts.push(`<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeHtml(o.title)}</text>`);
  if (all.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" fill="#777">no data</text></svg>`);
    return parts.join('');
  }
  const logX = o.logX === true && all.every((p) => p.x > 0);
  const xs = all.map((p) => p.x);
  const ylo = Math.min(...all.map((p) => p.y - (p.err ?? 0)));
  const yhi = Math.max(...all.map((p) => p.y + (p.err ?? 0)));
  const xTicks = logX ? logTicks(Math.min(...xs), Math.max(...xs)) : niceTicks(Math.min(...xs), Math.max(...xs), 6);
  const yTicks = niceTicks(ylo, yhi, 5);
  const x0 = logX ? Math.min(Math.log10(Math.min(...xs)), Math.log10(xTicks[0] ?? 1)) : (xTicks[0] ?? 0);
  const x1 = logX ? Math.max(Math.log10(Math.max(...xs)), Math.log10(xTicks[xTicks.length - 1] ?? 1)) : (xTicks[xTicks.length - 1] ?? 1);
  // A log axis gets a little room on both sides so the end points are not on the frame.
  const pad = logX ? Math.max(0.05, (x1 - x0) * 0.06) : 0;
  const [xa, xb] = [x0 - pad, x1 + pad];
  const [ya, yb] = [yTicks[0] ?? ylo, yTicks[yTicks.length - 1] ?? yhi];
  const sx = (x: number): number => margin.left + (((logX ? Math.log10(x) : x) - xa) / (xb - xa || 1)) * pw;
  const sy = (y: number): number => margin.top + ph - ((y - ya) / (yb - ya || 1)) * ph;
  const f = (v: number): string => v.toFixed(1);
  parts.push(`<rect x="${margin.left}" y="${margin.top}" width="${pw}" height="${ph}" fill="#fbfbfb" stroke="#999"/>`);
  for (const t of yTicks) {
    parts.push(`<line x1="${margin.left}" x2="${margin.left + pw}" y1="${f(sy(t))}" y2="${f(sy(t))}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${margin.left - 6}" y="${f(sy(t) + 4)}" text-anchor="end">${shortNumber(t)}</text>`);
  }
  for (const t of xTicks) {
    parts.push(`<line x1="${f(sx(t))}" x2="${f(sx(t))}" y1="${margin.top}" y2="${margin.top + ph}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${f(sx(t))}" y="${margin.top + ph + 15}" text-anchor="middle">${shortNumber(t)}</text>`);
  }
  parts.push(`<text x="${margin.left + pw / 2}" y="${margin.top + ph + 32}" text-anchor="middle">${escapeHtml(o.xLabel)}${logX ? ' (log scale)' : ''}</text>`);
  parts.push(`<text transform="translate(16 ${margin.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(o.yLabel)}</text>`);
  for (const s of series) {
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (s.line !== false && pts.length > 1) {
      const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${f(sx(p.x))} ${f(sy(p.y))}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    }
    for (const p of pts) {
      if ((p.err ?? 0) > 0) {
        const [cx, top, bottom] = [f(sx(p.x)), f(sy(p.y + (p.err ?? 0))), f(sy(p.y - (p.err ?? 0)))];
        parts.push(`<path d="M${cx} ${top} V${bottom} M${Number(cx) - 4} ${top} h8 M${Number(cx) - 4} ${bottom} h8" stroke="${s.color}" stroke-width="1.3" fill="none"/>`);
      }
      if (s.markers !== false) parts.push(`<circle cx="${f(sx(p.x))}" cy="${f(sy(p.y))}" r="3.5" fill="${s.color}"/>`);
      // A label near the right edge goes on the left of its point, so the frame does not cut it.
      const right = sx(p.x) > margin.left + pw - 40;
      if (p.label) parts.push(`<text x="${f(sx(p.x) + (right ? -6 : 6))}" y="${f(sy(p.y) - 6)}" fill="${s.color}"${right ? ' text-anchor="end"' : ''}>${escapeHtml(p.label)}</text>`);
    }
  }
  series.forEach((s, i) => {
    const lx = margin.left + (i % 3) * (pw / 3);
    const ly = margin.top + ph + 48 + Math.floor(i / 3) * 16;
    parts.push(`<line x1="${f(lx)}" x2="${f(lx + 18)}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    parts.push(`<text x="${f(lx + 23)}" y="${ly}">${escapeHtml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
