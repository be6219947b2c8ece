import { EMBEDDED_TESTBED, type DitConfig } from '../../lib/model/config.js';

/** A model small enough for tests, wide enough (64) that outlier detection finds 32-column segments. */
export const small: DitConfig = { ...EMBEDDED_TESTBED, name: 'small', inChannels: 4, outChannels: 4, dim: 64, ffnDim: 128, heads: 2, layers: 1, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 8, latentWidth: 8, framesPerChunk: 2, chunks: 3 };
