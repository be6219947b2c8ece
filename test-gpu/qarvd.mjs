// What the GPU suite and benchmarks use from the built package (dist/), imported module by module:
// dist/index.js also loads the CLI and image modules, whose npm packages (pngjs, ...) are not on the
// GPU machine. The addon is loaded from build/Release unless QARVD_ADDON says otherwise, so that
// node-gyp-build (in node_modules) is not needed either.
import { fileURLToPath } from 'node:url';

process.env.QARVD_ADDON ??= fileURLToPath(new URL('../build/Release/qarvd.node', import.meta.url));

export { backends } from '../dist/backends.js';
export { Tensor } from '../dist/tensor/tensor.js';
export { QUANT_DTYPES, FLOAT_DTYPES } from '../dist/tensor/dtype.js';
export { chooseQParams, chooseQParamsSync, quantize, quantizeSync, dequantize, dequantizeSync } from '../dist/primitives/quantize.js';
export { QTensor } from '../dist/primitives/qtensor.js';
export { DeviceTensor } from '../dist/device/tensor.js';
export { DeviceQTensor, quantizeOnDevice, dequantizeOnDevice, chooseQParamsOnDevice } from '../dist/device/quantize.js';
export { DeviceQuantizedLinear } from '../dist/device/gemm.js';
export { QuantizedLinear } from '../dist/gemm/quantized.js';
export { quantizeValue } from '../dist/primitives/qparams.js';

/** mulberry32 (as test/helpers/rng.ts): seeded floats in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The reason to skip the GPU suite on this machine, or false when a CUDA device is present. */
export async function gpuSkipReason() {
  const { backends } = await import('../dist/backends.js');
  const { cuda } = backends();
  if (cuda.devices.length > 0) return false;
  return `no CUDA device (${cuda.compiled ? cuda.status : 'addon built without CUDA'}): the GPU suite runs on GPU machines`;
}
