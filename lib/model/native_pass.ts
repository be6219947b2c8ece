// A forward pass of the causal DiT as one native job (csrc/model/dit_pass.cc): the model's layers,
// parameters, the video state's KV caches and cross-attention keys go to the addon by reference; one
// call (one Promise) runs the whole pass off the event loop, on buffers of a workspace the state
// keeps from pass to pass. It computes what the op-by-op forward of dit.ts computes, bit for bit.
import { markAsUntransferable } from 'node:worker_threads';
import { LinearF32, type Linear } from '../gemm/linear.js';
import { IntLinear } from '../gemm/quantized.js';
import type { NativeHandle } from '../gemm/native.js';
import { native } from '../native/binding.js';
import { Tensor } from '../tensor/tensor.js';
import type { DitConfig } from './config.js';
import type { KvCache } from './ops/kv-cache.js';
import type { KvData } from './ops/common.js';
import type { AttentionPrecision } from './ops/attention.js';

interface DitNative {
  ditWorkspace(): NativeHandle;
  ditWorkspaceDispose(h: NativeHandle): undefined;
  ditForward(
    layers: [NativeHandle, Float32Array | null][],
    params: Float32Array[],
    dims: Float64Array,
    caches: KvData[],
    capacity: number,
    committedTokens: number,
    committedFrames: number,
    cross: Float32Array[],
    crossReady: Uint8Array,
    x: Float32Array,
    frames: number,
    sinusoid: Float32Array,
    context: Float32Array,
    textLen: number,
    out: Float32Array,
    workspace: NativeHandle,
    profile: Float64Array | null,
    kvDtype: number,
    cacheScales: Float32Array[] | null,
    smoothing: Float32Array[] | null,
    precision: number,
    async: boolean,
  ): Promise<void> | undefined;
}

/** What the native pass reads of a model (CausalDit implements it). */
export interface NativePassModel {
  readonly config: Readonly<DitConfig>;
  linear(name: string): Linear;
  param(name: string): Tensor<'float32'>;
}

/** What it reads and updates of a video state (DitState implements it). */
export interface NativePassState {
  readonly caches: KvCache[];
  committedTokens: number;
  committedFrames: number;
  crossKv: ({ k: Tensor<'float32'>; v: Tensor<'float32'> } | undefined)[];
  nativeWorkspace?: NativeHandle;
  profile?: ForwardProfile;
}

/**
 * Where the time of a model's passes went, in seconds, summed over the passes run with it (set it as
 * `state.profile` before generating). `rest` is the wall time not spent in any kernel: JavaScript,
 * the N-API calls and waiting for the thread pool.
 *
 * @example
 * const state = model.createState();
 * state.profile = new ForwardProfile();
 * // ... forward passes with this state ...
 * console.log(state.profile.summary());
 */
export class ForwardProfile {
  /** Block and embedding linears (with the activation quantization of quantized ones). */
  linears = 0;
  attention = 0;
  /** Layer and RMS norms, modulation, RoPE and gated residuals. */
  norms = 0;
  /** GELU and SiLU. */
  activations = 0;
  /** Copies and reshapes (patchify, unpatchify, cache writes) and allocation. */
  copies = 0;
  /** Wall time of the passes. */
  total = 0;
  passes = 0;

  /** Wall time not spent in the kernels above. */
  get rest(): number {
    return Math.max(0, this.total - this.linears - this.attention - this.norms - this.activations - this.copies);
  }

  /** The categories as fractions of the total. */
  summary(): Record<'linears' | 'attention' | 'norms' | 'activations' | 'copies' | 'rest', number> {
    const t = this.total || 1;
    return {
      linears: this.linears / t,
      attention: this.attention / t,
      norms: this.norms / t,
      activations: this.activations / t,
      copies: this.copies / t,
      rest: this.rest / t,
    };
  }
}

const EMBEDDING = ['patch_embedding', 'time_embedding.0', 'time_embedding.2', 'time_projection.1', 'head.head'];
const BLOCK = ['self_attn.q', 'self_attn.k', 'self_attn.v', 'self_attn.o', 'cross_attn.q', 'cross_attn.k', 'cross_attn.v', 'cross_attn.o', 'ffn.0', 'ffn.2'];
const BLOCK_PARAMS = ['modulation', 'self_attn.norm_q.weight', 'self_attn.norm_k.weight', 'norm3.weight', 'norm3.bias', 'cross_attn.norm_q.weight', 'cross_attn.norm_k.weight'];

function handleOf(l: Linear): [NativeHandle, Float32Array | null] | undefined {
  if (l instanceof LinearF32) return [l.handle, l.bias];
  if (l instanceof IntLinear && l.mode === 'fast') return [l.packed.handle, l.bias];
  return undefined;
}

/** The layers as the native pass takes them, or undefined when one of them has no native form. */
function nativeLayers(model: NativePassModel): [NativeHandle, Float32Array | null][] | undefined {
  const names = [...EMBEDDING];
  for (let b = 0; b < model.config.layers; b++) for (const n of BLOCK) names.push(`blocks.${b}.${n}`);
  const out: [NativeHandle, Float32Array | null][] = [];
  for (const n of names) {
    const h = handleOf(model.linear(n));
    if (!h) return undefined;
    out.push(h);
  }
  return out;
}

/** @internal Frees a state's native workspace now (a pass in flight keeps its own reference). */
export function disposeWorkspace(h: NativeHandle): void {
  native<DitNative>().ditWorkspaceDispose(h);
}

/** A zeroed buffer that the native pass writes in place (the cross-attention keys and values). */
function untransferable(length: number): Float32Array {
  const a = new Float32Array(length);
  markAsUntransferable(a.buffer);
  return a;
}

/** Whether the native pass can run this model (every linear a FP32 or fast quantized layer). */
export function canRunNative(model: NativePassModel): boolean {
  return nativeLayers(model) !== undefined;
}

/**
 * Runs one forward pass natively. The caller (CausalDit.forward) has validated x, the state and the
 * context; `sinusoid` is the timestep's embedding. Returns the predicted flow [F, C, H, W] and, like
 * the op-by-op forward, leaves the chunk's keys and values in the caches after the committed tokens.
 */
export async function nativeForward(
  model: NativePassModel,
  state: NativePassState,
  x: Tensor<'float32'>,
  sinusoid: Tensor<'float32'>,
  context: Tensor<'float32'>,
  precision: AttentionPrecision = 'fp32',
): Promise<Tensor<'float32'>> {
  const c = model.config;
  const layers = nativeLayers(model);
  if (!layers) throw new Error('nativeForward: a layer of the model has no native form');
  const params = [model.param('head.modulation').data];
  for (let b = 0; b < c.layers; b++) for (const n of BLOCK_PARAMS) params.push(model.param(`blocks.${b}.${n}`).data);
  const dims = Float64Array.of(c.dim, c.ffnDim, c.heads, c.layers, c.inChannels, c.outChannels, c.freqDim, c.latentHeight, c.latentWidth, c.eps);
  const caches: KvData[] = [];
  const int8 = state.caches[0].storage === 'int8';
  const scales: Float32Array[] = [];
  const smoothing: Float32Array[] = [];
  for (const cache of state.caches) {
    const { k, v, kScale, vScale, smoothing: m } = cache.nativeBuffers();
    caches.push(k, v);
    if (int8) {
      scales.push(kScale!, vScale!);
      smoothing.push(m!);
    }
  }
  const kvDtype = { fp32: 0, bf16: 1, int8: 2 }[state.caches[0].storage];
  const textLen = context.shape[0];
  const cross: Float32Array[] = [];
  const ready = new Uint8Array(c.layers);
  for (let b = 0; b < c.layers; b++) {
    const kv = state.crossKv[b];
    ready[b] = kv ? 1 : 0;
    cross.push(kv ? kv.k.data : untransferable(textLen * c.dim), kv ? kv.v.data : untransferable(textLen * c.dim));
  }
  const frames = x.shape[0];
  const tokens = frames * (c.latentHeight / 2) * (c.latentWidth / 2);
  // The input is copied: the pass runs off the event loop, and the caller's buffer is theirs.
  const xs = x.data.slice();
  const out = new Float32Array(frames * c.outChannels * c.latentHeight * c.latentWidth);
  const nat = native<DitNative>();
  state.nativeWorkspace ??= nat.ditWorkspace();
  const profile = state.profile ? new Float64Array(7) : null;
  const t0 = performance.now();
  // The caches are the pass's while it runs: it writes the chunk's keys and values after the
  // committed tokens. If it fails, those are dropped again.
  for (const cache of state.caches) cache.beginNativeWrite(state.committedTokens);
  let written = state.committedTokens;
  try {
    await nat.ditForward(layers, params, dims, caches, state.caches[0].maxTokens, state.committedTokens, state.committedFrames, cross, ready, xs, frames, sinusoid.data, context.data, textLen, out, state.nativeWorkspace, profile,
      kvDtype, int8 ? scales : null, int8 ? smoothing : null, { fp32: 0, bf16: 1, int8: 2 }[precision], true);
    written += tokens;
  } finally {
    for (const cache of state.caches) cache.endNativeWrite(written);
  }
  for (let b = 0; b < c.layers; b++) {
    if (!state.crossKv[b]) state.crossKv[b] = { k: new Tensor('float32', [textLen, c.dim], cross[2 * b]), v: new Tensor('float32', [textLen, c.dim], cross[2 * b + 1]) };
  }
  if (profile && state.profile) {
    const p = state.profile;
    p.linears += profile[0];
    p.attention += profile[1];
    p.norms += profile[2];
    p.activations += profile[3];
    p.copies += profile[4];
    // The wall time as the caller sees it: the native pass plus the calls and Promise around it.
    p.total += (performance.now() - t0) / 1000;
    p.passes += profile[6];
  }
  return new Tensor('float32', [frames, c.outChannels, c.latentHeight, c.latentWidth], out);
}
