// A model's identity for provenance: SHA-256 of its configuration and float weights, so that results
// computed in several processes (shards) can be checked to come from the same model.
import { createHash } from 'node:crypto';
import type { CausalDit } from './dit.js';
import { expectedShapes } from './dit.js';

/**
 * SHA-256 (hex) of the model's configuration and every parameter's float32 values under Wan's names
 * (the weights the model was built from). A model built from quantized layers has no float weights
 * for them and cannot be digested.
 *
 * @example
 * modelDigest(CausalDit.synthetic(EMBEDDED_TESTBED)) === modelDigest(await loadModel(file)); // same weights
 */
export function modelDigest(model: CausalDit): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(model.config));
  for (const name of Object.keys(expectedShapes(model.config)).sort()) {
    let data: Float32Array;
    if (model.hasParam(name)) {
      data = model.param(name).data;
    } else {
      const { weight, bias } = model.floatWeights(name.replace(/\.(weight|bias)$/, ''));
      data = (name.endsWith('.bias') ? bias : weight).data;
    }
    hash.update(name);
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex');
}
