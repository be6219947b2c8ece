// The identity of the quantized checkpoint layout, apart from the code, so that the float model
// loader can recognise a quantized file without importing the checkpoint module.

/** The metadata key of a quantized checkpoint's description, and the value of its `format`. */
export const QUANTIZED_METADATA_KEY = 'qarvd.quantized';
/** The version of the layout this qarvd writes and reads. */
export const QUANTIZED_FORMAT_VERSION = 1;
