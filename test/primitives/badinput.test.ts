// Wrong calls to the quantize family: each must throw (or, for the Promise forms, reject) with the
// right error class and a message naming the argument, never crash. The last test calls the native
// functions directly with inconsistent buffers to check the C++ re-checks.
import t from 'tap';
import {
  blockRange,
  blockRangeSync,
  chooseQParams,
  chooseQParamsSync,
  dequantize,
  dequantizeSync,
  QTensor,
  quantize,
  quantizeSync,
  Tensor,
} from '../../lib/index.js';
import { native } from '../../lib/native/binding.js';

const x = new Tensor('float32', [4, 6], Float32Array.from({ length: 24 }, (_, i) => i - 10));
const scalar = new Tensor('float32', [], new Float32Array([1]));
type Case = [label: string, call: () => unknown, error: typeof TypeError | typeof RangeError, name: RegExp];

const quantizeCases: Case[] = [
  ['x null', () => quantizeSync(null as never, { dtype: 'int8' }), TypeError, /\bx\b/],
  ['x a Float32Array', () => quantizeSync(new Float32Array(4) as never, { dtype: 'int8' }), TypeError, /\bx\b/],
  ['x of dtype int8', () => quantizeSync(new Tensor('int8', [2], new Int8Array(2)) as never, { dtype: 'int8' }), TypeError, /\bx\b/],
  ['x of dtype int32', () => quantizeSync(new Tensor('int32', [2], new Int32Array(2)) as never, { dtype: 'int8' }), TypeError, /\bx\b/],
  ['options missing', () => quantizeSync(x, undefined as never), TypeError, /\boptions\b/],
  ['options a string', () => quantizeSync(x, 'int8' as never), TypeError, /\boptions\b/],
  ['dtype missing', () => quantizeSync(x, {}), TypeError, /\bdtype\b/],
  ['dtype int16', () => quantizeSync(x, { dtype: 'int16' as never }), RangeError, /\bdtype\b/],
  ['dtype float32', () => quantizeSync(x, { dtype: 'float32' as never }), RangeError, /\bdtype\b/],
  ['bits 6', () => quantizeSync(x, { bits: 6 as never }), RangeError, /\bbits\b/],
  ['bits 2', () => quantizeSync(x, { bits: 2 as never }), RangeError, /\bbits\b/],
  ['bits a string', () => quantizeSync(x, { bits: '8' as never }), TypeError, /\bbits\b/],
  ['signed a string', () => quantizeSync(x, { bits: 8, signed: 'no' as never }), TypeError, /\bsigned\b/],
  ['dtype and bits', () => quantizeSync(x, { dtype: 'int8', bits: 4 }), TypeError, /\bdtype\b.*\bbits\b/],
  ['scheme unknown', () => quantizeSync(x, { dtype: 'int8', scheme: 'sym' as never }), RangeError, /\bscheme\b/],
  ['granularity a string', () => quantizeSync(x, { dtype: 'int8', granularity: 'perTensor' as never }), TypeError, /\bgranularity\b/],
  ['granularity type unknown', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perRow' } as never }), RangeError, /granularity\.type/],
  ['axis out of range', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perChannel', axis: 2 } }), RangeError, /granularity\.axis/],
  ['axis below -rank', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perChannel', axis: -3 } }), RangeError, /granularity\.axis/],
  ['axis not an integer', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perChannel', axis: 0.5 } }), TypeError, /granularity\.axis/],
  ['axis missing', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perChannel' } as never }), TypeError, /granularity\.axis/],
  ['perChannel of a scalar', () => quantizeSync(scalar, { dtype: 'int8', granularity: { type: 'perChannel', axis: 0 } }), RangeError, /\bgranularity\b/],
  ['perToken of a scalar', () => quantizeSync(scalar, { dtype: 'int8', granularity: { type: 'perToken' } }), RangeError, /\bgranularity\b/],
  ['groupSize 0', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perGroup', axis: 1, groupSize: 0 } }), RangeError, /granularity\.groupSize/],
  ['groupSize not dividing', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perGroup', axis: 1, groupSize: 4 } }), RangeError, /granularity\.groupSize/],
  ['groupSize missing', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perGroup', axis: 1 } as never }), TypeError, /granularity\.groupSize/],
  ['scale of the wrong length', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perChannel', axis: 0 }, scale: [1, 2, 3] }), RangeError, /\bscale\b/],
  ['scale empty', () => quantizeSync(x, { dtype: 'int8', scale: [] }), RangeError, /\bscale\b/],
  ['scale empty Float32Array', () => quantizeSync(x, { dtype: 'int8', scale: new Float32Array(0) }), RangeError, /\bscale\b/],
  ['scale NaN', () => quantizeSync(x, { dtype: 'int8', scale: NaN }), RangeError, /\bscale\b/],
  ['scale Infinity', () => quantizeSync(x, { dtype: 'int8', scale: [Infinity] }), RangeError, /\bscale\b/],
  ['scale 0', () => quantizeSync(x, { dtype: 'int8', scale: 0 }), RangeError, /\bscale\b/],
  ['scale negative', () => quantizeSync(x, { dtype: 'int8', granularity: { type: 'perToken' }, scale: [1, 1, -1, 1] }), RangeError, /\bscale\b/],
  ['scale underflowing float32', () => quantizeSync(x, { dtype: 'int8', scale: 1e-50 }), RangeError, /\bscale\b/],
  ['scale overflowing float32', () => quantizeSync(x, { dtype: 'int8', scale: 1e39 }), RangeError, /\bscale\b/],
  ['scale a string', () => quantizeSync(x, { dtype: 'int8', scale: '0.1' as never }), TypeError, /\bscale\b/],
  ['scale with a string element', () => quantizeSync(x, { dtype: 'int8', scale: ['0.1'] as never }), TypeError, /scale\[0\]/],
  ['zeroPoint without scale', () => quantizeSync(x, { dtype: 'uint8', zeroPoint: 3 }), TypeError, /\bscale\b/],
  ['asymmetric scale without zeroPoint', () => quantizeSync(x, { dtype: 'uint8', scheme: 'asymmetric', scale: 0.1 }), TypeError, /\bzeroPoint\b/],
  ['zeroPoint above int8', () => quantizeSync(x, { dtype: 'int8', scale: 1, zeroPoint: 128 }), RangeError, /\bzeroPoint\b/],
  ['zeroPoint below uint8', () => quantizeSync(x, { dtype: 'uint8', scale: 1, zeroPoint: -1 }), RangeError, /\bzeroPoint\b/],
  ['zeroPoint above int4', () => quantizeSync(x, { dtype: 'int4', scale: 1, zeroPoint: 8 }), RangeError, /\bzeroPoint\b/],
  ['zeroPoint above uint4', () => quantizeSync(x, { dtype: 'uint4', scale: 1, zeroPoint: 16 }), RangeError, /\bzeroPoint\b/],
  ['zeroPoint beyond int32', () => quantizeSync(x, { dtype: 'uint8', scale: 1, zeroPoint: 2 ** 32 + 3 }), RangeError, /\bzeroPoint\b/],
  ['zeroPoint not an integer', () => quantizeSync(x, { dtype: 'uint8', scale: 1, zeroPoint: 1.5 }), RangeError, /\bzeroPoint\b/],
  ['zeroPoint of the wrong length', () => quantizeSync(x, { dtype: 'uint8', scale: 1, zeroPoint: [1, 2] }), RangeError, /\bzeroPoint\b/],
  ['zeroPoint a string', () => quantizeSync(x, { dtype: 'uint8', scale: 1, zeroPoint: '1' as never }), TypeError, /\bzeroPoint\b/],
  ['symmetric with another zeroPoint', () => quantizeSync(x, { dtype: 'int8', scheme: 'symmetric', scale: 1, zeroPoint: 3 }), RangeError, /\bzeroPoint\b/],
  ['non-finite x, per tensor', () => quantizeSync(new Tensor('float32', [3], new Float32Array([1, NaN, 2])), { dtype: 'int8' }), RangeError, /\bx\b/],
  ['non-finite x, per token', () => quantizeSync(new Tensor('float32', [1, 3], new Float32Array([1, -Infinity, 2])), { dtype: 'int8', granularity: { type: 'perToken' } }), RangeError, /\bx\b/],
  ['asymmetric range beyond float32', () => quantizeSync(new Tensor('float32', [2], new Float32Array([3e38, -3e38])), { dtype: 'uint8' }), RangeError, /\bx\b/],
  ['asymmetric row range beyond float32', () => quantizeSync(new Tensor('float32', [1, 2], new Float32Array([3e38, -3e38])), { dtype: 'uint8', granularity: { type: 'perToken' } }), RangeError, /\bx\b/],
  ['out not a tensor', () => quantizeSync(x, { dtype: 'int8', out: new Int8Array(24) as never }), TypeError, /\bout\b/],
  ['out of another dtype', () => quantizeSync(x, { dtype: 'int8', out: Tensor.zeros('uint8', [4, 6]) }), TypeError, /\bout\b/],
  ['out of another shape', () => quantizeSync(x, { dtype: 'int4', out: Tensor.zeros('int4', [6, 4]) }), RangeError, /\bout\b/],
  ['out sharing memory with x', () => quantizeSync(x, { dtype: 'uint8', out: new Tensor('uint8', [4, 6], new Uint8Array(x.data.buffer, 8, 24)) }), RangeError, /\bout\b/],
];

const otherCases: Case[] = [
  ['chooseQParams x null', () => chooseQParamsSync(null as never, { dtype: 'int8' }), TypeError, /\bx\b/],
  ['chooseQParams dtype unknown', () => chooseQParamsSync(x, { dtype: 'int2' as never }), RangeError, /\bdtype\b/],
  ['chooseQParams scheme unknown', () => chooseQParamsSync(x, { dtype: 'int8', scheme: 'affine' as never }), RangeError, /\bscheme\b/],
  ['chooseQParams axis', () => chooseQParamsSync(x, { dtype: 'int8', granularity: { type: 'perGroup', axis: 5, groupSize: 2 } }), RangeError, /granularity\.axis/],
  ['chooseQParams non-finite x', () => chooseQParamsSync(new Tensor('float32', [2], new Float32Array([Infinity, 1])), { dtype: 'uint4' }), RangeError, /\bx\b/],
  ['blockRange x a number', () => blockRangeSync(3 as never), TypeError, /\bx\b/],
  ['blockRange granularity', () => blockRangeSync(x, { granularity: { type: 'perChannel', axis: 9 } }), RangeError, /granularity\.axis/],
  ['dequantize null', () => dequantizeSync(null as never), TypeError, /\bq\b/],
  ['dequantize options', () => dequantizeSync(quantizeSync(x, { dtype: 'int8' }), 'fast' as never), TypeError, /\boptions\b/],
  ['dequantize out of another shape', () => dequantizeSync(quantizeSync(x, { dtype: 'int8' }), { out: Tensor.zeros('float32', [24]) }), RangeError, /\bout\b/],
  ['dequantize out of another dtype', () => dequantizeSync(quantizeSync(x, { dtype: 'int8' }), { out: Tensor.zeros('float16', [4, 6]) as never }), TypeError, /\bout\b/],
  ['dequantize a plain object', () => dequantizeSync({ data: x, scale: new Float32Array(1) } as never), TypeError, /\bq\b/],
  ['QTensor data float32', () => new QTensor({ data: x as never, scale: new Float32Array(1), zeroPoint: new Int32Array(1), scheme: 'symmetric', granularity: { type: 'perTensor' } }), TypeError, /\bdata\b/],
  ['QTensor scale a Float64Array', () => new QTensor({ data: new Tensor('int8', [2], new Int8Array(2)), scale: new Float64Array(1) as never, zeroPoint: new Int32Array(1), scheme: 'symmetric', granularity: { type: 'perTensor' } }), TypeError, /\bscale\b/],
  ['QTensor scale length', () => new QTensor({ data: new Tensor('int8', [2], new Int8Array(2)), scale: new Float32Array(2).fill(1), zeroPoint: new Int32Array(2), scheme: 'symmetric', granularity: { type: 'perTensor' } }), RangeError, /\bscale\b/],
  ['QTensor scale zero', () => new QTensor({ data: new Tensor('int8', [2], new Int8Array(2)), scale: new Float32Array(1), zeroPoint: new Int32Array(1), scheme: 'symmetric', granularity: { type: 'perTensor' } }), RangeError, /\bscale\b/],
  ['QTensor zeroPoint an array', () => new QTensor({ data: new Tensor('int8', [2], new Int8Array(2)), scale: new Float32Array([1]), zeroPoint: [0] as never, scheme: 'symmetric', granularity: { type: 'perTensor' } }), TypeError, /\bzeroPoint\b/],
  ['QTensor zeroPoint out of range', () => new QTensor({ data: new Tensor('uint4', [2], new Uint8Array(1)), scale: new Float32Array([1]), zeroPoint: new Int32Array([16]), scheme: 'asymmetric', granularity: { type: 'perTensor' } }), RangeError, /\bzeroPoint\b/],
  ['QTensor scheme', () => new QTensor({ data: new Tensor('int8', [2], new Int8Array(2)), scale: new Float32Array([1]), zeroPoint: new Int32Array([0]), scheme: 'both' as never, granularity: { type: 'perTensor' } }), RangeError, /\bscheme\b/],
  ['QTensor granularity', () => new QTensor({ data: new Tensor('int8', [2, 3], new Int8Array(6)), scale: new Float32Array([1]), zeroPoint: new Int32Array([0]), scheme: 'symmetric', granularity: { type: 'perGroup', axis: 1, groupSize: 2 } }), RangeError, /granularity\.groupSize/],
];

t.test('sync forms throw, naming the argument', (t) => {
  for (const [label, call, error, name] of [...quantizeCases, ...otherCases]) {
    t.throws(call, error, label);
    try {
      call();
    } catch (e) {
      t.match((e as Error).message, name, `${label}: ${(e as Error).message}`);
    }
  }
  t.end();
});

t.test('async forms reject, naming the argument', async (t) => {
  // Promise forms validate too, and report by rejecting (never by throwing synchronously).
  const cases: [string, () => Promise<unknown>, typeof TypeError | typeof RangeError, RegExp][] = [
    ['quantize bad dtype', () => quantize(x, { dtype: 'int16' as never }), RangeError, /\bdtype\b/],
    ['quantize bad scale', () => quantize(x, { dtype: 'int8', scale: -1 }), RangeError, /\bscale\b/],
    ['quantize non-finite per token', () => quantize(new Tensor('float32', [2, 2], new Float32Array([1, 2, NaN, 3])), { dtype: 'int8', granularity: { type: 'perToken' } }), RangeError, /\bx\b/],
    ['quantize non-finite per channel', () => quantize(new Tensor('float32', [2, 2], new Float32Array([1, 2, NaN, 3])), { dtype: 'int8', granularity: { type: 'perChannel', axis: 1 } }), RangeError, /\bx\b/],
    ['chooseQParams bad granularity', () => chooseQParams(x, { dtype: 'int8', granularity: null as never }), TypeError, /\bgranularity\b/],
    ['blockRange bad x', () => blockRange(null as never), TypeError, /\bx\b/],
    ['dequantize bad q', () => dequantize(undefined as never), TypeError, /\bq\b/],
  ];
  for (const [label, call, error, name] of cases) {
    let promise: Promise<unknown> | undefined;
    t.doesNotThrow(() => {
      promise = call();
      promise.catch(() => undefined);
    }, `${label} does not throw synchronously`);
    await t.rejects(promise!, error, label);
    await promise!.catch((e: Error) => t.match(e.message, name, `${label}: ${e.message}`));
  }
});

t.test('the native functions re-check buffers and layouts', (t) => {
  const a = native<Record<string, (...args: unknown[]) => unknown>>();
  const f = new Float32Array(24);
  const s = new Float32Array([1]);
  const z = new Int32Array([0]);
  const out = new Int8Array(24);
  const calls: [string, () => unknown][] = [
    ['x too short', () => a.quantize(new Float32Array(23), 0, 1, 24, 1, 0, 1, s, z, 4, out, false)],
    ['x of the wrong type', () => a.quantize(new Uint16Array(24), 0, 1, 24, 1, 0, 1, s, z, 4, out, false)],
    ['out too short', () => a.quantize(f, 0, 1, 24, 1, 0, 1, s, z, 4, new Int8Array(23), false)],
    ['4-bit out too short', () => a.quantize(f, 0, 1, 24, 1, 0, 1, s, z, 6, new Uint8Array(11), false)],
    ['scale too short', () => a.quantize(f, 0, 4, 6, 1, 1, 1, s, new Int32Array(6), 4, out, false)],
    ['zeroPoint too short', () => a.quantize(f, 0, 4, 6, 1, 1, 1, new Float32Array(6), z, 4, out, false)],
    ['bad qType', () => a.quantize(f, 0, 1, 24, 1, 0, 1, s, z, 9, out, false)],
    ['bad xType', () => a.quantize(f, 3, 1, 24, 1, 0, 1, s, z, 4, out, false)],
    ['bad mode', () => a.quantize(f, 0, 1, 24, 1, 7, 1, s, z, 4, out, false)],
    ['group not dividing', () => a.quantize(f, 0, 4, 6, 1, 2, 4, new Float32Array(4), new Int32Array(4), 4, out, false)],
    ['negative dimension', () => a.quantize(f, 0, -1, -24, 1, 0, 1, s, z, 4, out, false)],
    ['dequantize out too short', () => a.dequantize(out, 4, 1, 24, 1, 0, 1, s, z, new Float32Array(23), false)],
    ['per token scale too short', () => a.quantizePerToken(f, 0, 4, 6, 4, true, out, new Float32Array(3), new Int32Array(4), false)],
    ['chooseQParams zeroPoint too short', () => a.chooseQParams(f, 0, 4, 6, 1, 1, 1, 4, true, new Float32Array(6), new Int32Array(5), false)],
    ['blockRange hi missing', () => a.blockRange(f, 0, 1, 24, 1, 0, 1, s, undefined, false)],
  ];
  for (const [label, call] of calls) t.throws(call, /native/, label);
  t.end();
});
