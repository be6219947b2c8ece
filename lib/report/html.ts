// The demo report: one self-contained HTML page (inline CSS and SVG, no script, no network) beside
// the images and checkpoints it links to by relative paths.
import { prepareOutputFolder } from '../io/paths.js';
import path from 'node:path';
import { detectOutliersFromNorms } from '../calibration/outliers.js';
import { writeFileAtomic } from '../io/safetensors.js';
import { checkReportData, PROFILE_PARTS, type ReportData, type ReportOutlierLayer, type ReportProfile, type ReportSetting, type ReportTracking, type ReportTraining } from './data.js';
import { barChart, escapeHtml as esc, formatNumber as fmt, lineChart } from './svg.js';

/**
 * Renders the report page for `data` (validated first, see checkReportData). Plots are inline SVG
 * carrying `data-plot` names: 'timeline', 'sensitivity', 'psnr-<setting>', 'ssim-<setting>', 'speed',
 * 'profile' (when data.profiles is given), 'memory', 'outliers-<i>', 'training'; images carry
 * `data-image` ('strip' or 'animation'); tables carry `data-table` ('config', 'steps', 'sensitivity',
 * 'speed-memory', 'profile', 'ablation', 'chunks-<setting>', 'tracking').
 *
 * @example
 * const html = renderReport(data);
 */
export function renderReport(data: ReportData): string {
  const d = checkReportData(data);
  const body = [
    header(d),
    section('setup', 'Model and machine', setup(d)),
    ...(d.training ? [section('training', 'Training of the model', training(d.training))] : []),
    section('timeline', 'Demo timeline', timeline(d)),
    section('sensitivity', 'Chunk-wise sensitivity', sensitivity(d)),
    section('quality', 'Per-chunk error against the FP32 video', d.settings.length ? d.settings.map(quality).join('') : empty('No quantized settings.')),
    section('speed-memory', 'Speed and memory against FP32', speedMemory(d)),
    section('ablation', 'Ablation', ablation(d)),
    section('outliers', 'Outlier input columns', d.outliers.length ? d.outliers.map(outlierPlot).join('') : empty('No layers shown.')),
    ...(d.tracking ? [section('tracking', 'Object tracking on held-out captions', tracking(d.tracking))] : []),
    section('videos', 'Videos: FP32 and quantized', d.videos.length ? d.videos.map(video).join('') : empty('No videos.')),
    section('notes', 'Notes', d.notes.length ? `<ul>${d.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : empty('No notes.')),
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(d.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/**
 * Writes `dir/index.html` for `data` atomically (temporary file, then rename), creating `dir` if
 * needed, and returns the file's path. Images and checkpoints named in `data` are linked by their
 * paths relative to `dir`; they are not copied or checked.
 *
 * @example
 * const file = await writeReport('report', data); // 'report/index.html'
 */
export async function writeReport(dir: string, data: ReportData): Promise<string> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`Expected a directory path for dir but received ${typeof dir === 'string' ? 'an empty string' : typeof dir}`);
  const html = renderReport(data);
  await prepareOutputFolder(dir, 'dir');
  const file = path.join(dir, 'index.html');
  await writeFileAtomic(file, html);
  return file;
}

const CSS = `
body { font-family: system-ui, sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 1000px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
.meta, .caption, .empty { color: #555; font-size: .92rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; background: #fff; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best { background: #e8f4ea; font-weight: 600; }
figure { margin: 1rem 0; } figcaption { color: #555; font-size: .9rem; }
svg { max-width: 100%; height: auto; background: #fff; border: 1px solid #eee; }
img { image-rendering: pixelated; max-width: 100%; border: 1px solid #ddd; }
/* Latents are a few dozen pixels wide: show them larger, without smoothing. */
img[data-image="strip"] { width: 100%; height: auto; }
img[data-image="animation"] { width: 280px; height: auto; }
.animations { display: flex; flex-wrap: wrap; gap: 1rem; }
.summary li { margin: .2rem 0; }
details { margin: .4rem 0 1rem; }
`;

function section(id: string, title: string, content: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>${content}</section>`;
}

function empty(text: string): string {
  return `<p class="empty">${esc(text)}</p>`;
}

function figure(svg: string, caption: string): string {
  return `<figure>${svg}<figcaption>${caption}</figcaption></figure>`;
}

function table(name: string, head: string[], rows: string[][], rowClass: (i: number) => string = () => ''): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const tr = rows.map((r, i) => `<tr${rowClass(i)}>${r.join('')}</tr>`).join('');
  return `<table data-table="${esc(name)}"><thead><tr>${th}</tr></thead><tbody>${tr}</tbody></table>`;
}

const cell = (text: string) => `<td>${esc(text)}</td>`;
const num = (text: string) => `<td class="num">${esc(text)}</td>`;

function seconds(s: number): string {
  return Number.isFinite(s) ? `${fmt(s, 3)} s` : 'n/a';
}

/** The binary unit in which `n` bytes reads as a number below 1024, and its size in bytes. */
function byteUnit(n: number): [string, number] {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let u = 0;
  while (Math.abs(n) >= 1024 ** (u + 1) && u < units.length - 1) u++;
  return [units[u], 1024 ** u];
}

/** Bytes with a binary prefix, 3 significant digits. */
function bytes(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  const [unit, div] = byteUnit(n);
  return `${fmt(n / div, 3)} ${unit}`;
}

/** a / b written as "2.31x"; "n/a" when either is not finite or b is 0. */
function ratio(a: number, b: number): string {
  const q = a / b;
  return Number.isFinite(q) ? `${fmt(q, 3)}x` : 'n/a';
}

// Relative file paths as URLs: every segment percent-encoded, so '#', '?' and spaces stay in the name.
function href(file: string): string {
  return esc(file.split(/[\\/]/).map(encodeURIComponent).join('/'));
}

function header(d: ReportData): string {
  const date = new Date(d.createdAt);
  const items = d.settings.map((s) => {
    const best = bestRow(d, s.name);
    const quality = best ? `; best ablation row: ${best.method} at ${fmt(best.psnr, 4)} dB PSNR` : '';
    return `<li><strong>${esc(s.name)}</strong>: generation ${esc(ratio(s.speed.fp32Seconds, s.speed.quantSeconds))} as fast as FP32, weights ${esc(ratio(s.bytes.quantized, s.bytes.fp32))} of FP32's bytes${esc(quality)}</li>`;
  });
  return `<header><h1>${esc(d.title)}</h1>
<p class="meta">${esc(Number.isNaN(date.getTime()) ? d.createdAt : date.toISOString())} · model ${esc(d.model.name)} · ${esc(d.machine.cpu)} (${esc(d.machine.isa)}, ${d.machine.threads} threads) · whole demo ${esc(seconds(d.totalSeconds))}</p>
${items.length ? `<ul class="summary">${items.join('')}</ul>` : ''}</header>`;
}

function setup(d: ReportData): string {
  const config = table('config', ['parameter', 'value'], Object.entries(d.model.config).map(([k, v]) => [cell(k), typeof v === 'number' ? num(fmt(v, 6)) : cell(v)]));
  const m = d.machine;
  const machine = table('machine', ['property', 'value'], [[cell('CPU'), cell(m.cpu)], [cell('ISA path'), cell(m.isa)], [cell('threads'), num(String(m.threads))], [cell('Node.js'), cell(m.node)]]);
  return `<h3>Model ${esc(d.model.name)}</h3>${config}<h3>Machine</h3>${machine}`;
}

function timeline(d: ReportData): string {
  const plot = barChart({
    id: 'timeline', title: 'Wall time of each demo step', categories: d.steps.map((s) => s.name),
    series: [{ name: 'seconds', values: d.steps.map((s) => s.seconds) }], yLabel: 'seconds',
    barLabels: [d.steps.map((s) => seconds(s.seconds))], maxXLabels: 12,
  });
  const rows = d.steps.map((s) => [cell(s.name), num(seconds(s.seconds))]);
  rows.push([cell('total'), num(seconds(d.totalSeconds))]);
  return figure(plot, `The whole demo took ${esc(seconds(d.totalSeconds))}.`) + table('steps', ['step', 'time'], rows);
}

function sensitivity(d: ReportData): string {
  const s = d.sensitivity;
  const n = Math.max(s.values.length, s.reference?.length ?? 0);
  const categories = Array.from({ length: n }, (_, k) => String(k));
  const series = [{ name: `measured (${s.prompts} prompts)`, values: s.values }];
  if (s.reference) series.push({ name: 'reference (paper)', values: s.reference });
  const plot = barChart({ id: 'sensitivity', title: 'Chunk-wise sensitivity', categories, series, xLabel: 'chunk', yLabel: 'sensitivity (sums to 1)' });
  const rows = categories.map((c, k) => [cell(c), num(fmt(s.values[k] ?? NaN, 3)), num(fmt(s.chunkWeights[k] ?? NaN, 3)), ...(s.reference ? [num(fmt(s.reference[k] ?? NaN, 3))] : [])]);
  const head = ['chunk', 'sensitivity s_k', 'weight s_k / mean(s)', ...(s.reference ? ['reference'] : [])];
  const verdict = s.decreasing ? 'decreases over chunks, as in the reference' : 'does <strong>not</strong> decrease over chunks, unlike the reference';
  return figure(plot, `Mean squared error of the final latents when only chunk k is quantized, normalised to sum 1. The measured sensitivity ${verdict}.`) + table('sensitivity', head, rows);
}

function quality(s: ReportSetting): string {
  const n = Math.max(0, ...s.perChunk.map((c) => c.psnr.length));
  const categories = Array.from({ length: n }, (_, k) => String(k));
  const plot = (metric: 'psnr' | 'ssim', label: string) =>
    lineChart({ id: `${metric}-${s.name}`, title: `${s.name}: ${label} per chunk`, categories, series: s.perChunk.map((c) => ({ name: c.method, values: c[metric] })), xLabel: 'chunk', yLabel: label });
  const rows = s.perChunk.flatMap((c) => categories.map((k, i) => [cell(c.method), cell(k), num(fmt(c.psnr[i] ?? NaN, 4)), num(fmt(c.ssim[i] ?? NaN, 4)), num(fmt(c.mse[i] ?? NaN, 3))]));
  return `<h3>${esc(s.name)}</h3>` +
    figure(plot('psnr', 'latent PSNR (dB)'), `Higher is better. Checkpoint: <a data-checkpoint href="${href(s.checkpoint)}">${esc(s.checkpoint)}</a>.`) +
    figure(plot('ssim', 'SSIM'), 'Higher is better (1 = identical).') +
    `<details><summary>Numbers</summary>${table(`chunks-${s.name}`, ['method', 'chunk', 'PSNR (dB)', 'SSIM', 'MSE'], rows)}</details>`;
}

function speedMemory(d: ReportData): string {
  if (!d.settings.length) return empty('No quantized settings.');
  const names = d.settings.map((s) => s.name);
  const speed = barChart({
    id: 'speed', title: 'Seconds to generate one video', categories: names, yLabel: 'seconds per video',
    series: [{ name: 'FP32', values: d.settings.map((s) => s.speed.fp32Seconds) }, { name: 'quantized', values: d.settings.map((s) => s.speed.quantSeconds) }],
    barLabels: [d.settings.map(() => ''), d.settings.map((s) => ratio(s.speed.fp32Seconds, s.speed.quantSeconds))],
  });
  const [unit, div] = byteUnit(Math.max(0, ...d.settings.flatMap((s) => Object.values(s.bytes)).filter(Number.isFinite)));
  const memory = barChart({
    id: 'memory', title: 'Weight bytes', categories: d.settings.flatMap((s) => [`${s.name} model`, `${s.name} blocks`]), yLabel: unit,
    series: [
      { name: 'FP32', values: d.settings.flatMap((s) => [s.bytes.fp32 / div, s.bytes.blockFp32 / div]) },
      { name: 'quantized', values: d.settings.flatMap((s) => [s.bytes.quantized / div, s.bytes.blockQuantized / div]) },
    ],
    barLabels: [d.settings.flatMap(() => ['', '']), d.settings.flatMap((s) => [ratio(s.bytes.quantized, s.bytes.fp32), ratio(s.bytes.blockQuantized, s.bytes.blockFp32)])],
  });
  const rows = d.settings.map((s) => [
    cell(s.name), num(seconds(s.speed.fp32Seconds)), num(seconds(s.speed.quantSeconds)), num(ratio(s.speed.fp32Seconds, s.speed.quantSeconds)),
    num(bytes(s.bytes.fp32)), num(bytes(s.bytes.quantized)), num(ratio(s.bytes.quantized, s.bytes.fp32)), num(ratio(s.bytes.blockQuantized, s.bytes.blockFp32)),
  ]);
  return figure(speed, 'Labels: speed-up over FP32 (FP32 time / quantized time).') + profile(d) +
    figure(memory, 'Labels: quantized bytes as a fraction of FP32 bytes, for all weights ("model") and for the transformer blocks alone.') +
    table('speed-memory', ['setting', 'FP32 time', 'quantized time', 'speed-up', 'FP32 weights', 'quantized weights', 'weights ratio', 'blocks ratio'], rows);
}

// Where one video's time goes, a stacked bar per variant (the kernels' categories and the rest).
function profile(d: ReportData): string {
  if (!d.profiles?.length) return '';
  const total = (p: ReportProfile) => PROFILE_PARTS.reduce((t, k) => t + p[k], 0);
  const plot = barChart({
    id: 'profile', title: 'Where the time of one video goes', categories: d.profiles.map((p) => p.variant), yLabel: 'seconds per video', stacked: true,
    series: PROFILE_PARTS.map((k) => ({ name: k, values: d.profiles!.map((p) => p[k]) })),
    barLabels: [d.profiles.map((p) => seconds(total(p)))],
  });
  const rows = d.profiles.map((p) => [cell(p.variant), ...PROFILE_PARTS.map((k) => num(`${fmt(p[k], 3)} s (${(100 * p[k] / (total(p) || 1)).toFixed(0)}%)`)), num(seconds(total(p)))]);
  return figure(plot, 'One profiled video per variant: block and embedding linears (with the activation quantization), attention, norms and modulation, activations, copies and cache writes, and the rest (JavaScript, N-API, waiting for threads).') +
    table('profile', ['variant', ...PROFILE_PARTS, 'total'], rows);
}

// The row with the highest finite PSNR of a setting (the first on ties); none when no PSNR is finite.
function bestRow(d: ReportData, setting: string): ReportData['ablation'][number] | undefined {
  let best: ReportData['ablation'][number] | undefined;
  for (const r of d.ablation) if (r.setting === setting && Number.isFinite(r.psnr) && (!best || r.psnr > best.psnr)) best = r;
  return best;
}

function ablation(d: ReportData): string {
  if (!d.ablation.length) return empty('No ablation rows.');
  const best = new Set([...new Set(d.ablation.map((r) => r.setting))].map((s) => bestRow(d, s)));
  const rows = d.ablation.map((r) => [
    cell(r.setting), `<td>${esc(r.method)}${best.has(r) ? ' <span class="badge" title="highest PSNR of this setting">★ best</span>' : ''}</td>`,
    num(fmt(r.psnr, 4)), num(fmt(r.ssim, 4)), num(fmt(r.mse, 3)), cell(r.note ?? ''),
  ]);
  return `<p class="caption">Latent PSNR, SSIM and MSE of whole videos against the FP32 model's videos. The best row of each setting (highest PSNR) is marked.</p>` +
    table('ablation', ['setting', 'method', 'PSNR (dB)', 'SSIM', 'MSE', 'note'], rows, (i) => (best.has(d.ablation[i]) ? ' class="best" data-best' : ''));
}

function outlierThreshold(o: ReportOutlierLayer): number {
  if (o.threshold !== undefined) return o.threshold;
  if ((o.detector !== 'mad' && o.detector !== 'iqr') || o.norms.length === 0) return NaN;
  try {
    return detectOutliersFromNorms(o.norms, { method: o.detector }).stats.threshold;
  } catch {
    // Non-finite norms: the plot still shows the columns, without a threshold line.
    return NaN;
  }
}

function outlierPlot(o: ReportOutlierLayer, i: number): string {
  const threshold = outlierThreshold(o);
  const plot = barChart({
    id: `outliers-${i}`, title: `${o.layer}: column L2 norms`, categories: Array.from({ length: o.norms.length }, (_, j) => String(j)),
    series: [{ name: 'column norm', values: o.norms }], xLabel: 'input column', yLabel: '||W[:, j]||', height: 240,
    highlight: { indices: o.outlierIdx, name: `outlier columns (${o.outlierIdx.length})` },
    lines: Number.isFinite(threshold) ? [{ value: threshold, label: 'threshold' }] : [],
  });
  const split = o.outlierIdx.length
    ? `${o.outlierIdx.length} of ${o.norms.length} columns go to the outlier segment (the count is rounded up to a multiple of 32 and capped at half the columns, so some may lie under the threshold)`
    : `no outliers among ${o.norms.length} columns: one scale`;
  return figure(plot, `<strong>${esc(o.layer)}</strong>, detector ${esc(o.detector)}, threshold ${esc(fmt(threshold, 4))}: ${esc(split)}.`);
}

function video(v: ReportData['videos'][number]): string {
  const rows = v.rows?.length ? `rows from top to bottom: ${v.rows.join(', ')}` : 'FP32 in the top row, quantized below';
  const strip = `<figure><img data-image="strip" src="${href(v.strip)}" alt="${esc(`Frames for "${v.prompt}": ${rows}`)}"><figcaption>${esc(`Frames left to right; ${rows}.`)}</figcaption></figure>`;
  const anims = v.animations.map((a) => `<figure><img data-image="animation" src="${href(a.file)}" alt="${esc(`${a.label} animation`)}"><figcaption>${esc(a.label)}</figcaption></figure>`).join('');
  return `<h3>${esc(v.prompt)}</h3>${strip}${anims ? `<div class="animations">${anims}</div>` : ''}`;
}

function training(t: ReportTraining): string {
  const plot = lineChart({
    id: 'training', title: 'Flow-matching loss during training', categories: t.curve.map((c) => String(c.step)),
    series: [{ name: 'training loss (smoothed)', values: t.curve.map((c) => c.loss) }, { name: 'held-out loss', values: t.curve.map((c) => c.heldOut ?? NaN) }],
    xLabel: 'step', yLabel: 'MSE of the flow',
  });
  return figure(plot, `${t.steps} steps of ${t.batch} videos in ${seconds(t.seconds)} on ${t.threads} torch thread(s) (training/train.py). ` +
    `Held-out flow-matching loss over ${t.heldOut.videos} videos: ${fmt(t.heldOut.untrained, 4)} untrained, ${fmt(t.heldOut.trained, 4)} trained.`);
}

function tracking(t: ReportTracking): string {
  const pct = (n: number) => `${n}/${t.prompts} (${t.prompts ? Math.round((100 * n) / t.prompts) : 0}%)`;
  const rows = t.rows.map((r) => [cell(r.label), num(pct(r.agree)), num(pct(r.colour)), num(pct(r.motion)), num(pct(r.shape))]);
  return `<p class="caption">Each model generates a video for each of ${t.prompts} held-out captions (scenes from seed ${t.firstSeed} on, which no training video had); the tracker finds the object in the decoded frames (pixels far from the background), reads its colour at the start and the end and its centroid's motion, and checks them against the caption. "Agrees": colour and motion both as captioned. The shape (fill of the bounding box) is shown apart.</p>` +
    table('tracking', ['model', 'agrees', 'colour', 'motion', 'shape'], rows);
}
