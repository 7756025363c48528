// The loss chart's structure: labelled axes, a legend beside the plot, the smoothed curve where
// the reference EMA puts it, validation points and every non-finite step marked.
import { describe, expect, it } from 'vitest';
import { emaSmooth, lossCurveSvg, LOSS_SVG_LAYOUT, type CurvePoint } from '../index.js';

const { plot } = LOSS_SVG_LAYOUT;

/** The debiased EMA written out step by step, as the dashboards define it. */
function referenceEma(values: number[], w: number): number[] {
  const outv: number[] = [];
  let last = 0;
  let count = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) {
      outv.push(NaN);
      continue;
    }
    last = last * w + (1 - w) * v;
    count += 1;
    outv.push(last / (1 - Math.pow(w, count)));
  }
  return outv;
}

function attr(tag: string, name: string): string {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  if (!m?.[1]) throw new Error(`no ${name} in ${tag}`);
  return m[1];
}

const tags = (svg: string, cls: string) => svg.match(new RegExp(`<[a-z]+ class="${cls}"[^>]*>`, 'g')) ?? [];
const points = (tag: string) => attr(tag, 'points').split(' ').map((p) => p.split(',').map(Number) as [number, number]);

function noisyRun(n: number): CurvePoint[] {
  return Array.from({ length: n }, (_, i) => ({ step: i + 1, value: 0.5 + 5 * Math.exp(-(i + 1) / 20) + 0.3 * Math.sin(i * 2.3) }));
}

describe('lossCurveSvg', () => {
  it('labels both axes and draws the legend right of the plot area', () => {
    const svg = lossCurveSvg({ train: noisyRun(50), validation: [{ step: 0, value: 6 }, { step: 50, value: 1 }] }, 'training loss');
    expect(svg).toMatch(/<text class="title"[^>]*>training loss<\/text>/);
    expect(svg).toMatch(/<text class="x-label"[^>]*>optimizer step<\/text>/);
    expect(svg).toMatch(/<text class="y-label"[^>]*transform="rotate\(-90[^>]*>loss \(cross-entropy\)<\/text>/);
    const area = tags(svg, 'plot-area')[0] ?? '';
    const right = Number(attr(area, 'x')) + Number(attr(area, 'width'));
    expect(right).toBe(plot.right);
    const legendX = Number(attr(tags(svg, 'legend')[0] ?? '', 'data-x'));
    expect(legendX).toBeGreaterThan(right);
    const legend = svg.slice(svg.indexOf('<g class="legend"'));
    const offsets = [...legend.matchAll(/translate\(([\d.]+), ([\d.]+)\)/g)].map((m) => Number(m[1]));
    expect(offsets.length).toBe(3);
    for (const x of offsets) expect(x).toBeGreaterThan(right);
    expect(legend).toContain('train (EMA 0.80)');
    expect(legend).toContain('train (raw)');
    expect(legend).toContain('best 1 at step 50');
  });

  it('emaSmooth matches the reference debiased EMA', () => {
    const values = [4, 3.5, NaN, 3.9, 2.2, 2.8, Infinity, 1.9, 2.05];
    for (const w of [0, 0.6, 0.9]) {
      const got = emaSmooth(values, w);
      const want = referenceEma(values, w);
      got.forEach((g, i) => {
        const r = want[i] ?? NaN;
        if (Number.isNaN(r)) expect(g).toBeNaN();
        else expect(Math.abs(g - r)).toBeLessThanOrEqual(1e-12 + 1e-12 * Math.abs(r));
      });
    }
    expect(emaSmooth([3, 1], 0.5)[0]).toBe(3);
    expect(() => emaSmooth([1], 1)).toThrow(RangeError);
  });

  it('draws the smoothed curve where the reference EMA puts it, the raw one faint behind', () => {
    const train = noisyRun(80);
    const svg = lossCurveSvg({ train, validation: [] }, { smoothing: 0.7 });
    const [ema] = tags(svg, 'train-ema');
    const raw = tags(svg, 'train-raw');
    expect(raw.length).toBe(1);
    expect(Number(attr(raw[0] ?? '', 'stroke-opacity'))).toBeLessThan(0.5);
    expect(svg.indexOf('class="train-raw"')).toBeLessThan(svg.indexOf('class="train-ema"'));
    const drawn = points(ema ?? '');
    const want = referenceEma(
      train.map((p) => p.value),
      0.7,
    );
    expect(drawn.length).toBe(want.length);
    // The y axis is an affine map of the value: fit it on the first and last points, check all
    // (coordinates are written to 0.1 px).
    const [y0, yN] = [drawn[0]?.[1] ?? 0, drawn.at(-1)?.[1] ?? 0];
    const [v0, vN] = [want[0] ?? 0, want.at(-1) ?? 0];
    const scale = (yN - y0) / (vN - v0);
    expect(scale).toBeLessThan(0); // larger loss is higher up
    drawn.forEach(([, yy], i) => expect(Math.abs(yy - (y0 + ((want[i] ?? 0) - v0) * scale))).toBeLessThanOrEqual(0.15));
    // Raw and smoothed share the x positions of the steps, inside the plot area.
    const rawPts = points(raw[0] ?? '');
    drawn.forEach(([xx], i) => {
      expect(xx).toBe(rawPts[i]?.[0]);
      expect(xx).toBeGreaterThan(plot.left);
      expect(xx).toBeLessThan(plot.right);
    });
  });

  it('marks every NaN and Inf step instead of dropping it, and breaks the raw curve there', () => {
    const train = noisyRun(30).map((p) => ([7, 8, 20].includes(p.step) ? { step: p.step, value: NaN } : p.step === 25 ? { step: 25, value: Infinity } : p));
    const svg = lossCurveSvg({ train, validation: [] });
    const markers = tags(svg, 'nonfinite-marker');
    expect(markers.map((m) => Number(attr(m, 'data-step')))).toEqual([7, 8, 20, 25]);
    expect(svg).toContain('non-finite loss (4)');
    expect(svg).toContain('steps 7, 8, 20, 25');
    // Runs of finite steps: 1-6, 9-19, 21-24, 26-30.
    expect(tags(svg, 'train-raw').map((t) => points(t).length)).toEqual([6, 11, 4, 5]);
    // The average goes on over the gaps: one line through the 26 finite steps.
    expect(points(tags(svg, 'train-ema')[0] ?? '').length).toBe(26);
    expect(svg).not.toMatch(/="[^"]*(NaN|Infinity)[^"]*"/); // no coordinate is non-finite
    expect(svg).toContain('<title>step 25: loss Infinity</title>');
  });

  it('draws a one-step run as a visible point on an integer step axis', () => {
    const svg = lossCurveSvg({ train: [{ step: 1, value: 5.41 }], validation: [{ step: 0, value: 5.55 }, { step: 1, value: 5.38 }] });
    const [point] = tags(svg, 'train-point');
    const cx = Number(attr(point ?? '', 'cx'));
    const cy = Number(attr(point ?? '', 'cy'));
    expect(cx).toBeGreaterThan(plot.left);
    expect(cx).toBeLessThan(plot.right);
    expect(cy).toBeGreaterThan(plot.top);
    expect(cy).toBeLessThan(plot.bottom);
    expect(tags(svg, 'train-ema')).toEqual([]);
    expect(tags(svg, 'validation-point').length).toBe(2);
    const xTicks = [...svg.slice(svg.indexOf('class="x-ticks"'), svg.indexOf('</g>', svg.indexOf('class="x-ticks"'))).matchAll(/>(-?[\d.]+)<\/text>/g)].map((m) => m[1]);
    expect(xTicks).toEqual(['0', '1']);
    const only = lossCurveSvg({ train: [{ step: 1, value: 5.41 }], validation: [] });
    const onlyTicks = [...only.slice(only.indexOf('class="x-ticks"'), only.indexOf('</g>', only.indexOf('class="x-ticks"'))).matchAll(/>(-?[\d.]+)<\/text>/g)].map((m) => m[1]);
    expect(onlyTicks).toEqual(['0', '1', '2']);
    expect(only).toContain('last 5.41 at step 1');
  });

  it('says so when there is nothing finite to draw', () => {
    const svg = lossCurveSvg({ train: [{ step: 1, value: NaN }], validation: [] });
    expect(svg).toContain('no finite loss values yet');
    expect(tags(svg, 'nonfinite-marker').length).toBe(1);
    expect(svg).not.toContain('<polyline');
  });
});
