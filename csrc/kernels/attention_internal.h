// Shared by the attention paths (attention.cc: dispatch and scalar; attention_avx2.cc;
// attention_avx512.cc and attention_amx.cc, each built natively and emulated): the arithmetic of the
// precisions element by element, the int8 keys of a call, and the flash-attention block loop that the
// SIMD paths instantiate with their own kernels.
#pragma once
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "../common/parallel.h"
#include "attention.h"
#include "quant_math.h"

namespace qarvd::attn {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// Number of keys query i may see (a prefix of the keys under either mask).
inline int64_t visible(const AttentionParams& p, int64_t i) {
  if (p.chunk == 0) return p.kv_len;
  return std::min(p.kv_len, ((i + p.query_offset) / p.chunk + 1) * p.chunk);
}

// Runs fn(task, scratch) for every task, handing tasks out one at a time from a shared counter so
// that unequal tasks (causal query blocks) still balance across threads; each thread makes one
// Scratch and reuses it, and calls done(scratch) when it runs out of tasks.
template <typename Scratch, typename Make, typename Fn, typename Done>
void dynamic_for(int64_t tasks, Make make, Fn fn, Done done) {
  std::atomic<int64_t> next{0};
  const int64_t parts = std::min<int64_t>(num_threads(), tasks);
  parallel_for(parts, 1, [&](int64_t, int64_t, int) {
    Scratch scratch = make();
    for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) fn(t, scratch);
    done(scratch);
  });
}
template <typename Scratch, typename Make, typename Fn>
void dynamic_for(int64_t tasks, Make make, Fn fn) {
  dynamic_for<Scratch>(tasks, make, fn, [](Scratch&) {});
}

// ---- bfloat16, as VCVTNE2PS2BF16 rounds (Intel SDM): zero and denormals to a zero of the same
// sign, infinities kept, NaN quieted, everything else to nearest even ----

inline uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t exp = u & 0x7f800000u, man = u & 0x007fffffu;
  if (exp == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
  if (exp == 0x7f800000u) return static_cast<uint16_t>((u >> 16) | (man ? 0x40u : 0u));
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float bf16_value(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

inline float round_bf16(float x) { return bf16_value(bf16_bits(x)); }

// ---- stored keys and values, element by element ----

// The stored number (for int8: the integer, its scale apart).
inline float stored(const KvView& v, int64_t token, int64_t offset) {
  const int64_t i = token * v.stride + offset;
  switch (v.dtype) {
    case KvDtype::kFp32: return static_cast<const float*>(v.data)[i];
    case KvDtype::kBf16: return bf16_value(static_cast<const uint16_t*>(v.data)[i]);
    case KvDtype::kInt8: return static_cast<const int8_t*>(v.data)[i];
  }
  return 0.0f;
}

inline float stored_scale(const KvView& v, int64_t token, int64_t head) {
  return v.dtype == KvDtype::kInt8 ? v.scale[token * v.scale_stride + head] : 1.0f;
}

// Symmetric int8 quantization of n floats: scale = max(max|x| / 127, kMinScale),
// q = quantize_value(x, scale, 0) (division, round half to even; |x / scale| <= 127, so rounding by
// adding and subtracting 1.5 * 2^23 is exact and the loops vectorize). Any NaN gives a NaN scale
// (which the scores then carry) and zeros.
inline float quantize_row(const float* x, int64_t n, int8_t* q) {
  float amax = 0.0f;
  int nan = 0;
  for (int64_t c = 0; c < n; ++c) {
    const float a = std::fabs(x[c]);
    amax = a > amax ? a : amax;
    nan |= x[c] != x[c];
  }
  if (nan) {
    std::fill(q, q + n, static_cast<int8_t>(0));
    return std::numeric_limits<float>::quiet_NaN();
  }
  const float scale = std::max(amax / 127.0f, kMinScale);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  for (int64_t c = 0; c < n; ++c) {
    const float v = (x[c] / scale + kRound) - kRound;
    q[c] = static_cast<int8_t>(static_cast<int32_t>(std::min(127.0f, std::max(-128.0f, v))));
  }
  return scale;
}

// ---- int8 keys of a call (kInt8 precision) ----

// Key j of head h: int8 row data + j * stride + h * row (row bytes apart, zero-padded to a multiple
// of 4), scale[j * heads + h], and the sum of its integers sum[j * heads + h] (for the unsigned-by-
// signed dot products of VNNI).
struct Int8Keys {
  const int8_t* data = nullptr;
  int64_t stride = 0, row = 0;
  const float* scale = nullptr;
  int64_t scale_stride = 0;
  const int32_t* sum = nullptr;  // [kv_len][heads]
};

// quantize_row, or a SIMD twin with the same results.
using RowQuantizer = float (*)(const float* x, int64_t n, int8_t* q);
// The fastest of them on the attention path in use (attention.cc).
RowQuantizer path_row_quantizer();

// Stored int8 keys with head_dim a multiple of 4 are used in place (only their sums are computed);
// anything else is smoothed and quantized into the workspace, in parallel over tokens.
Int8Keys prepare_int8_keys(const KvView& k, const AttentionParams& p, AttentionWorkspace& ws, RowQuantizer quantize = quantize_row);

// ---- the block loop of the SIMD paths ----

// What the products run on. kFp32Fma: float32 FMAs (on values already rounded to bfloat16 or
// integers when the precision asks, so the results are those of the precision). kBf16Dot:
// bfloat16 pairs (vdpbf16ps, tdpbf16ps). kInt8Dot: int8 quads (vpdpbusd, tdpbssd).
enum class Unit { kFp32Fma, kBf16Dot, kInt8Dot };

// What the block loop reads: the keys and values as stored (or, for the dot units, converted once
// per call: keys to bfloat16 rows, values to bfloat16 key pairs), the int8 keys of the int8 precision.
struct Operands {
  KvView k, v;
  const Int8Keys* k8 = nullptr;
  // Values as key pairs (kBf16Dot): pair r of head h is the row of words vpairs + (r * heads + h) *
  // vpairs_row (AMX: groups of 16 pairs transposed, attention_amx.cc).
  const uint32_t* vpairs = nullptr;
  int64_t vpairs_row = 0;
};

// One key block of a task in the format of the QK unit: rows `stride` elements (floats, bfloat16s
// or bytes) apart from `base`; rows nk..nk_p of a block are read from `zero`. Per-key scales of the
// scores (int8 keys) and, for kInt8Dot, the integer sums.
struct KeyBlock {
  const void* base = nullptr;
  int64_t stride = 0;
  int64_t nk = 0;
  const void* zero = nullptr;
  const float* scale = nullptr;  // per key of the block, or null
  const int32_t* sum = nullptr;  // per key of the block (kInt8Dot)
};

// One value block: kFp32Fma: rows of floats `stride` apart; kBf16Dot: key pairs, [nk_p / 2][stride]
// 32-bit words, word c of pair r holding (v[2r][c], v[2r + 1][c]) as bfloat16 (low, high).
struct ValueBlock {
  const void* base = nullptr;
  int64_t stride = 0;
};

// Per-thread buffers of a task (sizes from the path's block geometry).
struct Scratch {
  int64_t bq = 0, bk = 0;           // query and key block sizes
  int64_t d = 0, dp = 0;            // head size; columns of the output accumulators
  int64_t depth = 0;                // rows of the packed queries: d, pairs or quads
  std::vector<float> qt;            // kFp32Fma: [d][bq] scaled (rounded) queries, transposed
  std::vector<uint32_t> qpack;      // kBf16Dot: [d/2][bq] bfloat16 pairs; kInt8Dot: [d/4][bq] byte quads
  std::vector<float> qscale;        // kInt8Dot: [bq] per-query scales of the scores
  std::vector<float> st;            // [bk][bq] scores, then probabilities, key-major
  std::vector<uint32_t> ppack;      // kBf16Dot: [bk/2][bq] probability pairs
  std::vector<float> o;             // [bq][dp] unnormalised outputs (AMX: [dp][bq])
  std::vector<float> m, l, alpha;   // running max and sum per query; this block's rescale factor
  std::vector<int32_t> lim;         // visible keys per query
  std::vector<uint8_t> kbuf, vbuf;  // a key or value block converted to the unit's format
  std::vector<float> kscale, vscale;  // the block's per-key scales
  std::vector<int32_t> ksum;          // the block's per-key integer sums (kInt8Dot)
  bool qscaled = false;               // scores take the per-query scales sc.qscale (int8 precision)
  bool int8_unsigned = false;         // PathShape::int8_unsigned_queries
  std::vector<float> xrow;            // [d] one query being packed
  std::vector<int8_t> xrow8;
  std::vector<uint8_t> zero;        // a zero key row of any format
  int64_t ldk = 0, ldv = 0;         // row strides of kbuf (elements) and vbuf (elements or words)
  bool tiles = false;               // AMX: this thread's tiles are configured
};

// The geometry and unit choice of a path.
struct PathShape {
  int64_t bq, bk;
  int qk_keys, qk_queries;  // QK register tile (keys padded to qk_keys, queries to qk_queries)
  int64_t dp_multiple;      // output accumulator columns rounded up to this
  // Packed queries and key rows in the dot units are zero-padded to a multiple of this many
  // channels (the pair or quad, or the tile's K step), so keys are read in place only when head_dim is one.
  int64_t bf16_multiple, int8_multiple;
  bool int8_unsigned_queries;  // vpdpbusd: queries as q + 128 (the keys' sums correct for it)
};

Scratch make_scratch(const PathShape& s, const AttentionParams& p, Unit qk, Unit pv);

// Packs the task's queries rows [q0, q0 + rows) of head h (padded with zeros to rows_p) in the format
// of the unit, scaled by p.scale and rounded as the precision asks; and the visible-key limits.
void pack_queries(const float* q, const AttentionParams& p, int64_t h, int64_t q0, int64_t rows, int64_t rows_p, Unit qk,
                  Scratch& sc, RowQuantizer quantize = quantize_row);

// Scalar conversions of a block (paths replace the hot ones with SIMD code): keys [kb, kb + nk) of
// head h to float32 rows (values of the precision: rounded to bfloat16, or the int8 integers with
// their scales in sc.kscale), or to bfloat16 rows; values likewise to float32 rows or to bfloat16
// key pairs (int8 values as their integers, the scales in sc.vscale for the probabilities).
KeyBlock keys_as_fp32(const KvView& k, const Int8Keys* k8, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk,
                      Scratch& sc);
KeyBlock keys_as_bf16(const KvView& k, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc);
KeyBlock keys_as_int8(const Int8Keys& k8, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc);
ValueBlock values_as_fp32(const KvView& v, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc);
ValueBlock values_as_pairs(const KvView& v, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc);
// The block of values converted once per call (Operands::vpairs), read in place.
ValueBlock prepared_pairs(const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc);
// Probabilities of the block (nk keys, rows_p queries) times the per-key value scales, rounded to
// bfloat16 when `round`: in place in sc.st (kFp32Fma) or as pairs into sc.ppack (kBf16Dot).
void probabilities_fp32(int64_t nk, int64_t rows_p, bool scaled, bool round, Scratch& sc);
void probabilities_pairs(int64_t nk, int64_t rows_p, bool scaled, Scratch& sc);

// A path's kernels, called once per key block. The class K provides (static):
//   PathShape shape();
//   void scores(Unit qk, const KeyBlock&, int64_t rows_p, Scratch&): sc.st[0..nk_p)[0..rows_p) =
//       the block's scores (unit's products, times key and query scales where given);
//   void softmax(int64_t rows_p, int64_t kb, int64_t nk, Scratch&): online softmax of the block;
//   void rescale(int64_t rows_p, Scratch&): o rows times alpha;
//   void accumulate(Unit pv, const ValueBlock&, int64_t nk, int64_t rows_p, Scratch&): o += P V;
//   KeyBlock keys(Unit qk, ...), ValueBlock values(Unit pv, ...), void probabilities(Unit pv, ...):
//       conversions (defaulting to the scalar ones above);
//   void finalize(out, p, h, q0, rows, Scratch&): the task's outputs, o / l;
//   void done(Scratch&): the thread's last task is finished (AMX: release the tiles).
template <class K>
void run_blocks(const float* q, const Operands& in, float* out, const AttentionParams& p, Unit qk, Unit pv) {
  const PathShape shape = K::shape();
  const int64_t blocks = (p.q_len + shape.bq - 1) / shape.bq;
  const bool fold_v = in.v.dtype == KvDtype::kInt8;
  const bool round_p = p.precision != AttentionPrecision::kFp32;
  auto task = [&](int64_t t, Scratch& sc) {
    // Last query blocks first: under the causal mask they see the most keys.
    const int64_t h = t % p.heads, q0 = (blocks - 1 - t / p.heads) * shape.bq;
    const int64_t rows = std::min(shape.bq, p.q_len - q0), rows_p = round_up(rows, shape.qk_queries);
    pack_queries(q, p, h, q0, rows, rows_p, qk, sc, K::row_quantizer());
    std::fill(sc.m.begin(), sc.m.end(), kNegInf);
    std::fill(sc.l.begin(), sc.l.end(), 0.0f);
    std::fill(sc.o.begin(), sc.o.end(), 0.0f);
    const int64_t kv_end = sc.lim[rows_p - 1];
    for (int64_t kb = 0; kb < kv_end; kb += shape.bk) {
      const int64_t nk = std::min(shape.bk, kv_end - kb);
      K::scores(qk, K::keys(qk, in, p, h, kb, nk, sc), rows_p, sc);
      K::softmax(rows_p, kb, nk, sc);
      K::rescale(rows_p, sc);
      const ValueBlock vb = K::values(pv, in, p, h, kb, nk, sc);
      K::probabilities(pv, nk, rows_p, fold_v, round_p, sc);
      K::accumulate(pv, vb, nk, rows_p, sc);
    }
    K::finalize(out, p, h, q0, rows, sc);
  };
  dynamic_for<Scratch>(blocks * p.heads, [&] { return make_scratch(shape, p, qk, pv); }, task, [](Scratch& sc) { K::done(sc); });
}

// Default conversions for a path's K class.
struct ScalarConversions {
  // What quantizes the int8 precision's query rows (quantize_row or a SIMD twin with its results).
  static RowQuantizer row_quantizer() { return quantize_row; }
  static KeyBlock keys(Unit qk, const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk,
                       Scratch& sc) {
    if (qk == Unit::kInt8Dot) return keys_as_int8(*in.k8, p, h, kb, nk, sc);
    if (qk == Unit::kBf16Dot) return keys_as_bf16(in.k, p, h, kb, nk, sc);
    return keys_as_fp32(in.k, in.k8, p, h, kb, nk, sc);
  }
  static ValueBlock values(Unit pv, const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk,
                           Scratch& sc) {
    if (pv != Unit::kBf16Dot) return values_as_fp32(in.v, p, h, kb, nk, sc);
    if (in.vpairs) return prepared_pairs(in, p, h, kb, nk, sc);
    return values_as_pairs(in.v, p, h, kb, nk, sc);
  }
  static void probabilities(Unit pv, int64_t nk, int64_t rows_p, bool scaled, bool round, Scratch& sc) {
    if (pv == Unit::kBf16Dot) {
      probabilities_pairs(nk, rows_p, scaled, sc);
    } else {
      probabilities_fp32(nk, rows_p, scaled, round, sc);
    }
  }
  // out rows [q0, q0 + rows) of head h = o / l (o as [bq][dp]).
  static void finalize(float* out, const AttentionParams& p, int64_t h, int64_t q0, int64_t rows, Scratch& sc) {
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = 1.0f / sc.l[r];
      float* dst = out + (q0 + r) * p.out_stride + h * p.head_dim;
      for (int64_t c = 0; c < p.head_dim; ++c) dst[c] = sc.o[r * sc.dp + c] * inv;
    }
  }
  static void done(Scratch&) {}
};

// The paths' entry points (attention_avx2.cc; attention_avx512.cc with `dot`: the bfloat16 and int8
// multiplies of AVX512-BF16 and VNNI, without: float32 FMAs for every precision; attention_amx.cc).
void run_avx2(const float* q, const Operands& in, float* out, const AttentionParams& p);
// quantize_row in AVX-512 (attention_avx512.cc), bit for bit.
namespace native {
float quantize_row512(const float* x, int64_t n, int8_t* q);
void run_avx512(const float* q, Operands in, float* out, const AttentionParams& p, bool dot, AttentionWorkspace& ws);
void run_amx(const float* q, Operands in, float* out, const AttentionParams& p, AttentionWorkspace& ws);
}  // namespace native
namespace emulated {
float quantize_row512(const float* x, int64_t n, int8_t* q);
void run_avx512(const float* q, Operands in, float* out, const AttentionParams& p, bool dot, AttentionWorkspace& ws);
void run_amx(const float* q, Operands in, float* out, const AttentionParams& p, AttentionWorkspace& ws);
}  // namespace emulated

}  // namespace qarvd::attn
