// Public API of qarvd. Each concern lives in its own folder; this file only re-exports.
export { backends, setThreads, setIsa, ISAS, type Backends, type CudaDevice, type Isa } from './backends.js';
export { Tensor, checkShape, expectTensor } from './tensor/tensor.js';
export * from './tensor/dtype.js';
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, writeFileAtomic, SafetensorsError, type SafetensorsContent } from './io/safetensors.js';
export { videoMetrics, type VideoMetrics, type VideoMetricsOptions } from './metrics/video.js';
export { LinearF32, PackedWeights, matmul, matmulSync, packWeights, type Linear } from './gemm/linear.js';
export { QuantizedLinear, type GemmMode, type QuantizedWeight, type Accumulators, type QuantizedLinearOptions, type QuantizedLinearFromQuantizedOptions } from './gemm/quantized.js';
export { DualScaleLinear, outlierPermutation, type DualScaleLinearOptions, type DualScaleLinearFromQuantizedOptions, type SegmentQuantOptions, type QuantizedSegmentInput } from './gemm/dual.js';
export { type WeightQuantOptions, type ActivationQuantOptions, type WeightDType, type ActivationDType, type SegmentConfig } from './gemm/options.js';
