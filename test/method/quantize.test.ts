import t from 'tap';
import { CausalDit } from '../../lib/model/dit.js';
import { calibrate } from '../../lib/method/calibrate.js';
import { detectModelOutliers, quantizeModel, roundToNearest, type QuantRecipe } from '../../lib/method/quantize.js';
import { QuantizedLinear, unpackQuantized } from '../../lib/gemm/quantized.js';
import { ablationRows, evaluateLayerSets } from '../../lib/method/ablation.js';
import { buildLayerSets, type LayerSpec } from '../../lib/method/spec.js';
import { detectOutliersSync } from '../../lib/calibration/outliers.js';
import { qparamsFromRange, quantizeValue } from '../../lib/primitives/qparams.js';
import { generate } from '../../lib/model/sampling.js';
import { small } from './fixtures.js';

const model = CausalDit.synthetic(small, { seed: 3 });
const outliers = detectModelOutliers(model);
const chunkWeights = [2.2, 0.6, 0.2];
const stats = await calibrate(model, { prompts: ['a red fox', 'ocean waves'], seed: 1, chunkWeights, outliers, bins: 2048 });

const act = (spec: LayerSpec) => (spec.type === 'quantized' ? spec.segment.activation : spec.normal!.activation);

t.test('outliers of every layer come from its weight column norms', async (t) => {
  t.ok(Object.keys(outliers).length > 0);
  for (const name of model.blockLinearNames) {
    const r = detectOutliersSync(model.floatWeights(name).weight, { method: 'mad' });
    t.same(outliers[name] ? [...outliers[name]] : [], [...r.outlierIdx], name);
  }
});

t.test('naive per-tensor min-max: one weight scale per layer, activation range = observed min/max', async (t) => {
  const q = await quantizeModel(model, stats, ablationRows('int8')[0].recipe);
  for (const spec of q.layers) {
    t.equal(spec.type, 'quantized');
    if (spec.type !== 'quantized') continue;
    const w = model.floatWeights(spec.name).weight.data;
    let lo = Infinity, hi = -Infinity;
    for (const v of w) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const expected = qparamsFromRange(lo, hi, 'int8', 'asymmetric');
    t.ok(spec.segment.weight.scale.data.every((s) => s === Math.fround(expected.scale)), `${spec.name}: weight scale of the whole tensor`);
    t.ok(spec.segment.weight.zeroPoint.data.every((z) => z === expected.zeroPoint));
    const st = stats.layer(spec.name).input.stats();
    const a = qparamsFromRange(st.min, st.max, 'int8', 'asymmetric');
    t.same(spec.segment.activation, [{ type: 'static', scale: a.scale, zeroPoint: a.zeroPoint, dtype: 'int8' }]);
  }
});

t.test('chunk weighting chooses the activation range by the chunk-weighted MSE', async (t) => {
  const plain = await quantizeModel(model, stats, { weightDtype: 'int8' });
  const weighted = await quantizeModel(model, stats, { weightDtype: 'int8', chunkWeighting: true });
  for (let i = 0; i < plain.layers.length; i++) {
    const obs = stats.layer(plain.layers[i].name).input;
    const u = obs.calculate({ chunkWeights: 'uniform', dtype: 'int8', scheme: 'asymmetric' });
    const w = obs.calculate({ chunkWeights, dtype: 'int8', scheme: 'asymmetric' });
    t.match(act(plain.layers[i])[0], { scale: u.scale, zeroPoint: u.zeroPoint });
    t.match(act(weighted.layers[i])[0], { scale: w.scale, zeroPoint: w.zeroPoint });
  }
});

t.test('two-scale layers, GPTQ and the reference variant', async (t) => {
  const rtn = await quantizeModel(model, stats, { weightDtype: 'int4', chunkWeighting: true, dualScale: true });
  const rec = await quantizeModel(model, stats, { weightDtype: 'int4', chunkWeighting: true, dualScale: true, reconstruction: 'gptq' });
  for (const spec of rec.layers) {
    if (outliers[spec.name]) {
      t.equal(spec.type, 'dual', `${spec.name} is split`);
      if (spec.type === 'dual') t.same([...spec.outlierIdx], [...outliers[spec.name]]);
    } else t.equal(spec.type, 'quantized');
  }
  for (let i = 0; i < rec.report.length; i++) {
    t.ok(rec.report[i].loss <= rtn.report[i].loss * (1 + 1e-9), `${rec.report[i].name}: GPTQ loss ${rec.report[i].loss} <= RTN ${rtn.report[i].loss}`);
  }
  t.ok(rec.report.reduce((s, l) => s + l.loss, 0) < rtn.report.reduce((s, l) => s + l.loss, 0), 'GPTQ lowers the total loss');
  // The reference calibrates two-scale layers with uniform weights: their activation ranges ignore the chunk weights.
  const ref = await quantizeModel(model, stats, { weightDtype: 'int4', chunkWeighting: true, dualScale: true, reconstruction: 'gptq', dualUniformWeights: true });
  for (const spec of ref.layers) {
    if (spec.type !== 'dual') continue;
    const u = stats.layer(spec.name).segments!.normal.calculate({ chunkWeights: 'uniform', dtype: 'int8', scheme: 'asymmetric' });
    t.match(spec.normal!.activation[0], { scale: u.scale, zeroPoint: u.zeroPoint });
  }
});

t.test('bit allocation keeps its budgets', async (t) => {
  const recipe: QuantRecipe = { weightDtype: 'int4', chunkWeighting: true, dualScale: true, reconstruction: 'gptq', allocation: { weightBits: 5, dynamicChunks: 1 } };
  const q = await quantizeModel(model, stats, recipe);
  let bits = 0, elements = 0;
  for (const spec of q.layers) {
    const l = model.linear(spec.name);
    const n = l.inFeatures * l.outFeatures;
    const segs = spec.type === 'quantized' ? [spec.segment] : [spec.outlier, spec.normal].filter((s) => s !== null);
    for (const s of segs) bits += (s!.weight.dtype === 'int8' ? 8 : 4) * s!.weight.q.shape[0] * s!.weight.q.shape[1];
    elements += n;
  }
  t.ok(bits / elements <= 5, `average weight bits ${bits / elements} <= 5`);
  t.ok(bits / elements > 4, 'the budget above 4 bits is spent');
  t.equal(q.plans.weights!.method, 'exact');
  const chosen = Object.values(q.plans.chunks!.choices).map((c) => c.label);
  t.equal(chosen.filter((c) => c === 'dynamic').length, 1, 'one chunk may go dynamic');
  for (const spec of q.layers) {
    const a = act(spec);
    t.equal(a.length, 3);
    a.forEach((x, k) => t.equal(x.type, chosen[k], `${spec.name} chunk ${k}`));
  }
  const sets = buildLayerSets(q.layers);
  t.equal(sets.length, 3);
  const dynamicChunk = chosen.indexOf('dynamic');
  const staticChunk = chosen.indexOf('static');
  const name = q.layers[0].name;
  t.not(sets[dynamicChunk][name], sets[staticChunk][name], 'different activation settings are different layers');
  const all = await quantizeModel(model, stats, { ...recipe, allocation: { dynamicChunks: 3 } });
  t.ok(all.layers.every((s) => act(s).every((a) => a.type === 'dynamic')));
  const none = buildLayerSets((await quantizeModel(model, stats, { weightDtype: 'int8' })).layers);
  t.equal(none.length, 1, 'one setting for every chunk: one layer set');
});

t.test('the full method beats naive per-tensor min-max and per-channel MSE PTQ on this model', async (t) => {
  const requests = [{ prompt: 'a lighthouse in a storm', seed: 77 }];
  const references = [await generate(model, requests[0])];
  for (const dtype of ['int8', 'int4'] as const) {
    const rows = ablationRows(dtype);
    const psnr: number[] = [];
    for (const i of [0, 1, 5]) psnr.push((await evaluateLayerSets(model, buildLayerSets((await quantizeModel(model, stats, rows[i].recipe)).layers), requests, references)).psnr);
    t.ok(psnr[2] > psnr[0] && psnr[2] > psnr[1], `${dtype}: full ${psnr[2].toFixed(2)} dB > naive ${psnr[0].toFixed(2)}, MSE ${psnr[1].toFixed(2)}`);
  }
});

t.test('bad recipes', async (t) => {
  await t.rejects(quantizeModel(model, stats, { weightDtype: 'int2' as 'int4' }), { name: 'RangeError', message: /recipe.weightDtype/ });
  await t.rejects(quantizeModel(model, stats, { weightDtype: 'int8', weightRange: 'p99' as 'mse' }), { message: /recipe.weightRange/ });
  await t.rejects(quantizeModel(model, stats, { weightDtype: 'int8', allocation: { weightBits: 9 } }), { name: 'RangeError', message: /weightBits/ });
  await t.rejects(quantizeModel(model, stats, { weightDtype: 'int8', allocation: { dynamicChunks: -1 } }), { name: 'RangeError', message: /dynamicChunks/ });
  // A non-dual layer keeps no uniform Gram once chunk weights are given: reconstruction without them says so.
  await t.rejects(quantizeModel(model, stats, { weightDtype: 'int8', reconstruction: 'gptq' }), { name: 'RangeError', message: /uniform Gram/ });
});

t.test('calibration and quantization leave the event loop free', async (t) => {
  let ticks = 0;
  let longest = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
  }, 5);
  try {
    await calibrate(model, { prompts: ['a storm at sea'], seed: 3, chunkWeights, outliers, bins: 2048 });
    await quantizeModel(model, stats, { weightDtype: 'int4', chunkWeighting: true, dualScale: true, reconstruction: 'gptq', allocation: { weightBits: 5, dynamicChunks: 1 } });
  } finally {
    clearInterval(timer);
  }
  t.ok(ticks >= 10, `timers fired ${ticks} times`);
  t.ok(longest < 250, `the longest gap between timer callbacks was ${longest.toFixed(0)} ms`);
});

t.test('roundToNearest: symmetric per-channel weights from each row\'s largest magnitude', async (t) => {
  for (const dtype of ['int8', 'int4'] as const) {
    const layers = roundToNearest(model, { dtype });
    t.same(Object.keys(layers), model.blockLinearNames);
    const name = model.blockLinearNames[1];
    const w = model.floatWeights(name).weight;
    const [n, k] = w.shape;
    const qw = (layers[name] as QuantizedLinear).quantizedWeight();
    const q = unpackQuantized(qw.q, 'q', n, k);
    const qmax = dtype === 'int8' ? 127 : 7;
    for (let i = 0; i < n; i++) {
      let amax = 0;
      for (let j = 0; j < k; j++) amax = Math.max(amax, Math.abs(w.data[i * k + j]));
      const scale = Math.fround(Math.fround(amax) / qmax);
      t.equal(qw.scale.data[i], scale, `${dtype} row ${i} scale`);
      for (let j = 0; j < k; j++) {
        if (q[i * k + j] !== quantizeValue(w.data[i * k + j], scale, 0, dtype)) t.fail(`${dtype} ${name}[${i}, ${j}]`);
      }
    }
  }
  t.throws(() => roundToNearest(model, { dtype: 'int2' as 'int4' }), { name: 'RangeError', message: /options.dtype/ });
});
