// Child of test/reliability/bad-input.test.ts: calls every function, constructor, static and instance
// method that lib/index.ts exports with generated bad arguments, one argument position at a time,
// and prints {calls, clean, accepted, unclean, named, samples} as JSON. A crash kills this process,
// which the parent reports with the label of the call in flight, written before each call to the
// file named by BAD_INPUT_LOG (a regular file: writes to a pipe could fail with EAGAIN under load).
//   BAD_INPUT_LOG=<file> node bad-input.mjs <index.js> <shard> <shards>
import { openSync, writeSync } from 'node:fs';
import { loadChildLibrary } from './library.mjs';

const { lib, args: [shardArg = '0', shardsArg = '1'] } = await loadChildLibrary();
const shard = Number(shardArg);
const shards = Number(shardsArg);
const { Tensor } = lib;
const log = process.env.BAD_INPUT_LOG ? openSync(process.env.BAD_INPUT_LOG, 'w') : null;

let unhandled = 0;
process.on('unhandledRejection', () => void unhandled++);
// An exception thrown later from inside the library (a stream's 'error' with no listener, a timer)
// would end a user's process: counted and reported, with the call that was last started.
const uncaught = [];
let current = '';
process.on('uncaughtException', (e) => void uncaught.push(`after ${current}: ${e?.stack ?? e}`));

// ---- the bad values ----
const f32 = (shape) => new Tensor('float32', shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + 1)));
const good = f32([4, 8]);
function detached() {
  const t = f32([4, 8]);
  structuredClone(t.data.buffer, { transfer: [t.data.buffer] });
  return t;
}
function fake(dtype, shape, data) {
  const o = Object.create(Tensor.prototype);
  Object.assign(o, { dtype, shape, data, size: shape.reduce((a, b) => a * b, 1) });
  return o;
}
class LongFloat32 extends Float32Array {
  get length() {
    return 1 << 20;
  }
}
class NamedAsFloat32 extends Uint8Array {
  static get name() {
    return 'Float32Array';
  }
}
const detachedArray = () => {
  const a = new Float32Array(32);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
};
const throwing = () => ({
  get dtype() {
    throw new Error('getter dtype');
  },
  get shape() {
    throw new Error('getter shape');
  },
});

const BAD = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['0', () => 0],
  ['-1', () => -1],
  ['1.5', () => 1.5],
  ['16.5', () => 16.5],
  ['NaN', () => NaN],
  ['Infinity', () => Infinity],
  ['2^60', () => 2 ** 60],
  ['-0', () => -0],
  ['empty string', () => ''],
  ['string', () => 'x'],
  ['__proto__ string', () => '__proto__'],
  ['/proc path', () => '/proc/x/y'],
  ['true', () => true],
  ['bigint', () => 1n],
  ['symbol', () => Symbol('s')],
  ['function', () => () => 1],
  ['empty object', () => ({})],
  ['empty array', () => []],
  ['array of numbers', () => [1, 2, 3]],
  ['array of NaN', () => [NaN, 1]],
  ['Float32Array', () => new Float32Array(32)],
  ['Float64Array', () => new Float64Array(32)],
  ['Int8Array', () => new Int8Array(32)],
  ['DataView', () => new DataView(new ArrayBuffer(32))],
  ['detached Float32Array', detachedArray],
  ['tensor with detached data', detached],
  ['prototype-made tensor, fractional shape', () => fake('float32', [2, 16.5], new Float32Array(33))],
  ['prototype-made tensor, wrong length', () => fake('float32', [4, 8], new Float32Array(3))],
  ['prototype-made tensor, Float64Array data', () => fake('float32', [4, 8], new Float64Array(32))],
  ['prototype-made tensor, null data', () => fake('float32', [4, 8], null)],
  ['prototype-made tensor, huge shape', () => fake('float32', [1e9, 1e9], new Float32Array(4))],
  ['proxy of a tensor', () => new Proxy(good, {})],
  ['tensor-like plain object', () => ({ dtype: 'float32', shape: [4, 8], data: new Float32Array(32), size: 32, rank: 2 })],
  ['throwing getters', throwing],
  ['int8 tensor', () => new Tensor('int8', [4, 8], new Int8Array(32))],
  ['int4 tensor', () => new Tensor('int4', [3, 3], new Uint8Array(5))],
  ['scalar tensor', () => new Tensor('float32', [], new Float32Array([NaN]))],
  ['empty tensor', () => new Tensor('float32', [0, 8], new Float32Array(0))],
  ['NaN tensor', () => new Tensor('float32', [4, 8], new Float32Array(32).fill(NaN))],
  ['rank-3 tensor', () => f32([2, 3, 4])],
  ['bogus options', () => ({ mode: 'bogus', dtype: 'int3', granularity: { type: 'perGroup', groupSize: 0 }, eps: -1, bins: 0, weight: null })],
  ['options with NaN', () => ({ eps: NaN, heads: NaN, groupSize: NaN, seed: NaN, timestep: NaN })],
  ['options with prototype-made tensors', () => ({ weight: fake('float32', [8], null), bias: fake('float32', [8], new Float32Array(1)), out: fake('float32', [4, 8], new Float32Array(1)) })],
  ['options with a detached out', () => ({ out: detached() })],
  ['__proto__ object', () => JSON.parse('{"__proto__": {"dtype": "float32"}}')],
  ['subclass with a lying length', () => new LongFloat32(32)],
  ['subclass with a lying name', () => new NamedAsFloat32(128)],
];
const DEFAULTS = [() => f32([4, 8]), () => ({}), () => ({})];

// ---- the targets ----
const isClass = (f) => /^class\b/.test(Function.prototype.toString.call(f));
const targets = [];
for (const [name, value] of Object.entries(lib)) {
  if (typeof value !== 'function') continue;
  if (isClass(value)) {
    targets.push({ label: `new ${name}`, arity: Math.max(value.length, 1), call: (a) => new value(...a) });
    for (const s of Object.getOwnPropertyNames(value)) {
      if (['length', 'name', 'prototype'].includes(s)) continue;
      const d = Object.getOwnPropertyDescriptor(value, s);
      if (typeof d?.value === 'function') targets.push({ label: `${name}.${s}`, arity: Math.max(d.value.length, 1), call: (a) => value[s](...a), params: params(d.value) });
    }
  } else {
    targets.push({ label: name, arity: Math.max(value.length, 1), call: (a) => value(...a), params: params(value) });
  }
}

// Instances to call methods on (cheap ones; a constructor that needs more is skipped).
const tiny = { ...lib.EMBEDDED_DEFAULT, name: 'tiny', inChannels: 4, outChannels: 4, dim: 24, ffnDim: 40, heads: 2, layers: 1, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 4, framesPerChunk: 1, chunks: 2 };
const w = f32([16, 8]);
const makers = {
  LinearF32: () => lib.LinearF32.fromFloat(w),
  QuantizedLinear: () => lib.QuantizedLinear.fromFloat(w, { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } }),
  DualScaleLinear: () => lib.DualScaleLinear.fromFloat(w, { outlierIdx: [1, 3], outlier: { weight: { dtype: 'int8' }, activation: { type: 'dynamic' } }, normal: { weight: { dtype: 'int4' }, activation: { type: 'dynamic' } } }),
  PackedWeights: () => lib.packWeights(w),
  Tensor: () => f32([4, 8]),
  Histogram: () => new lib.Histogram({ bins: 16, lo: -1, hi: 1 }),
  Gram: () => new lib.Gram(8),
  KvCache: () => new lib.KvCache({ maxTokens: 8, heads: 2, headDim: 4 }),
  MinMaxObserver: () => new lib.MinMaxObserver(),
  PerChannelMinMaxObserver: () => new lib.PerChannelMinMaxObserver(),
  HistogramObserver: () => new lib.HistogramObserver(),
  MseObserver: () => new lib.MseObserver(),
  Rng: () => new lib.Rng(1),
  CausalDit: () => lib.CausalDit.synthetic(tiny, { seed: 1 }),
  DitState: () => lib.CausalDit.synthetic(tiny, { seed: 1 }).createState(),
  ForwardProfile: () => new lib.ForwardProfile(),
  QTensor: () => lib.quantizeSync(f32([4, 8]), { dtype: 'int8' }),
};
for (const [cls, make] of Object.entries(makers)) {
  let instance;
  try {
    instance = make();
  } catch {
    continue;
  }
  const shared = instance;
  for (let proto = Object.getPrototypeOf(instance); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const m of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, m);
      if (m === 'constructor' || typeof d?.value !== 'function' || m === 'dispose') continue;
      if (targets.some((t) => t.label === `${cls}#${m}`)) continue;
      targets.push({ label: `${cls}#${m}`, arity: Math.max(d.value.length, 1), call: (a) => d.value.apply(shared, a), params: params(d.value) });
    }
  }
}

function params(fn) {
  const src = Function.prototype.toString.call(fn);
  const m = /^[^(]*\(([^)]*)\)/.exec(src);
  if (!m) return [];
  return m[1].split(',').map((p) => p.trim().replace(/[=\s].*$/, '').replace(/^\.\.\./, '')).filter((p) => /^\w+$/.test(p));
}

targets.sort((a, b) => (a.label < b.label ? -1 : 1));
const mine = targets.filter((_, i) => i % shards === shard);

// ---- the calls ----
const stats = { targets: mine.length, calls: 0, clean: 0, accepted: 0, unclean: 0, named: 0, unhandled: 0, uncaught: 0, samples: [], uncleanSamples: [], uncaughtSamples: [] };
const isClean = (e) => e instanceof Error && typeof e.message === 'string' && e.message.length > 0;
const withTimeout = (p) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout: the call did not settle in 20 s')), 20_000).unref())]);

for (const t of mine) {
  const positions = Math.min(t.arity, 2);
  for (let pos = 0; pos < positions; pos++) {
    // Every bad value in the first position; every other one in the second (the options, mostly).
    for (const [badLabel, make] of pos === 0 ? BAD : BAD.filter((_, i) => i % 2 === 0)) {
      const label = `${t.label} arg ${pos} = ${badLabel}`;
      if (log !== null) writeSync(log, label + '\n');
      current = label;
      let args;
      try {
        args = DEFAULTS.slice(0, positions).map((d) => d());
        args[pos] = make();
      } catch {
        continue;
      }
      stats.calls++;
      try {
        const r = t.call(args);
        if (r && typeof r.then === 'function') await withTimeout(r);
        stats.accepted++;
      } catch (e) {
        if (isClean(e) && !/^timeout: /.test(e.message)) {
          stats.clean++;
          const param = t.params?.[pos];
          if (param && e.message.includes(param)) stats.named++;
          if (stats.samples.length < 5 && pos === 0) stats.samples.push(`${label}: ${e.constructor.name}: ${e.message.split('\n')[0]}`);
        } else {
          stats.unclean++;
          if (stats.uncleanSamples.length < 20) stats.uncleanSamples.push(`${label}: ${String(e?.message ?? e)}`);
        }
      }
    }
  }
}
await new Promise((r) => setTimeout(r, 50));
stats.unhandled = unhandled;
stats.uncaught = uncaught.length;
stats.uncaughtSamples = uncaught.slice(0, 5);
process.stdout.write(JSON.stringify(stats) + '\n');
