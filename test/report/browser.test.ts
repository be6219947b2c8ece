/// <reference lib="dom" />
// (DOM types for the page.evaluate callback, which runs in the browser.)
// Opens a written report in headless Chromium and checks what a reader sees: every image decoded,
// every plot laid out with its marks, the tables filled, and no request leaving the report directory.
// Without a browser the test is skipped, or fails when QARVD_REQUIRE_BROWSER=1 (as in .ci/run).
import t from 'tap';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer, { type Browser } from 'puppeteer-core';
import { Tensor, channelRanges, frameStrip, latentsToFrames, writeGif, writePng, writeReport } from '../../lib/index.js';
import { INSTALL_HINT, findBrowser } from '../helpers/browser.js';
import { CHUNKS, METHODS, NORM_COLUMNS, fixture } from './fixture.js';

t.setTimeout(60_000);

// A small video [frames, channels, h, w] of smooth waves, and a perturbed copy standing in for the quantized one.
function latents(frames: number, noise: number): Tensor<'float32'> {
  const [c, h, w] = [4, 6, 10];
  const data = new Float32Array(frames * c * h * w);
  for (let i = 0; i < data.length; i++) {
    const f = Math.floor(i / (c * h * w)), ch = Math.floor(i / (h * w)) % c, y = Math.floor(i / w) % h, x = i % w;
    data[i] = Math.sin(0.7 * x + 0.5 * f + ch) * Math.cos(0.9 * y - 0.3 * f) + noise * Math.sin(37.1 * i);
  }
  return new Tensor('float32', [frames, c, h, w], data);
}

interface Seen {
  title: string;
  images: { src: string; kind: string; complete: boolean; width: number; height: number }[];
  plots: { id: string; width: number; height: number; bars: number; points: number }[];
  tables: Record<string, number>;
  best: number;
}

const found = findBrowser();
if (found.path === undefined) {
  if (process.env.QARVD_REQUIRE_BROWSER === '1') t.fail(`No browser for the report test (${found.why}); QARVD_REQUIRE_BROWSER=1 requires one: ${INSTALL_HINT}`);
  else t.test('the report in headless Chromium', { skip: `no browser (${found.why}): ${INSTALL_HINT}` }, () => {});
} else {
  const executablePath = found.path;
  t.test('the report in headless Chromium: images load, plots and tables are there', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'qarvd-report-browser-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const data = fixture();
    await Promise.all(['strips', 'gifs'].map((d) => mkdir(path.join(dir, d))));
    // Write the fixture's image files (names with a space and a '#') from real latents.
    const fp = latents(CHUNKS, 0), q = latents(CHUNKS, 0.2);
    const ranges = channelRanges(fp);
    const fpFrames = latentsToFrames(fp, { ranges, scale: 4 }), qFrames = latentsToFrames(q, { ranges, scale: 4 });
    const strip = frameStrip([fpFrames, qFrames]);
    const sizes = new Map<string, [number, number]>();
    for (const v of data.videos) {
      await writePng(path.join(dir, v.strip), strip.frames[0], strip.width, strip.height);
      sizes.set(v.strip, [strip.width, strip.height]);
      for (const a of v.animations) {
        await writeGif(path.join(dir, a.file), a.label === 'FP32' ? fpFrames : qFrames, 120);
        sizes.set(a.file, [fpFrames.width, fpFrames.height]);
      }
    }
    const file = await writeReport(dir, data);

    let browser: Browser | undefined;
    const requests: string[] = [], failures: string[] = [];
    let seen: Seen;
    try {
      // headless: true runs Chromium with --headless=new; no sandbox, since CI runs as root.
      browser = await puppeteer.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'], timeout: 30_000 });
      t.ok(browser.process()?.spawnargs.includes('--headless=new'), 'the new headless mode');
      const page = await browser.newPage();
      page.on('request', (r) => requests.push(r.url()));
      page.on('requestfailed', (r) => failures.push(`${r.url()}: ${r.failure()?.errorText}`));
      page.on('pageerror', (e) => failures.push(`page error: ${e}`));
      await page.setViewport({ width: 1100, height: 900 });
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 20_000 });
      seen = await page.evaluate(() => {
        const tables: Record<string, number> = {};
        document.querySelectorAll('table[data-table]').forEach((tb) => (tables[tb.getAttribute('data-table')!] = tb.querySelectorAll('tbody tr').length));
        return {
          title: document.title,
          images: [...document.images].map((i) => ({ src: i.getAttribute('src')!, kind: i.dataset.image!, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight })),
          plots: [...document.querySelectorAll('svg[data-plot]')].map((s) => {
            const r = s.getBoundingClientRect();
            return { id: s.getAttribute('data-plot')!, width: r.width, height: r.height, bars: s.querySelectorAll('rect.bar').length, points: s.querySelectorAll('circle.point').length };
          }),
          tables,
          best: document.querySelectorAll('table[data-table="ablation"] tr.best').length,
        };
      });
    } finally {
      await browser?.close();
    }

    t.equal(seen.title, data.title, 'the escaped title reads back as written');
    t.equal(seen.images.length, 5, 'two strips and three animations');
    for (const img of seen.images) {
      const expected = sizes.get(decodeURIComponent(img.src));
      t.ok(img.complete && img.width > 0, `${img.kind} ${img.src} loaded`);
      t.same([img.width, img.height], expected, `${img.src} has the size written`);
    }
    const want = ['timeline', 'sensitivity', 'psnr-W8A8', 'ssim-W8A8', 'psnr-W4A8', 'ssim-W4A8', 'speed', 'memory', 'outliers-0', 'outliers-1'];
    t.same(seen.plots.map((p) => p.id).sort(), [...want].sort(), 'every plot is on the page');
    for (const p of seen.plots) t.ok(p.width > 100 && p.height > 100, `${p.id} is laid out (${p.width} x ${p.height})`);
    const byId = Object.fromEntries(seen.plots.map((p) => [p.id, p]));
    t.equal(byId.sensitivity.bars, 2 * CHUNKS);
    t.equal(byId['psnr-W4A8'].points, METHODS.length * CHUNKS);
    t.equal(byId['outliers-0'].bars, NORM_COLUMNS);
    t.equal(seen.tables.ablation, data.ablation.length, 'every ablation row');
    t.equal(seen.best, 2, 'one best row per setting');
    t.equal(seen.tables['speed-memory'], data.settings.length);
    t.equal(seen.tables.steps, data.steps.length + 1, 'steps and the total');
    t.same(failures, [], 'no failed request, no page error');
    t.same(requests.filter((u) => !u.startsWith(pathToFileURL(dir).href + '/')), [], 'nothing loaded from outside the report directory');
    t.equal(requests.length, 1 + 5, 'the page and its five images');
  });
}
