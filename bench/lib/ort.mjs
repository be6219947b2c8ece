// One-node ONNX models for the peers we measure against (onnxruntime-node), built with onnx-proto.
// Benchmarks only: onnxruntime-node and onnx-proto are devDependencies, never used by the library.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto');
export const ort = require('onnxruntime-node');

const DT = onnx.TensorProto.DataType;
const TYPE_OF = {
  float32: DT.FLOAT,
  uint8: DT.UINT8,
  int8: DT.INT8,
  int32: DT.INT32,
  int64: DT.INT64,
  float16: DT.FLOAT16,
};

function valueInfo(name, dtype, shape) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: TYPE_OF[dtype],
        shape: onnx.TensorShapeProto.create({
          dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })),
        }),
      }),
    }),
  });
}

function initializer(name, dtype, shape, data) {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return onnx.TensorProto.create({ name, dataType: TYPE_OF[dtype], dims: shape, rawData: bytes });
}

function attribute(name, value) {
  if (Number.isInteger(value)) return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
  if (typeof value === 'number') return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value });
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.STRING, s: Buffer.from(value) });
}

/**
 * Serialises a model of one node.
 * @param {object} spec
 * @param {string} spec.op operator type, e.g. 'MatMul'
 * @param {string} [spec.domain] '' (ai.onnx) or 'com.microsoft'
 * @param {{name: string, dtype: string, shape: (number|string)[]}[]} spec.inputs graph inputs
 * @param {{name: string, dtype: string, shape: number[], data: ArrayBufferView}[]} [spec.initializers] constants
 * @param {string[]} spec.nodeInputs the node's input names in order ('' for an omitted optional input)
 * @param {{name: string, dtype: string, shape: (number|string)[]}[]} spec.outputs
 * @param {Record<string, number|string>} [spec.attributes]
 * @returns {Uint8Array} the ModelProto bytes
 */
export function oneNodeModel(spec) {
  const domain = spec.domain ?? '';
  const node = onnx.NodeProto.create({
    opType: spec.op,
    domain,
    input: spec.nodeInputs,
    output: spec.outputs.map((o) => o.name),
    attribute: Object.entries(spec.attributes ?? {}).map(([k, v]) => attribute(k, v)),
  });
  const graph = onnx.GraphProto.create({
    name: spec.op,
    node: [node],
    input: spec.inputs.map((i) => valueInfo(i.name, i.dtype, i.shape)),
    output: spec.outputs.map((o) => valueInfo(o.name, o.dtype, o.shape)),
    initializer: (spec.initializers ?? []).map((i) => initializer(i.name, i.dtype, i.shape, i.data)),
  });
  const opsets = [onnx.OperatorSetIdProto.create({ domain: '', version: 21 })];
  if (domain) opsets.push(onnx.OperatorSetIdProto.create({ domain, version: 1 }));
  const model = onnx.ModelProto.create({ irVersion: 10, opsetImport: opsets, graph, producerName: 'qarvd-bench' });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * An inference session on `threads` intra-op threads, sequential execution, and no spinning between
 * runs: by default ORT's threads keep spinning after a run and steal the cores from whatever is
 * timed next (measured: our W8A8 at 1536x1536 took 19.6 ms right after an ORT run, 13.9 ms without).
 */
export async function session(modelBytes, threads) {
  return ort.InferenceSession.create(modelBytes, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
}

/** Median seconds of `fn` over `iterations` timed runs after `warmup` runs (fn may be async). */
export async function timeit(fn, { warmup = 2, iterations = 10, minSeconds = 0.3 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  const start = performance.now();
  while (times.length < iterations || (performance.now() - start) / 1000 < minSeconds) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
    if (times.length >= 200) break;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
