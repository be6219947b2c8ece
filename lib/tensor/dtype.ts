// The dtype vocabulary shared by TypeScript and C++ (csrc/common/dtype.h pins the same codes).

/** Element types of host tensors. int4/uint4 are packed two per byte, element 2i in the low nibble (as ONNX). */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'int32' | 'int8' | 'uint8' | 'int4' | 'uint4';
export type FloatDType = 'float32' | 'float16' | 'bfloat16';
/** Quantized integer types. */
export type QuantDType = 'int8' | 'uint8' | 'int4' | 'uint4';

export const DTYPES: readonly DType[] = ['float32', 'float16', 'bfloat16', 'int32', 'int8', 'uint8', 'int4', 'uint4'];
export const FLOAT_DTYPES: readonly FloatDType[] = ['float32', 'float16', 'bfloat16'];
export const QUANT_DTYPES: readonly QuantDType[] = ['int8', 'uint8', 'int4', 'uint4'];

/** Numeric code of each dtype as the native addon knows it. Keep in step with csrc/common/dtype.h. */
export const DTYPE_CODE: Readonly<Record<DType, number>> = {
  float32: 0,
  float16: 1,
  bfloat16: 2,
  int32: 3,
  int8: 4,
  uint8: 5,
  int4: 6,
  uint4: 7,
};

/** The typed array that stores each dtype. float16 and bfloat16 are raw 16-bit patterns. */
export interface StorageOf {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int32: Int32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int4: Uint8Array;
  uint4: Uint8Array;
}
export type Storage = StorageOf[DType];

/** Bits per element. */
export function bitsOf(dtype: DType): number {
  switch (dtype) {
    case 'float32':
    case 'int32':
      return 32;
    case 'float16':
    case 'bfloat16':
      return 16;
    case 'int8':
    case 'uint8':
      return 8;
    case 'int4':
    case 'uint4':
      return 4;
  }
}

/** Number of storage elements (bytes for packed 4-bit types) that hold `count` values. */
export function storageLength(dtype: DType, count: number): number {
  return bitsOf(dtype) === 4 ? Math.ceil(count / 2) : count;
}

/** Integer range [qmin, qmax] of a quantized dtype. */
export function qrange(dtype: QuantDType): { qmin: number; qmax: number } {
  switch (dtype) {
    case 'int8':
      return { qmin: -128, qmax: 127 };
    case 'uint8':
      return { qmin: 0, qmax: 255 };
    case 'int4':
      return { qmin: -8, qmax: 7 };
    case 'uint4':
      return { qmin: 0, qmax: 15 };
  }
}

export function allocateStorage<D extends DType>(dtype: D, count: number): StorageOf[D] {
  const n = storageLength(dtype, count);
  switch (dtype) {
    case 'float32':
      return new Float32Array(n) as StorageOf[D];
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(n) as StorageOf[D];
    case 'int32':
      return new Int32Array(n) as StorageOf[D];
    case 'int8':
      return new Int8Array(n) as StorageOf[D];
    default:
      return new Uint8Array(n) as StorageOf[D];
  }
}

const STORAGE_CLASS: Record<DType, string> = {
  float32: 'Float32Array',
  float16: 'Uint16Array',
  bfloat16: 'Uint16Array',
  int32: 'Int32Array',
  int8: 'Int8Array',
  uint8: 'Uint8Array',
  int4: 'Uint8Array',
  uint4: 'Uint8Array',
};

export function storageClassName(dtype: DType): string {
  return STORAGE_CLASS[dtype];
}
