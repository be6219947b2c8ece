// The AVX-512 kernels of attention (attention_avx512.cc) for run_blocks, shared with the AMX path,
// which keeps their softmax, rescaling and float32 units. Built natively and emulated (simd_build.h).
#pragma once
#include "attention_internal.h"
#include "simd_build.h"

namespace qarvd::attn::QARVD_SIMD_NS {

struct Avx512Kernels : ScalarConversions {
  static PathShape shape();
  static RowQuantizer row_quantizer() { return quantize_row512; }
  QARVD_TARGET_AVX512 static void scores(Unit qk, const KeyBlock& b, int64_t rows_p, Scratch& sc);
  // The scores' scales (and int8's correction for unsigned queries), after the products.
  QARVD_TARGET_AVX512 static void finish_scores(Unit qk, const KeyBlock& b, int64_t rows_p, Scratch& sc);
  QARVD_TARGET_AVX512 static void softmax(int64_t rows_p, int64_t kb, int64_t nk, Scratch& sc);
  QARVD_TARGET_AVX512 static void rescale(int64_t rows_p, Scratch& sc);
  QARVD_TARGET_AVX512 static void accumulate(Unit pv, const ValueBlock& vb, int64_t nk, int64_t rows_p, Scratch& sc);
  static KeyBlock keys(Unit qk, const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc);
  static ValueBlock values(Unit pv, const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk,
                           Scratch& sc);
  static void probabilities(Unit pv, int64_t nk, int64_t rows_p, bool scaled, bool round, Scratch& sc);
  QARVD_TARGET_AVX512BF16 static KeyBlock int8_keys_as_bf16(const KvView& k, const AttentionParams& p, int64_t h, int64_t kb,
                                                            int64_t nk, Scratch& sc);
  // The probabilities (times the values' int8 scales) as bfloat16 pairs of consecutive keys.
  QARVD_TARGET_AVX512BF16 static void probabilities_pairs16(int64_t nk, int64_t rows_p, bool scaled, Scratch& sc);
};

// For the dot units, once per call: float32 keys rounded to bfloat16 rows (head_dim even), values of
// any storage as bfloat16 key pairs with rows of dp words, into the workspace; `in` pointing at them.
Operands prepare_dot_operands(Operands in, const AttentionParams& p, Unit qk, Unit pv, int64_t dp, AttentionWorkspace& ws);

}  // namespace qarvd::attn::QARVD_SIMD_NS
