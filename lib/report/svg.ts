// Small inline-SVG charts for the report: a grouped bar chart and a line chart with axes, nice ticks
// and a legend. Generated as strings so the page needs no script and no network. Non-finite values
// are never plotted: a bar becomes an "n/a" mark and a line breaks around the gap.

/** Colour-blind-safe palette (Okabe and Ito), in series order. */
export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
/** Colour of highlighted bars (outlier columns). */
export const HIGHLIGHT = '#D55E00';

export interface Margin { top: number; right: number; bottom: number; left: number }
/** Room around the plot area for the legend (top), tick labels and axis titles. */
export const DEFAULT_MARGIN: Readonly<Margin> = Object.freeze({ top: 32, right: 16, bottom: 52, left: 64 });

export interface Series {
  name: string;
  values: ArrayLike<number>;
  /** Default: PALETTE in series order. */
  color?: string;
}

interface ChartBase {
  /** The data-plot attribute, which tests and readers use to find the chart. */
  id: string;
  /** Accessible name of the SVG. */
  title: string;
  /** One label per x position. */
  categories: string[];
  series: Series[];
  xLabel?: string;
  yLabel?: string;
  /** Default 760 x 280. */
  width?: number;
  height?: number;
  margin?: Margin;
  /** At most this many x tick labels are written (every k-th); default 16. */
  maxXLabels?: number;
}

export interface BarChartOptions extends ChartBase {
  /** Category indices drawn in `highlight.color` in every series, with a legend entry. */
  highlight?: { indices: ArrayLike<number>; name: string; color?: string };
  /** Horizontal reference lines (e.g. a detection threshold), dashed and labelled. */
  lines?: { value: number; label: string }[];
  /** Text above each bar, barLabels[series][category] (e.g. "2.4x"). */
  barLabels?: string[][];
  /** Series stacked in one bar per category (values >= 0; e.g. where a video's time goes), instead of side by side. */
  stacked?: boolean;
}

export type LineChartOptions = ChartBase;

/** Escapes text for HTML and SVG content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A number for people: "n/a" when not finite, else at most `digits` significant digits (exponent form beyond 1e6 or below 1e-3). */
export function formatNumber(value: number, digits = 3): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'n/a';
  if (value === 0) return '0';
  const a = Math.abs(value);
  if (a >= 1e6 || a < 1e-3) return value.toExponential(digits - 1);
  return String(Number(value.toPrecision(digits)));
}

/**
 * Tick values covering [lo, hi] with a step of 1, 2 or 5 times a power of ten chosen so that about
 * `count` steps span the range; the first tick is <= lo and the last >= hi, so they are also the
 * axis domain. An empty or non-finite range gives [0, 1].
 *
 * @example
 * niceTicks(0, 4);      // [0, 1, 2, 3, 4]
 * niceTicks(31.2, 38.9); // [30, 32, 34, 36, 38, 40]
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) return [0, 1];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  // Integer multiples of the step, then rounded to the step's decimals, so 0.1 * 3 prints as 0.3.
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  const first = Math.floor(lo / step + 1e-9), last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toFixed(decimals)));
  return ticks;
}

/** A linear map from the domain [d0, d1] to the pixel range [r0, r1]. */
export function linearScale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/**
 * A grouped bar chart: one group per category, one bar per series. The y axis spans nice ticks
 * over [min(0, values, lines), max(0, values, lines)], so a bar's height is |v| / (domain span) times
 * the plot height and bars stand on the zero line. Bars are `<rect class="bar">` with data-series and
 * data-index; a non-finite value draws `<text class="na">n/a</text>` instead.
 *
 * @example
 * barChart({ id: 'speed', title: 'Time per video', categories: ['W8A8'],
 *            series: [{ name: 'FP32', values: [2.1] }, { name: 'quantized', values: [0.9] }] });
 */
export function barChart(o: BarChartOptions): string {
  if (o.stacked) return stackedBarChart(o);
  const g = geometry(o);
  const finite = [...o.series.flatMap((s) => finiteValues(s.values)), ...finiteValues((o.lines ?? []).map((l) => l.value))];
  const lo = Math.min(0, least(finite)), hi = Math.max(0, greatest(finite));
  const ticks = lo === hi ? [0, 1] : niceTicks(lo, hi);
  const y = linearScale(ticks[0], ticks[ticks.length - 1], g.bottom, g.top);
  const n = o.categories.length, m = Math.max(1, o.series.length);
  const band = (g.right - g.left) / Math.max(1, n);
  // Wide groups get gaps between them; hundreds of columns (outlier norms) use the whole band.
  const inner = band * (band >= 12 ? 0.8 : 1);
  const barW = inner / m;
  const highlighted = new Set(Array.from(o.highlight?.indices ?? []));
  const hiColor = o.highlight?.color ?? HIGHLIGHT;
  const parts: string[] = [axes(g, ticks, y, o), xLabels(g, o.categories, band, o.maxXLabels)];
  o.series.forEach((s, si) => {
    const color = s.color ?? PALETTE[si % PALETTE.length];
    for (let i = 0; i < n; i++) {
      const v = s.values[i];
      const x = g.left + i * band + (band - inner) / 2 + si * barW;
      if (!Number.isFinite(v)) {
        parts.push(`<text class="na" x="${r(x + barW / 2)}" y="${r(y(0) - 4)}" text-anchor="middle" font-size="10">n/a</text>`);
        continue;
      }
      const top = Math.min(y(v), y(0)), h = Math.abs(y(v) - y(0));
      const fill = highlighted.has(i) ? hiColor : color;
      parts.push(`<rect class="bar" data-series="${si}" data-index="${i}" x="${r(x)}" y="${r(top)}" width="${r(barW)}" height="${r(h)}" fill="${fill}"><title>${escapeHtml(`${s.name} — ${o.categories[i]}: ${formatNumber(v, 4)}`)}</title></rect>`);
      const label = o.barLabels?.[si]?.[i];
      if (label) parts.push(`<text class="bar-label" x="${r(x + barW / 2)}" y="${r(top - 4)}" text-anchor="middle" font-size="11">${escapeHtml(label)}</text>`);
    }
  });
  for (const l of o.lines ?? []) {
    if (!Number.isFinite(l.value)) continue;
    const ly = r(y(l.value));
    parts.push(`<line class="ref-line" x1="${g.left}" x2="${g.right}" y1="${ly}" y2="${ly}" stroke="#444" stroke-dasharray="5 3"/>`);
    parts.push(`<text x="${g.right - 2}" y="${r(y(l.value) - 4)}" text-anchor="end" font-size="11">${escapeHtml(`${l.label} ${formatNumber(l.value, 4)}`)}</text>`);
  }
  const legend = o.series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length] }));
  if (o.highlight && highlighted.size > 0) legend.push({ name: o.highlight.name, color: hiColor });
  return svg(g, o, parts, legend);
}

// One bar per category, the series' (finite, non-negative) values stacked bottom up in series order;
// the bar label (barLabels[0][category]) goes above the stack.
function stackedBarChart(o: BarChartOptions): string {
  const g = geometry(o);
  const n = o.categories.length;
  const value = (s: Series, i: number) => (Number.isFinite(s.values[i]) ? Math.max(0, s.values[i]) : 0);
  const totals = o.categories.map((_, i) => o.series.reduce((t, s) => t + value(s, i), 0));
  const hi = greatest(totals);
  const ticks = hi > 0 ? niceTicks(0, hi) : [0, 1];
  const y = linearScale(ticks[0], ticks[ticks.length - 1], g.bottom, g.top);
  const band = (g.right - g.left) / Math.max(1, n);
  const barW = band * 0.6;
  const parts: string[] = [axes(g, ticks, y, o), xLabels(g, o.categories, band, o.maxXLabels)];
  for (let i = 0; i < n; i++) {
    const x = g.left + i * band + (band - barW) / 2;
    let base = 0;
    o.series.forEach((s, si) => {
      const v = value(s, i);
      if (v === 0) return;
      const top = y(base + v), h = y(base) - top;
      const color = s.color ?? PALETTE[si % PALETTE.length];
      parts.push(`<rect class="bar" data-series="${si}" data-index="${i}" x="${r(x)}" y="${r(top)}" width="${r(barW)}" height="${r(h)}" fill="${color}"><title>${escapeHtml(`${s.name} — ${o.categories[i]}: ${formatNumber(v, 4)}`)}</title></rect>`);
      base += v;
    });
    const label = o.barLabels?.[0]?.[i];
    if (label) parts.push(`<text class="bar-label" x="${r(x + barW / 2)}" y="${r(y(base) - 4)}" text-anchor="middle" font-size="11">${escapeHtml(label)}</text>`);
  }
  return svg(g, o, parts, o.series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length] })));
}

/**
 * A line chart over categories (e.g. chunks): series values become `<circle class="point">` markers
 * joined by a path; non-finite values are skipped and break the line. The y axis spans nice ticks
 * over the finite values.
 *
 * @example
 * lineChart({ id: 'psnr-W8A8', title: 'PSNR per chunk', categories: ['0', '1', '2'],
 *             series: [{ name: 'full method', values: [41.2, 39.8, 38.5] }] });
 */
export function lineChart(o: LineChartOptions): string {
  const g = geometry(o);
  const finite = o.series.flatMap((s) => finiteValues(s.values));
  const ticks = finite.length ? niceTicks(least(finite), greatest(finite)) : [0, 1];
  const y = linearScale(ticks[0], ticks[ticks.length - 1], g.bottom, g.top);
  const n = o.categories.length;
  const band = (g.right - g.left) / Math.max(1, n);
  const parts: string[] = [axes(g, ticks, y, o), xLabels(g, o.categories, band, o.maxXLabels)];
  o.series.forEach((s, si) => {
    const color = s.color ?? PALETTE[si % PALETTE.length];
    let d = '', pen = false;
    const points: string[] = [];
    for (let i = 0; i < n; i++) {
      const v = s.values[i];
      if (!Number.isFinite(v)) {
        pen = false;
        continue;
      }
      const px = r(g.left + (i + 0.5) * band), py = r(y(v));
      d += `${pen ? 'L' : 'M'}${px} ${py}`;
      pen = true;
      points.push(`<circle class="point" data-series="${si}" data-index="${i}" cx="${px}" cy="${py}" r="3" fill="${color}"><title>${escapeHtml(`${s.name} — ${o.categories[i]}: ${formatNumber(v, 4)}`)}</title></circle>`);
    }
    if (d) parts.push(`<path class="line" data-series="${si}" d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    parts.push(...points);
  });
  if (finite.length === 0) parts.push(`<text class="na" x="${r((g.left + g.right) / 2)}" y="${r((g.top + g.bottom) / 2)}" text-anchor="middle">n/a</text>`);
  return svg(g, o, parts, o.series.map((s, i) => ({ name: s.name, color: s.color ?? PALETTE[i % PALETTE.length] })));
}

interface Geometry { width: number; height: number; left: number; right: number; top: number; bottom: number }

function geometry(o: ChartBase): Geometry {
  const width = o.width ?? 760, height = o.height ?? 280, m = o.margin ?? DEFAULT_MARGIN;
  return { width, height, left: m.left, right: width - m.right, top: m.top, bottom: height - m.bottom };
}

function finiteValues(values: ArrayLike<number>): number[] {
  return Array.from(values).filter(Number.isFinite);
}

// Loops rather than Math.min(...v): a layer's column norms can exceed the engine's argument limit.
function least(values: number[]): number {
  let m = Infinity;
  for (const v of values) if (v < m) m = v;
  return m;
}

function greatest(values: number[]): number {
  let m = -Infinity;
  for (const v of values) if (v > m) m = v;
  return m;
}

// Rounded pixel coordinates keep the markup short and stable.
function r(v: number): number {
  return Math.round(v * 100) / 100;
}

function axes(g: Geometry, ticks: number[], y: (v: number) => number, o: ChartBase): string {
  const out = [`<g class="axes" font-size="11" fill="#333">`];
  for (const t of ticks) {
    const ty = r(y(t));
    out.push(`<line x1="${g.left}" x2="${g.right}" y1="${ty}" y2="${ty}" stroke="#e4e4e4"/>`);
    out.push(`<text class="tick" x="${g.left - 6}" y="${r(ty + 4)}" text-anchor="end">${escapeHtml(formatNumber(t, 6))}</text>`);
  }
  out.push(`<line x1="${g.left}" x2="${g.left}" y1="${g.top}" y2="${g.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${g.left}" x2="${g.right}" y1="${g.bottom}" y2="${g.bottom}" stroke="#333"/>`);
  if (o.xLabel) out.push(`<text x="${r((g.left + g.right) / 2)}" y="${g.height - 8}" text-anchor="middle">${escapeHtml(o.xLabel)}</text>`);
  if (o.yLabel) {
    const cy = r((g.top + g.bottom) / 2);
    out.push(`<text x="14" y="${cy}" text-anchor="middle" transform="rotate(-90 14 ${cy})">${escapeHtml(o.yLabel)}</text>`);
  }
  out.push('</g>');
  return out.join('');
}

function xLabels(g: Geometry, categories: string[], band: number, max = 16): string {
  const every = Math.max(1, Math.ceil(categories.length / max));
  const out = [`<g class="x-labels" font-size="11" fill="#333" text-anchor="middle">`];
  categories.forEach((c, i) => {
    if (i % every === 0) out.push(`<text x="${r(g.left + (i + 0.5) * band)}" y="${g.bottom + 16}">${escapeHtml(c)}</text>`);
  });
  out.push('</g>');
  return out.join('');
}

function svg(g: Geometry, o: ChartBase, parts: string[], legend: { name: string; color: string }[]): string {
  const items: string[] = [];
  let x = g.left;
  for (const { name, color } of legend) {
    items.push(`<rect x="${r(x)}" y="8" width="12" height="12" fill="${color}"/><text x="${r(x + 16)}" y="18">${escapeHtml(name)}</text>`);
    // Text width is not measurable here; 6.5 px per character at 11 px is close for sans-serif.
    x += 28 + 6.5 * name.length;
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" data-plot="${escapeHtml(o.id)}" role="img" aria-label="${escapeHtml(o.title)}" ` +
    `width="${g.width}" height="${g.height}" viewBox="0 0 ${g.width} ${g.height}" font-family="sans-serif">` +
    `<title>${escapeHtml(o.title)}</title>${parts.join('')}<g class="legend" font-size="11" fill="#333">${items.join('')}</g></svg>`
  );
}
