import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { run } from '../helpers/cli.js';
import { EMBEDDED_DEFAULT } from '../../lib/model/config.js';
import { SHAPES_BACKGROUND } from '../../lib/data/shapes.js';

t.test('demo on the trained embedded default: decoded RGB frames, the tracker\'s verdicts, the training record', async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'qarvd-demo-'));
  const r = await run(['demo', '--out', out, '--sensitivity-prompts', '1', '--calibration-prompts', '1', '--eval-prompts', '1', '--track-prompts', '2', '--repeats', '1', '--bins', '512', '--quiet']);
  t.equal(r.code, 0, r.err);
  const data = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8'));
  t.equal(data.model.name, EMBEDDED_DEFAULT.name);
  t.equal(data.sensitivity.values.length, EMBEDDED_DEFAULT.chunks);
  t.match(data.videos[0].prompt, /^a (red|green|blue|yellow|cyan|magenta) (disc|square) /, 'a held-out caption of the moving-shapes data');
  t.same(data.tracking.rows.map((x: { label: string }) => x.label), ['FP32', 'W8A8', 'W4A8']);
  t.equal(data.tracking.prompts, 2);
  t.ok(data.training.heldOut.trained < data.training.heldOut.untrained);
  // The strip: 3 rows (FP32, W8A8, W4A8) of 21 frames of 32 x 32 pixels shown 4x, 2-pixel gaps.
  const png = PNG.sync.read(readFileSync(path.join(out, data.videos[0].strip)));
  t.equal(png.width, 21 * 128 + 20 * 2);
  t.equal(png.height, 3 * 128 + 2 * 2);
  // The first frame shows decoded RGB: its median pixel is the plain background (within the model's error).
  const median = [0, 1, 2].map((c) => {
    const v: number[] = [];
    for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) v.push(png.data[(y * png.width + x) * 4 + c] / 255);
    return v.sort((p, q) => p - q)[v.length >> 1];
  });
  t.ok(median.every((v, c) => Math.abs(v - SHAPES_BACKGROUND[c]) < 0.1), `median pixel ${median.map((v) => v.toFixed(3))}`);
  const html = readFileSync(path.join(out, 'index.html'), 'utf8');
  t.match(html, /data-table="tracking"/);
  t.match(html, /data-plot="training"/);
});
