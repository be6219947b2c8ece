// The AMX path of attention (AMX-BF16 and AMX-INT8), on the block loop of attention_internal.h with
// the AVX-512 softmax. Every tile is 16 rows x 64 bytes, so one configuration serves all products:
// - scores S^T = K Q^T, 2 x 2 tiles of 16 keys x 16 queries (tmm0-3): keys as the A tiles (tmm4-5,
//   16 rows read in place, 32 bfloat16 or 64 int8 channels a step), the packed queries as the B
//   tiles (tmm6-7: bfloat16 pairs or signed byte quads of 16 queries a row); tdpbf16ps, or tdpbssd
//   (signed by signed: no correction for unsigned queries);
// - outputs O^T += V^T P^T, kept transposed ([channel][query]) so that the probabilities' key pairs
//   (the AVX-512 path's layout, 16 queries a row) are the B tiles as they are: the values go to the A
//   tiles as 16 channels x 16 key pairs, laid out so once per call.
// float32 precision has no AMX form: it takes the AVX-512 kernels. The same source builds against
// SIMDe and the tile emulation of amx_tiles.h (emulated/attention_amx.cc).
#include "simd_build.h"

#include "amx_tiles.h"
#include "attention_avx512.h"

namespace qarvd::attn::QARVD_SIMD_NS {
namespace {

using Tiles = gemm::QARVD_SIMD_NS::Tiles;
using TileConfig = gemm::QARVD_SIMD_NS::TileConfig;

constexpr int64_t kBq = 192;
constexpr int64_t kBk = 64;
constexpr int kTile = 16;   // rows of a tile: keys, channels or key pairs
constexpr int kGroup = 32;  // keys of one step of the output product (16 pairs)

QARVD_TARGET_AMX void configure_tiles(Scratch& sc) {
  if (sc.tiles) return;
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.rows[t] = kTile;
    c.colsb[t] = 64;
  }
  Tiles::configure(c);
  sc.tiles = true;
}

// Values as the A tiles of the output product: for each group of 32 keys (16 pairs) and head, dp
// rows (channels) of 16 words (v[2i][c], v[2i + 1][c]) as bfloat16 (low, high); missing keys zero.
void transposed_value_pairs(const KvView& v, const AttentionParams& p, int64_t dp, AttentionWorkspace& ws) {
  const int64_t d = p.head_dim, heads = p.heads, groups = (p.kv_len + kGroup - 1) / kGroup;
  ws.value_pairs.assign(static_cast<size_t>(groups * heads * dp * 16), 0u);
  parallel_for(groups * heads, 4, [&](int64_t b0, int64_t b1, int) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t g = b / heads, h = b % heads;
      uint32_t* dst = ws.value_pairs.data() + b * dp * 16;
      for (int64_t i = 0; i < 16; ++i) {
        const int64_t t = g * kGroup + 2 * i;
        if (t >= p.kv_len) break;
        const bool second = t + 1 < p.kv_len;
        for (int64_t c = 0; c < d; ++c) {
          const uint32_t lo = bf16_bits(stored(v, t, h * d + c)), hi = second ? bf16_bits(stored(v, t + 1, h * d + c)) : 0u;
          dst[c * 16 + i] = lo | (hi << 16);
        }
      }
    }
  });
}

struct AmxKernels : Avx512Kernels {
  static PathShape shape() { return {kBq, kBk, 32, 32, 32, 32, 64, false}; }

  // Keys as tile rows: in place when whole 32-key groups can be read; the last, partial group of a
  // call is copied with zero rows (so nothing past the keys is read).
  static KeyBlock keys(Unit qk, const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc) {
    KeyBlock b = Avx512Kernels::keys(qk, in, p, h, kb, nk, sc);
    const int64_t nk_p = round_up(nk, kGroup), bytes = qk == Unit::kInt8Dot ? 1 : 2;
    uint8_t* buf = sc.kbuf.data();
    if (b.base != buf && nk_p != nk) {
      for (int64_t j = 0; j < nk; ++j)
        std::memcpy(buf + j * sc.ldk * bytes, static_cast<const uint8_t*>(b.base) + j * b.stride * bytes, static_cast<size_t>(sc.ldk * bytes));
      b.base = buf;
      b.stride = sc.ldk;
    }
    if (b.base == buf) std::memset(buf + nk * sc.ldk * bytes, 0, static_cast<size_t>((nk_p - nk) * sc.ldk * bytes));
    return b;
  }

  static ValueBlock values(Unit, const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc) {
    if (in.v.dtype == KvDtype::kInt8)
      for (int64_t j = 0; j < nk; ++j) sc.vscale[j] = in.v.scale[(kb + j) * in.v.scale_stride + h];
    return {in.vpairs + ((kb / kGroup) * p.heads + h) * in.vpairs_row * 16, p.heads * in.vpairs_row * 16};
  }

  // The AVX-512 pairs [key pair][query], with the pairs of a partial group zeroed.
  static void probabilities(Unit pv, int64_t nk, int64_t rows_p, bool scaled, bool round, Scratch& sc) {
    Avx512Kernels::probabilities(pv, nk, rows_p, scaled, round, sc);
    const int64_t pairs = round_up(nk, 2) / 2, pairs_p = round_up(nk, kGroup) / 2;
    std::fill(sc.ppack.begin() + pairs * sc.bq, sc.ppack.begin() + pairs_p * sc.bq, 0u);
  }

  QARVD_TARGET_AMXBF16 static void scores(Unit qk, const KeyBlock& b, int64_t rows_p, Scratch& sc) {
    configure_tiles(sc);
    const int64_t bq = sc.bq, nk_p = round_up(b.nk, kGroup), bytes = qk == Unit::kInt8Dot ? 1 : 2;
    const int64_t kstride = b.stride * bytes, steps = sc.ldk * bytes / 64;
    const uint8_t* keys = static_cast<const uint8_t*>(b.base);
    float* st = sc.st.data();
    for (int64_t j0 = 0; j0 < nk_p; j0 += kGroup) {
      for (int64_t i0 = 0; i0 < rows_p; i0 += 2 * kTile) {
        Tiles::zero<0>();
        Tiles::zero<1>();
        Tiles::zero<2>();
        Tiles::zero<3>();
        for (int64_t s = 0; s < steps; ++s) {
          Tiles::load<4>(keys + j0 * kstride + s * 64, kstride);
          Tiles::load<5>(keys + (j0 + kTile) * kstride + s * 64, kstride);
          Tiles::load<6>(&sc.qpack[s * kTile * bq + i0], bq * 4);
          Tiles::load<7>(&sc.qpack[s * kTile * bq + i0 + kTile], bq * 4);
          if (qk == Unit::kInt8Dot) {
            Tiles::dpbssd<0, 4, 6>();
            Tiles::dpbssd<1, 4, 7>();
            Tiles::dpbssd<2, 5, 6>();
            Tiles::dpbssd<3, 5, 7>();
          } else {
            Tiles::dpbf16ps<0, 4, 6>();
            Tiles::dpbf16ps<1, 4, 7>();
            Tiles::dpbf16ps<2, 5, 6>();
            Tiles::dpbf16ps<3, 5, 7>();
          }
        }
        Tiles::store<0>(st + j0 * bq + i0, bq * 4);
        Tiles::store<1>(st + j0 * bq + i0 + kTile, bq * 4);
        Tiles::store<2>(st + (j0 + kTile) * bq + i0, bq * 4);
        Tiles::store<3>(st + (j0 + kTile) * bq + i0 + kTile, bq * 4);
      }
    }
    finish_scores(qk, b, rows_p, sc);
  }

  // O^T[channel][query] times each query's alpha.
  QARVD_TARGET_AVX512 static void rescale(int64_t rows_p, Scratch& sc) {
    for (int64_t c = 0; c < sc.dp; ++c) {
      float* row = &sc.o[c * sc.bq];
      for (int64_t i = 0; i < rows_p; i += 16) _mm512_storeu_ps(row + i, _mm512_mul_ps(_mm512_loadu_ps(row + i), _mm512_loadu_ps(&sc.alpha[i])));
    }
  }

  QARVD_TARGET_AMXBF16 static void accumulate(Unit, const ValueBlock& vb, int64_t nk, int64_t rows_p, Scratch& sc) {
    configure_tiles(sc);
    const int64_t bq = sc.bq, groups = round_up(nk, kGroup) / kGroup;
    const uint32_t* v = static_cast<const uint32_t*>(vb.base);
    float* o = sc.o.data();
    for (int64_t c0 = 0; c0 < sc.dp; c0 += 2 * kTile) {
      for (int64_t i0 = 0; i0 < rows_p; i0 += 2 * kTile) {
        Tiles::load<0>(o + c0 * bq + i0, bq * 4);
        Tiles::load<1>(o + c0 * bq + i0 + kTile, bq * 4);
        Tiles::load<2>(o + (c0 + kTile) * bq + i0, bq * 4);
        Tiles::load<3>(o + (c0 + kTile) * bq + i0 + kTile, bq * 4);
        for (int64_t g = 0; g < groups; ++g) {
          Tiles::load<4>(v + g * vb.stride + c0 * 16, 64);
          Tiles::load<5>(v + g * vb.stride + (c0 + kTile) * 16, 64);
          Tiles::load<6>(&sc.ppack[g * kTile * bq + i0], bq * 4);
          Tiles::load<7>(&sc.ppack[g * kTile * bq + i0 + kTile], bq * 4);
          Tiles::dpbf16ps<0, 4, 6>();
          Tiles::dpbf16ps<1, 4, 7>();
          Tiles::dpbf16ps<2, 5, 6>();
          Tiles::dpbf16ps<3, 5, 7>();
        }
        Tiles::store<0>(o + c0 * bq + i0, bq * 4);
        Tiles::store<1>(o + c0 * bq + i0 + kTile, bq * 4);
        Tiles::store<2>(o + (c0 + kTile) * bq + i0, bq * 4);
        Tiles::store<3>(o + (c0 + kTile) * bq + i0 + kTile, bq * 4);
      }
    }
  }

  static void finalize(float* out, const AttentionParams& p, int64_t h, int64_t q0, int64_t rows, Scratch& sc) {
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = 1.0f / sc.l[r];
      float* dst = out + (q0 + r) * p.out_stride + h * p.head_dim;
      for (int64_t c = 0; c < p.head_dim; ++c) dst[c] = sc.o[c * sc.bq + r] * inv;
    }
  }

  QARVD_TARGET_AMX static void done(Scratch& sc) {
    if (sc.tiles) Tiles::release();
    sc.tiles = false;
  }
};

}  // namespace

void run_amx(const float* q, Operands in, float* out, const AttentionParams& p, AttentionWorkspace& ws) {
  if (p.precision == AttentionPrecision::kFp32) return run_avx512(q, in, out, p, true, ws);
  const Unit qk = p.precision == AttentionPrecision::kInt8 ? Unit::kInt8Dot : Unit::kBf16Dot;
  in = prepare_dot_operands(in, p, qk, Unit::kFp32Fma, 0, ws);
  const int64_t dp = round_up(p.head_dim, AmxKernels::shape().dp_multiple);
  transposed_value_pairs(in.v, p, dp, ws);
  in.vpairs = ws.value_pairs.data();
  in.vpairs_row = dp;
  run_blocks<AmxKernels>(q, in, out, p, qk, Unit::kBf16Dot);
}

}  // namespace qarvd::attn::QARVD_SIMD_NS
