// Public API of qarvd. Each concern lives in its own folder; this file only re-exports.
export { backends, setThreads, setIsa, ISAS, type Backends, type CudaDevice, type Isa } from './backends.js';
export { Tensor, checkShape, expectTensor } from './tensor/tensor.js';
export * from './tensor/dtype.js';
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, writeFileAtomic, SafetensorsError, type SafetensorsContent } from './io/safetensors.js';
export { videoMetrics, type VideoMetrics, type VideoMetricsOptions } from './metrics/video.js';
export { latentsToFrames, channelRanges, frameStrip, encodePng, encodeGif, writePng, writeGif, type RgbaFrames, type LatentImageOptions } from './io/images.js';
export { allocate, type AllocationItem, type AllocationOption, type AllocationPlan, type AllocateOptions } from './allocation/knapsack.js';
export { type Granularity, checkGranularity, scaleShape, numScales } from './primitives/granularity.js';
export { type Scheme, MIN_SCALE, roundHalfToEven, qparamsFromRange, quantizeValue, dequantizeValue } from './primitives/qparams.js';
export { QTensor, type QTensorInit, symmetricZeroPoint } from './primitives/qtensor.js';
export { chooseQParams, chooseQParamsSync, quantize, quantizeSync, dequantize, dequantizeSync, blockRange, blockRangeSync, type QuantTypeOptions, type ChooseQParamsOptions, type QuantizeOptions, type DequantizeOptions, type QParams, type BlockRangeOptions, type BlockRange } from './primitives/quantize.js';
