// Public API of qarvd. Each concern lives in its own folder; this file only re-exports.
export { backends, setThreads, setIsa, ISAS, type Backends, type CudaDevice, type Isa } from './backends.js';
export { Tensor, checkShape, expectTensor } from './tensor/tensor.js';
export * from './tensor/dtype.js';
export { encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, writeFileAtomic, SafetensorsError, type SafetensorsContent } from './io/safetensors.js';
export { videoMetrics, type VideoMetrics, type VideoMetricsOptions } from './metrics/video.js';
export { layerNorm, layerNormSync, rmsNorm, rmsNormSync, gatedResidual, gatedResidualSync, type LayerNormOptions, type RmsNormOptions, type GatedResidualOptions } from './model/ops/norm.js';
export { gelu, geluSync, silu, siluSync, type ActivationOptions } from './model/ops/activation.js';
export { rope3d, rope3dSync, ropeSplit, type Rope3dOptions } from './model/ops/rope.js';
export { attention, attentionSync, type AttentionMask, type AttentionOptions } from './model/ops/attention.js';
export { KvCache, type KvCacheOptions, type KvCacheAttentionOptions } from './model/ops/kv-cache.js';
