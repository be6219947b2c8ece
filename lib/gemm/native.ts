// The native functions of the GEMM family (csrc/napi/gemm.cc). Arguments are validated by the
// classes in this folder before they get here; the native side re-checks lengths and handle kinds.
import { native } from '../native/binding.js';

/** An opaque napi External owning packed weights in native memory (freed by the garbage collector). */
export type NativeHandle = { readonly __nativeHandle: unique symbol };

export interface GemmNative {
  gemmF32Pack(w: Float32Array, n: number, k: number): NativeHandle;
  gemmF32Forward(h: NativeHandle, x: Float32Array, m: number, bias: Float32Array | null, y: Float32Array, async: false): undefined;
  gemmF32Forward(h: NativeHandle, x: Float32Array, m: number, bias: Float32Array | null, y: Float32Array, async: true): Promise<void>;
  gemmIntCreate(n: number, k: number, perm: Int32Array | null): NativeHandle;
  gemmIntAddSegment(
    h: NativeHandle,
    spec: Int32Array,
    actScale: number,
    w: Float32Array | null,
    q: Int8Array | null,
    scaleIn: Float32Array | null,
    zeroIn: Int32Array | null,
    scaleOut: Float32Array | null,
    zeroOut: Int32Array | null,
  ): undefined;
  gemmIntInfo(h: NativeHandle): { bytes: number; groups: number[] };
  gemmIntExport(h: NativeHandle, seg: number, q: Int8Array, scale: Float32Array, zero: Int32Array): undefined;
  gemmIntForward(
    h: NativeHandle,
    x: Float32Array,
    m: number,
    bias: Float32Array | null,
    y: Float32Array,
    emulated: boolean,
    async: false,
  ): undefined;
  gemmIntForward(
    h: NativeHandle,
    x: Float32Array,
    m: number,
    bias: Float32Array | null,
    y: Float32Array,
    emulated: boolean,
    async: true,
  ): Promise<void>;
  /** Frees a handle's weights now (idempotent); true if it was a GEMM handle. */
  gemmDispose(h: NativeHandle): boolean;
  gemmIntAccumulators(h: NativeHandle, x: Float32Array, m: number, acc: Int32Array, actScale: Float32Array, actZero: Int32Array): undefined;
}

export function gemmNative(): GemmNative {
  return native<GemmNative>();
}
