import t from 'tap';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkReportData, renderReport, writeReport, type ReportData } from '../../lib/index.js';
import { HIGHLIGHT, barChart, formatNumber, lineChart, niceTicks } from '../../lib/report/svg.js';
import { CHUNKS, METHODS, NORM_COLUMNS, OUTLIER_COLUMNS, fixture } from './fixture.js';

/** The markup of the SVG whose data-plot is `id`. */
function plot(html: string, id: string): string {
  const start = html.indexOf(`<svg xmlns="http://www.w3.org/2000/svg" data-plot="${id}"`);
  if (start < 0) throw new Error(`no plot ${id}`);
  return html.slice(start, html.indexOf('</svg>', start) + 6);
}

function count(text: string, re: RegExp): number {
  return (text.match(new RegExp(re.source, 'g')) ?? []).length;
}

function attrs(element: string): Record<string, number> {
  return Object.fromEntries([...element.matchAll(/ (x|y|width|height|cx|cy)="([-\d.]+)"/g)].map((m) => [m[1], Number(m[2])]));
}

const MARGIN = { top: 10, right: 10, bottom: 20, left: 30 };

t.test('nice ticks and number formatting', (t) => {
  t.same(niceTicks(0, 4), [0, 1, 2, 3, 4]);
  t.same(niceTicks(31.2, 38.9), [30, 32, 34, 36, 38, 40]);
  t.same(niceTicks(0, 0.3), [0, 0.1, 0.2, 0.3], 'no 0.30000000000000004');
  t.same(niceTicks(-1, 2), [-1, 0, 1, 2]);
  t.same(niceTicks(5, 5), [4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6], 'a single value is padded by 10% (4.5..5.5), step 0.2');
  t.same(niceTicks(NaN, 1), [0, 1]);
  t.equal(formatNumber(NaN), 'n/a');
  t.equal(formatNumber(Infinity), 'n/a');
  t.equal(formatNumber(0.54613), '0.546');
  t.equal(formatNumber(1234.5, 4), '1235');
  t.equal(formatNumber(2.5e-5), '2.50e-5');
  t.end();
});

t.test('bar geometry: heights proportional to values, standing on zero', (t) => {
  // Plot area: x 30..190, y 10..130 (height 120); values 1, 2, 4 -> ticks 0..4.
  const svg = barChart({ id: 'g', title: 'g', categories: ['a', 'b', 'c'], series: [{ name: 's', values: [1, 2, 4] }], width: 200, height: 150, margin: MARGIN });
  const bars = svg.match(/<rect class="bar"[^>]*>/g)!.map(attrs);
  t.equal(bars.length, 3);
  t.same(bars.map((b) => b.height), [30, 60, 120]);
  t.same(bars.map((b) => b.y), [100, 70, 10]);
  // Band 160 / 3 per category, the bar 80% of it, centred.
  const band = 160 / 3;
  bars.forEach((b, i) => {
    t.ok(Math.abs(b.x - (30 + i * band + 0.1 * band)) < 0.01, `bar ${i} x`);
    t.ok(Math.abs(b.width - 0.8 * band) < 0.01, `bar ${i} width`);
  });
  t.equal(count(svg, /class="tick"/), 5, 'ticks 0, 1, 2, 3, 4');

  // Negative values hang below the zero line: ticks -1..2, zero at y = 130 - 120 / 3 = 90.
  const neg = barChart({ id: 'n', title: 'n', categories: ['a', 'b'], series: [{ name: 's', values: [-1, 2] }], width: 200, height: 150, margin: MARGIN })
    .match(/<rect class="bar"[^>]*>/g)!.map(attrs);
  t.same(neg.map((b) => [b.y, b.height]), [[90, 40], [10, 80]]);

  // Two series share a band; a NaN value is an n/a mark instead of a bar.
  const two = barChart({ id: 't', title: 't', categories: ['a', 'b'], series: [{ name: 'p', values: [1, NaN] }, { name: 'q', values: [2, 2] }], width: 200, height: 150, margin: MARGIN });
  t.equal(count(two, /<rect class="bar"/), 3);
  t.equal(count(two, /<text class="na"[^>]*>n\/a<\/text>/), 1);
  const q = two.match(/<rect class="bar" data-series="1"[^>]*>/g)!.map(attrs);
  t.ok(Math.abs(q[0].x - (30 + 0.1 * 80 + 0.4 * 80)) < 0.01, 'the second series sits beside the first');

  // A reference line at its value, bars of highlighted categories in the highlight colour.
  const hl = barChart({ id: 'h', title: 'h', categories: ['a', 'b', 'c'], series: [{ name: 's', values: [1, 3, 1] }], highlight: { indices: [1], name: 'outliers' }, lines: [{ value: 2, label: 'threshold' }], width: 200, height: 150, margin: MARGIN });
  t.equal(count(hl, new RegExp(`fill="${HIGHLIGHT}"`)), 2, 'one bar and its legend swatch');
  t.match(hl, /<line class="ref-line" x1="30" x2="190" y1="50" y2="50"/, 'ticks 0..3, y(2) = 130 - 80');
  t.end();
});

t.test('stacked bars: one bar per category, segments stacked in series order', (t) => {
  // Plot area: x 30..190, y 10..130; totals 3 and 4 -> ticks 0..4, 30 px per second.
  const svg = barChart({
    id: 'p', title: 'p', categories: ['FP32', 'W8A8'], stacked: true, width: 200, height: 150, margin: MARGIN,
    series: [{ name: 'linears', values: [2, 1] }, { name: 'attention', values: [1, 3] }, { name: 'rest', values: [0, NaN] }],
    barLabels: [['3 s', '4 s']],
  });
  const bars = svg.match(/<rect class="bar"[^>]*>/g)!.map(attrs);
  t.equal(bars.length, 4, 'zero and non-finite segments draw nothing');
  t.same(bars.map((b) => [b.y, b.height]), [[70, 60], [40, 30], [100, 30], [10, 90]], 'linears at the bottom, attention on top');
  const band = 80;
  t.same(bars.map((b) => b.x), [30 + 0.2 * band, 30 + 0.2 * band, 110 + 0.2 * band, 110 + 0.2 * band], 'one bar per category, centred');
  t.match(svg, /<text class="bar-label" x="70" y="36"[^>]*>3 s<\/text>/, 'the label above the stack');
  t.match(svg, /<text class="bar-label" x="150" y="6"[^>]*>4 s<\/text>/);
  t.end();
});

t.test('line geometry: points at band centres, broken by NaN', (t) => {
  const svg = lineChart({ id: 'l', title: 'l', categories: ['0', '1', '2', '3'], series: [{ name: 's', values: [0, 5, NaN, 10] }], width: 200, height: 150, margin: MARGIN });
  const pts = svg.match(/<circle class="point"[^>]*>/g)!.map(attrs);
  // Ticks 0..10: y = 130 - 12 v; band 40: x = 50, 90, 170.
  t.same(pts.map((p) => [p.cx, p.cy]), [[50, 130], [90, 70], [170, 10]]);
  t.match(svg, /d="M50 130L90 70M170 10"/, 'the line restarts after the gap');
  const none = lineChart({ id: 'e', title: 'e', categories: ['0'], series: [{ name: 's', values: [NaN] }] });
  t.equal(count(none, /<circle/), 0);
  t.match(none, /<text class="na"[^>]*>n\/a<\/text>/);
  t.end();
});

t.test('the page: every plot with its bars and points', (t) => {
  const data = fixture();
  const html = renderReport(data);
  t.match(html, /^<!doctype html>/);
  t.equal(count(html, /<svg /), 4 + 2 * 2 + 2, 'timeline, sensitivity, speed, memory; psnr and ssim per setting; two outlier layers');
  t.equal(count(plot(html, 'timeline'), /<rect class="bar"/), 3);
  t.equal(count(plot(html, 'sensitivity'), /<rect class="bar"/), 2 * CHUNKS, 'measured and reference');
  t.equal(count(plot(html, 'sensitivity'), /<rect class="bar" data-series="1"/), CHUNKS);
  // One NaN PSNR in W8A8's first method: one point fewer and a broken line.
  t.equal(count(plot(html, 'psnr-W8A8'), /<circle class="point"/), METHODS.length * CHUNKS - 1);
  t.equal(count(plot(html, 'psnr-W4A8'), /<circle class="point"/), METHODS.length * CHUNKS);
  t.equal(count(plot(html, 'ssim-W8A8'), /<circle class="point"/), METHODS.length * CHUNKS);
  t.equal(count(plot(html, 'psnr-W8A8'), /<path class="line"/), METHODS.length);
  t.equal(count(plot(html, 'psnr-W8A8').match(/<path class="line" data-series="0" d="([^"]*)"/)![1], /M/), 2);
  // Speed: FP32 and quantized per setting, W4A8's quantized time is NaN.
  const speed = plot(html, 'speed');
  t.equal(count(speed, /<rect class="bar"/), 3);
  t.equal(count(speed, /<text class="na"/), 1);
  t.match(speed, />2\.18x</, 'speed-up 2.4 / 1.1 written on the bar');
  const memory = plot(html, 'memory');
  t.equal(count(memory, /<rect class="bar"/), 8, 'model and blocks, FP32 and quantized, per setting');
  t.match(memory, />0\.26x</, '1.04 MB / 4 MB');
  t.match(memory, />0\.125x</, '450 kB / 3.6 MB');
  const outliers = plot(html, 'outliers-0');
  t.equal(count(outliers, /<rect class="bar"/), NORM_COLUMNS);
  t.equal(count(outliers, new RegExp(`<rect class="bar"[^>]*fill="${HIGHLIGHT}"`)), OUTLIER_COLUMNS);
  t.equal(count(outliers, /class="ref-line"/), 1, 'the MAD threshold recomputed from the norms');
  t.match(plot(html, 'outliers-1'), /threshold 1\.2</, 'a given threshold is drawn as given');
  t.equal(count(plot(html, 'outliers-1'), /fill="#D55E00"/), 0, 'no outliers, no highlight');
  t.end();
});

t.test('the page: tables, ratios, images, escaping and n/a', (t) => {
  const html = renderReport(fixture());
  const ablation = html.slice(html.indexOf('<table data-table="ablation"'), html.indexOf('</table>', html.indexOf('<table data-table="ablation"')));
  t.equal(count(ablation, /<tr/), 1 + 5, 'header and five rows');
  t.equal(count(ablation, /<tr class="best" data-best>/), 2, 'one best row per setting');
  t.match(ablation, /<tr class="best" data-best><td>W8A8<\/td><td>full method/, 'highest PSNR of W8A8');
  t.match(ablation, /<tr class="best" data-best><td>W4A8<\/td><td>full method/, 'NaN PSNR never wins');
  t.match(ablation, /did not help &lt;here&gt;/);
  t.match(html, /<td class="num">n\/a<\/td>/, 'NaN SSIM in the table');
  t.match(html, /<td class="num">2\.18x<\/td>/);
  t.equal(count(html, /<img data-image="strip"/), 2);
  t.equal(count(html, /<img data-image="animation"/), 3);
  t.match(html, /src="strips\/fox%200\.png"/, 'paths are URL-encoded per segment');
  t.match(html, /src="gifs\/waves%23fp32\.gif"/);
  t.match(html, /<a data-checkpoint href="w8a8\.safetensors">/);
  t.match(html, /<figcaption>Frames left to right; rows from top to bottom: FP32, W8A8 &lt;q&gt;\.<\/figcaption>/);
  t.match(html, /<figcaption>Frames left to right; FP32 in the top row, quantized below\.<\/figcaption>/, 'the default when rows are not given');
  t.match(html, /<title>Q-ARVD &lt;demo&gt; &amp; &quot;report&quot;<\/title>/);
  t.match(html, /a red fox &lt;runs&gt; in &quot;snow&quot;/);
  t.notMatch(html, /<script/i, 'no script at all, and the note is escaped');
  t.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  t.notMatch(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no link outside the report');
  t.match(html, /decreases over chunks, as in the reference/);
  const flipped = fixture();
  flipped.sensitivity.decreasing = false;
  delete flipped.sensitivity.reference;
  const h2 = renderReport(flipped);
  t.match(h2, /does <strong>not<\/strong> decrease/);
  t.equal(count(plot(h2, 'sensitivity'), /<rect class="bar"/), CHUNKS, 'no reference series');
  t.end();
});

t.test('the page: where the time goes, a stacked bar per variant', (t) => {
  t.equal(count(renderReport(fixture()), /data-plot="profile"/), 0, 'no profiles, no plot');
  const data: ReportData = {
    ...fixture(),
    profiles: [
      { variant: 'FP32', linears: 0.24, attention: 0.12, norms: 0.02, activations: 0, copies: 0.01, rest: 0.01 },
      { variant: 'W8A8 + int8 attention', linears: 0.1, attention: 0.08, norms: 0.02, activations: 0, copies: 0.02, rest: 0 },
    ],
  };
  const html = renderReport(data);
  const profile = plot(html, 'profile');
  t.equal(count(profile, /<rect class="bar"/), 5 + 4, 'a segment per non-zero category');
  t.equal(count(profile, /<rect class="bar" data-series="1"/), 2, 'attention in both bars');
  t.match(profile, />0\.4 s</, 'the FP32 total above its bar');
  t.match(profile, />0\.22 s</);
  const table = html.slice(html.indexOf('<table data-table="profile"'), html.indexOf('</table>', html.indexOf('<table data-table="profile"')));
  t.equal(count(table, /<tr/), 1 + 2);
  t.match(table, /0\.24 s \(60%\)/, 'FP32 linears: 0.24 of 0.4 s');
  t.throws(() => checkReportData({ ...data, profiles: [{ ...data.profiles![0], rest: -1 }] }), /data\.profiles\[0\]\.rest/);
  t.throws(() => checkReportData({ ...data, profiles: [{ variant: 'x' }] }), /Expected a number for data\.profiles\[0\]\.linears/);
  t.end();
});

t.test('empty lists still make a page', (t) => {
  const data: ReportData = { ...fixture(), steps: [], settings: [], ablation: [], outliers: [], videos: [], notes: [] };
  data.sensitivity = { values: [], chunkWeights: [], prompts: 0, decreasing: false };
  const html = renderReport(data);
  t.equal(count(html, /<svg /), 2, 'timeline and sensitivity, both empty');
  t.match(html, /No quantized settings\./);
  t.match(html, /No ablation rows\./);
  t.end();
});

t.test('malformed data: TypeError or RangeError naming the field', (t) => {
  const bad = (mutate: (d: Record<string, any>) => void, cls: ErrorConstructor, field: string) => {
    const d = fixture() as unknown as Record<string, any>;
    mutate(d);
    t.throws(() => renderReport(d as unknown as ReportData), { constructor: cls, message: new RegExp(field.replace(/[.[\]]/g, '\\$&')) }, field);
  };
  t.throws(() => checkReportData(null), { constructor: TypeError, message: /data but received null/ });
  bad((d) => delete d.title, TypeError, 'data.title');
  bad((d) => (d.createdAt = 'yesterday'), RangeError, 'data.createdAt');
  bad((d) => (d.model.config.dim = [64]), TypeError, 'data.model.config.dim');
  bad((d) => (d.machine.threads = 1.5), TypeError, 'data.machine.threads');
  bad((d) => (d.steps[1].seconds = '3'), TypeError, 'data.steps[1].seconds');
  bad((d) => (d.sensitivity.values = 'high'), TypeError, 'data.sensitivity.values');
  bad((d) => d.sensitivity.chunkWeights.pop(), RangeError, 'data.sensitivity.chunkWeights');
  bad((d) => (d.sensitivity.decreasing = 'yes'), TypeError, 'data.sensitivity.decreasing');
  bad((d) => (d.settings[1].perChunk[0].psnr[2] = null), TypeError, 'data.settings[1].perChunk[0].psnr[2]');
  bad((d) => d.settings[0].perChunk[2].mse.pop(), RangeError, 'data.settings[0].perChunk[2].mse');
  bad((d) => delete d.settings[0].speed, TypeError, 'data.settings[0].speed');
  bad((d) => (d.settings[1].bytes.blockQuantized = undefined), TypeError, 'data.settings[1].bytes.blockQuantized');
  bad((d) => (d.settings[1].name = 'W8A8'), RangeError, 'data.settings[1].name');
  bad((d) => (d.settings[0].checkpoint = '/etc/passwd'), RangeError, 'data.settings[0].checkpoint');
  bad((d) => (d.ablation[2].note = 7), TypeError, 'data.ablation[2].note');
  bad((d) => (d.outliers[0].outlierIdx = [0, 64]), RangeError, 'data.outliers[0].outlierIdx[1]');
  bad((d) => (d.outliers[0].outlierIdx = [0.5]), TypeError, 'data.outliers[0].outlierIdx[0]');
  bad((d) => (d.videos[0].strip = 'https://example.com/x.png'), RangeError, 'data.videos[0].strip');
  bad((d) => (d.videos[1].animations[0] = 'fp.gif'), TypeError, 'data.videos[1].animations[0]');
  bad((d) => (d.videos[0].rows = ['FP32', 8]), TypeError, 'data.videos[0].rows[1]');
  bad((d) => (d.notes = 'none'), TypeError, 'data.notes');
  t.end();
});

t.test('the training and object-tracking sections, when the data has them', (t) => {
  const without = renderReport(fixture());
  t.notMatch(without, /id="tracking"|id="training"/, 'absent unless given');
  const data: ReportData = {
    ...fixture(),
    tracking: { prompts: 24, firstSeed: 2 ** 31, rows: [{ label: 'FP32', agree: 20, colour: 23, motion: 21, shape: 18 }, { label: 'W4A8', agree: 12, colour: 15, motion: 16, shape: 10 }] },
    training: { steps: 2400, batch: 4, seconds: 3000, threads: 1, heldOut: { videos: 32, untrained: 1.61, trained: 0.21 }, curve: [{ step: 100, loss: 1.1 }, { step: 200, loss: 0.6, heldOut: 0.55 }, { step: 300, loss: 0.4 }] },
  };
  const html = renderReport(data);
  const table = html.slice(html.indexOf('data-table="tracking"'), html.indexOf('</table>', html.indexOf('data-table="tracking"')));
  t.match(table, /20\/24 \(83%\)/, 'FP32 agrees on 20 of 24');
  t.match(table, /12\/24 \(50%\)/);
  const curve = plot(html, 'training');
  t.equal(count(curve, /<circle class="point" data-series="0"/), 3, 'a point per recorded step');
  t.equal(count(curve, /<circle class="point" data-series="1"/), 1, 'held-out loss where it was measured');
  t.match(html, /1\.61 untrained, 0\.21 trained/);
  const bad = { ...data, tracking: { ...data.tracking!, rows: [{ label: 'FP32', agree: 25, colour: 0, motion: 0, shape: 0 }] } };
  t.throws(() => renderReport(bad), { constructor: RangeError, message: /data\.tracking\.rows\[0\]\.agree/ });
  t.end();
});

t.test('writeReport writes index.html atomically and returns its path', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qarvd-report-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'nested', 'report');
  const file = await writeReport(out, fixture());
  t.equal(file, path.join(out, 'index.html'));
  t.equal(await readFile(file, 'utf8'), renderReport(fixture()));
  t.same(await readdir(out), ['index.html'], 'no temporary file left');
  const d = fixture() as unknown as Record<string, unknown>;
  delete d.notes;
  await t.rejects(writeReport(path.join(dir, 'never'), d as unknown as ReportData), { constructor: TypeError, message: /data\.notes/ });
  t.same(await readdir(dir), ['nested'], 'invalid data writes nothing');
  await t.rejects(writeReport('', fixture()), { constructor: TypeError, message: /dir/ });
});
