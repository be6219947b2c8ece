// Public API of qarvd. Each concern lives in its own folder; this file only re-exports.
export { backends, setThreads, setIsa, measureInt8Peak, ISAS, type Backends, type CudaDevice, type Isa, type SetIsaOptions, type Int8Peak } from './backends.js';
export { Tensor, checkShape, expectTensor } from './tensor/tensor.js';
export * from './tensor/dtype.js';
export { toFloat32, halfToFloat } from './tensor/convert.js';
export {
  encodeSafetensors, decodeSafetensors, readSafetensors, writeSafetensors, writeFileAtomic, openSafetensors, writeSafetensorsStream, parseSafetensorsHeader, SafetensorsError,
  type SafetensorsContent, type SafetensorsFile, type SafetensorsEntry, type StreamedTensor,
} from './io/safetensors.js';
export { openZip, ZipError, type ZipArchive, type ZipEntryInfo } from './io/zip.js';
export { unpickle, PickleError, PickleDict, PickleTuple, type PickleGlobal, type PickleKey, type UnpickleOptions } from './io/pickle.js';
export {
  openPytorchCheckpoint, findStateDict, commonPrefix, TorchTensor, CheckpointError, STATE_DICT_KEYS, WRAPPER_PREFIXES,
  type PytorchCheckpoint, type TorchStorage, type StateDict,
} from './io/pytorch.js';
export { readTextFeatures, PROMPTS_METADATA_KEY, type TextFeatures } from './io/text_features.js';
export { videoMetrics, type VideoMetrics, type VideoMetricsOptions } from './metrics/video.js';
export { latentsToFrames, channelRanges, frameStrip, encodePng, encodeGif, writePng, writeGif, type RgbaFrames, type LatentImageOptions } from './io/images.js';
export { allocate, type AllocationItem, type AllocationOption, type AllocationPlan, type AllocateOptions } from './allocation/knapsack.js';
export { minMax, minMaxSync, absMax, absMaxSync, type ReduceOptions, type MinMax, type MinMaxPerAxis, type AbsMax, type AbsMaxPerAxis } from './calibration/reduce.js';
export { columnNorms, columnNormsSync } from './calibration/norms.js';
export { Histogram, percentileOfCounts, MAX_BINS, type HistogramOptions, type HistogramAddOptions, type HistogramJSON } from './calibration/histogram.js';
export { percentile, quantileSorted, medianSorted, type MedianConvention } from './calibration/quantile.js';
export {
  mseClipSearch, mseClipSearchSync, mseChannelClipSearch, mseChannelClipSearchSync, DEFAULT_PERCENTILES,
  type MseClipSearchOptions, type MseClipSearchResult, type ChannelClipSearchOptions, type ChannelClipSearchResult,
} from './calibration/clip_search.js';
export { Gram, gramAccumulate, gramAccumulateSync, type GramOptions, type GramJSON } from './calibration/gram.js';
export { detectOutliers, detectOutliersSync, detectOutliersFromNorms, type OutlierMethod, type OutlierOptions, type OutlierResult } from './calibration/outliers.js';
export { chunkWeightsFromSensitivity } from './calibration/chunk_weights.js';
export { type ObserveOptions, type ObserverConfig, type TensorQParams, type ValueStats } from './calibration/observer.js';
export { MinMaxObserver, PerChannelMinMaxObserver, type ChannelQParams, type MinMaxObserverJSON, type PerChannelMinMaxObserverJSON } from './calibration/minmax_observer.js';
export { HistogramObserver, DEFAULT_BINS, type HistogramGridConfig, type HistogramObserverJSON } from './calibration/histogram_observer.js';
export { MseObserver, type MseObserverConfig, type ChunkWeights, type MseCandidate, type MseObserverJSON } from './calibration/mse_observer.js';
export {
  gptq, gptqSync, gptqDequantize, gptqHessianFactorSync,
  type GptqOptions, type GptqQuantizer, type GptqSegment, type GptqLoss, type GptqResult, type GptqSingleResult, type GptqDualResult,
} from './calibration/gptq.js';
export { layerNorm, layerNormSync, rmsNorm, rmsNormSync, gatedResidual, gatedResidualSync, type LayerNormOptions, type RmsNormOptions, type GatedResidualOptions } from './model/ops/norm.js';
export { gelu, geluSync, silu, siluSync, type ActivationOptions } from './model/ops/activation.js';
export { rope3d, rope3dSync, ropeSplit, type Rope3dOptions } from './model/ops/rope.js';
export { attention, attentionSync, ATTENTION_PRECISIONS, type AttentionMask, type AttentionOptions, type AttentionPrecision } from './model/ops/attention.js';
export { KvCache, KV_CACHE_DTYPES, type KvCacheDtype, type KvCacheOptions, type KvCacheAttentionOptions } from './model/ops/kv-cache.js';
export { LinearF32, PackedWeights, matmul, matmulSync, packWeights, type Linear } from './gemm/linear.js';
export { QuantizedLinear, type GemmMode, type QuantizedWeight, type Accumulators, type QuantizedLinearOptions, type QuantizedLinearFromQuantizedOptions } from './gemm/quantized.js';
export { DualScaleLinear, outlierPermutation, type DualScaleLinearOptions, type DualScaleLinearFromQuantizedOptions, type SegmentQuantOptions, type QuantizedSegmentInput } from './gemm/dual.js';
export { type WeightQuantOptions, type ActivationQuantOptions, type WeightDType, type ActivationDType, type SegmentConfig } from './gemm/options.js';
export { ForwardProfile } from './model/native_pass.js';
export { CausalDit, DitState, expectedShapes, sinusoidalEmbedding, patchify, unpatchify, type ForwardOptions, type FromTensorsOptions, type StateOptions } from './model/dit.js';
export { loadEmbeddedModel, embeddedTraining, EMBEDDED_WEIGHTS_FILE, type EmbeddedTraining } from './model/embedded.js';
export {
  shapeScene, renderScene, rgbToLatents, latentsToRgb, spaceToDepth, depthToSpace, heldOutScenes, HELD_OUT_SEED,
  SHAPES_COLOURS, SHAPES_KINDS, SHAPES_DIRECTIONS, SHAPES_SIZE, SHAPES_FRAMES, SHAPES_BACKGROUND, SPACE_TO_DEPTH, type ShapeScene,
} from './data/shapes.js';
export { trackFrames, checkCaption, parseCaption, TRACKER, type FrameTrack, type CaptionCheck, type Caption } from './data/tracker.js';
export { generate, sigmaOf, modelTimestepOf, DEFAULT_TIMESTEPS, type GenerateOptions, type PassInfo } from './model/sampling.js';
export { EMBEDDED_DEFAULT, EMBEDDED_TESTBED, SELF_FORCING_1_3B, CONFIGS, tokensPerFrame, checkConfig, type DitConfig } from './model/config.js';
export { syntheticWeights, encodePrompt, blockLinears, type SyntheticWeights } from './model/weights.js';
export { Rng, hashString } from './model/random.js';
export { loadModel, saveModelWeights, saveSyntheticModel, namedConfig, modelFileConfig, CONFIG_METADATA_KEY } from './model/io.js';
export { inferWanConfig, looksLikeWan, WAN_HEADS, type ShapeTable } from './model/wan.js';
export { convertCheckpoint, type ConvertOptions, type ConvertResult } from './model/convert.js';
export { modelDigest } from './model/digest.js';
export { DEFAULT_PROMPTS, promptLabel, type Prompt, type PromptFeatures } from './model/prompts.js';
export { writeVideos, readVideos, type VideoEntry, type VideoSet } from './io/videos.js';
export { type Granularity, checkGranularity, scaleShape, numScales } from './primitives/granularity.js';
export { type Scheme, MIN_SCALE, roundHalfToEven, qparamsFromRange, quantizeValue, dequantizeValue } from './primitives/qparams.js';
export { QTensor, type QTensorInit, symmetricZeroPoint } from './primitives/qtensor.js';
export { chooseQParams, chooseQParamsSync, quantize, quantizeSync, dequantize, dequantizeSync, blockRange, blockRangeSync, type QuantTypeOptions, type ChooseQParamsOptions, type QuantizeOptions, type DequantizeOptions, type QParams, type BlockRangeOptions, type BlockRange } from './primitives/quantize.js';
export { ChunkScheduler, type LayerSet, type LayerPolicy } from './schedule/scheduler.js';
export { measureSensitivity, type SensitivityOptions, type SensitivityResult } from './schedule/sensitivity.js';
export {
  encodeQuantizedModel, decodeQuantizedModel, saveQuantizedModel, readQuantizedModel, loadQuantizedModel, QUANTIZED_METADATA_KEY, QUANTIZED_FORMAT_VERSION,
  type QuantizedModelSpec, type LoadedQuantizedModel,
} from './checkpoint/checkpoint.js';
export { writeReport, renderReport } from './report/html.js';
export {
  checkReportData, type ReportData, type ReportStep, type ReportSensitivity, type ReportSetting, type ReportChunkCurves,
  type ReportAblationRow, type ReportOutlierLayer, type ReportVideo, type ReportProfile, type NumberList, PROFILE_PARTS,
} from './report/data.js';
export { calibrate, CalibrationStats, type CalibrateOptions, type LayerStats, type CalibrationStatsJSON } from './method/calibrate.js';
export { quantizeModel, detectModelOutliers, roundToNearest, type QuantRecipe, type AllocationRecipe, type LayerReport, type QuantizedModel } from './method/quantize.js';
export { ablationRows, fullRecipe, evaluateLayerSets, SETTINGS, METHODS, ALLOCATION_BUDGET, type MethodName, type AblationRow, type AblationOptions, type Generation, type EvaluationResult, type VideoRequest } from './method/ablation.js';
export { buildLayer, buildLayerSets, fullPrecisionTensors, activationChunks, storedBytes, type LayerSpec, type SegmentSpec } from './method/spec.js';
export { sensitivityFromPerPrompt } from './schedule/sensitivity.js';
export { type Backend, BACKENDS, type BackendOptions } from './device/backend.js';
export { DeviceTensor, type DeviceOptions } from './device/tensor.js';
export { DeviceQTensor, quantizeOnDevice, dequantizeOnDevice, chooseQParamsOnDevice, type DeviceQuantizeOptions } from './device/quantize.js';
export { DeviceQuantizedLinear, type DeviceQuantizedLinearOptions, type DeviceForwardOptions, type DeviceGemmKernel } from './device/gemm.js';
