// Public API of qarvd. Each concern lives in its own folder; this file only re-exports.
export { backends, setThreads, setIsa, ISAS, type Backends, type CudaDevice, type Isa } from './backends.js';
export { Tensor, checkShape, expectTensor } from './tensor/tensor.js';
export * from './tensor/dtype.js';
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, writeFileAtomic, SafetensorsError, type SafetensorsContent } from './io/safetensors.js';
export { videoMetrics, type VideoMetrics, type VideoMetricsOptions } from './metrics/video.js';
export { latentsToFrames, channelRanges, frameStrip, encodePng, encodeGif, writePng, writeGif, type RgbaFrames, type LatentImageOptions } from './io/images.js';
export { allocate, type AllocationItem, type AllocationOption, type AllocationPlan, type AllocateOptions } from './allocation/knapsack.js';
