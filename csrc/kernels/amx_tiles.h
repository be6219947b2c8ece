// The AMX tile operations the integer GEMM uses (configure, load, store, zero, tdpbssd), with two
// implementations behind one interface: the intrinsics (native build), and a plain C++ emulation of
// their exact semantics (the emulated build, see simd_build.h), so that packing, blocking and tails
// of the AMX kernel are tested on machines without AMX. SIMDe has no AMX.
//
// Semantics (Intel SDM, AMX): eight tile registers of up to 16 rows x 64 bytes, shaped by the
// configuration (rows and bytes per row of each tile). A load fills the configured rows and bytes
// and zeroes the rest; tdpbssd C += A B treats A as [M][K] signed bytes (K = 4 x A's dwords per row)
// and B as [K/4][N] dwords of four signed bytes, adding the four products of each dword pair into
// C's int32 element, with wrap-around. Shapes must agree, or the instruction faults: the emulation
// checks them and throws instead, so a kernel bug fails a test rather than crashing a user's AMX machine.
//
// Attention (attention_amx.cc) adds tdpbf16ps (AMX-BF16): C += A B with A [M][K] bfloat16 (K = 2 x A's
// dwords per row) and B [K/2][N] dwords of two bfloat16, each product exact and added into C's float32
// element in order (pair element 0, then 1), input denormals read as zero and tiny results flushed
// to zero, round to nearest even; and loads of the accumulator tiles.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "simd_build.h"

namespace qarvd::gemm::QARVD_SIMD_NS {

// The 64-byte tile configuration (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row of tiles 0..7
  uint8_t rows[16] = {};    // rows of tiles 0..7
};
static_assert(sizeof(TileConfig) == 64, "the tile configuration is 64 bytes");

#ifndef QARVD_SIMD_EMULATED

// GCC's tile intrinsics paste the tile number into the instruction text, so each (tile, operation)
// the kernels use is spelled out once below.
struct Tiles {
  QARVD_TARGET_AMX static void configure(const TileConfig& c) { _tile_loadconfig(&c); }
  QARVD_TARGET_AMX static void release() { _tile_release(); }
  template <int T>
  static void zero();
  template <int T>
  static void load(const void* base, int64_t stride);
  template <int T>
  static void store(void* base, int64_t stride);
  template <int C, int A, int B>
  static void dpbssd();
  template <int C, int A, int B>
  static void dpbf16ps();
};

#define QARVD_TILE_ACC(T)                                                                          \
  template <>                                                                                      \
  QARVD_TARGET_AMX inline void Tiles::zero<T>() { _tile_zero(T); }                                 \
  template <>                                                                                      \
  QARVD_TARGET_AMX inline void Tiles::store<T>(void* base, int64_t stride) { _tile_stored(T, base, stride); }
#define QARVD_TILE_SRC(T) \
  template <>             \
  QARVD_TARGET_AMX inline void Tiles::load<T>(const void* base, int64_t stride) { _tile_loadd(T, base, stride); }
#define QARVD_TILE_DP(C, A, B) \
  template <>                  \
  QARVD_TARGET_AMX inline void Tiles::dpbssd<C, A, B>() { _tile_dpbssd(C, A, B); }
QARVD_TILE_ACC(0)
QARVD_TILE_ACC(1)
QARVD_TILE_ACC(2)
QARVD_TILE_ACC(3)
QARVD_TILE_SRC(4)
QARVD_TILE_SRC(5)
QARVD_TILE_SRC(6)
QARVD_TILE_SRC(7)
QARVD_TILE_DP(0, 4, 6)
QARVD_TILE_DP(1, 4, 7)
QARVD_TILE_DP(2, 5, 6)
QARVD_TILE_DP(3, 5, 7)
#define QARVD_TILE_ACC_LOAD(T) \
  template <>                  \
  QARVD_TARGET_AMX inline void Tiles::load<T>(const void* base, int64_t stride) { _tile_loadd(T, base, stride); }
#define QARVD_TILE_DPBF16(C, A, B) \
  template <>                      \
  QARVD_TARGET_AMXBF16 inline void Tiles::dpbf16ps<C, A, B>() { _tile_dpbf16ps(C, A, B); }
QARVD_TILE_ACC_LOAD(0)
QARVD_TILE_ACC_LOAD(1)
QARVD_TILE_ACC_LOAD(2)
QARVD_TILE_ACC_LOAD(3)
QARVD_TILE_DPBF16(0, 4, 6)
QARVD_TILE_DPBF16(1, 4, 7)
QARVD_TILE_DPBF16(2, 5, 6)
QARVD_TILE_DPBF16(3, 5, 7)
#undef QARVD_TILE_ACC
#undef QARVD_TILE_SRC
#undef QARVD_TILE_DP
#undef QARVD_TILE_ACC_LOAD
#undef QARVD_TILE_DPBF16

#else

struct Tiles {
  struct State {
    TileConfig config;
    bool configured = false;
    alignas(64) uint8_t data[8][16][64];
  };
  static State& state() {
    thread_local State s;
    return s;
  }
  static void check(bool ok, const char* what) {
    if (!ok) throw std::logic_error(std::string("native: AMX emulation: ") + what);
  }

  static void configure(const TileConfig& c) {
    check(c.palette == 1, "palette must be 1");
    for (int t = 0; t < 8; ++t) check(c.rows[t] <= 16 && c.colsb[t] <= 64 && c.colsb[t] % 4 == 0, "bad tile shape");
    State& s = state();
    s.config = c;
    s.configured = true;
    std::memset(s.data, 0, sizeof(s.data));
  }
  static void release() { state().configured = false; }
  template <int T>
  static void zero() {
    check(state().configured, "tilezero before ldtilecfg");
    std::memset(state().data[T], 0, sizeof(state().data[T]));
  }
  template <int T>
  static void load(const void* base, int64_t stride) {
    State& s = state();
    check(s.configured, "tileloadd before ldtilecfg");
    std::memset(s.data[T], 0, sizeof(s.data[T]));
    for (int r = 0; r < s.config.rows[T]; ++r)
      std::memcpy(s.data[T][r], static_cast<const uint8_t*>(base) + r * stride, s.config.colsb[T]);
  }
  template <int T>
  static void store(void* base, int64_t stride) {
    State& s = state();
    check(s.configured, "tilestored before ldtilecfg");
    for (int r = 0; r < s.config.rows[T]; ++r)
      std::memcpy(static_cast<uint8_t*>(base) + r * stride, s.data[T][r], s.config.colsb[T]);
  }
  template <int C, int A, int B>
  static void dpbssd() {
    State& s = state();
    const TileConfig& c = s.config;
    check(s.configured, "tdpbssd before ldtilecfg");
    const int m = c.rows[C], n = c.colsb[C] / 4, kd = c.colsb[A] / 4;
    check(c.rows[A] == m && c.rows[B] == kd && c.colsb[B] == c.colsb[C], "tdpbssd shapes do not agree");
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        int32_t acc;
        std::memcpy(&acc, &s.data[C][i][4 * j], 4);
        uint32_t sum = static_cast<uint32_t>(acc);
        for (int t = 0; t < kd; ++t)
          for (int e = 0; e < 4; ++e) {
            const int32_t a = static_cast<int8_t>(s.data[A][i][4 * t + e]);
            const int32_t b = static_cast<int8_t>(s.data[B][t][4 * j + e]);
            sum += static_cast<uint32_t>(a * b);
          }
        acc = static_cast<int32_t>(sum);
        std::memcpy(&s.data[C][i][4 * j], &acc, 4);
      }
      // The part of a row past the configured columns is zeroed.
      std::memset(&s.data[C][i][4 * n], 0, 64 - 4 * n);
    }
    // And so are the rows past the configured ones.
    for (int i = m; i < 16; ++i) std::memset(s.data[C][i], 0, 64);
  }
  static float bf16_daz(const uint8_t* p) {
    uint16_t b;
    std::memcpy(&b, p, 2);
    const uint32_t u = (b & 0x7f80u) == 0 ? (static_cast<uint32_t>(b) & 0x8000u) << 16 : static_cast<uint32_t>(b) << 16;
    float x;
    std::memcpy(&x, &u, 4);
    return x;
  }
  template <int C, int A, int B>
  static void dpbf16ps() {
    State& s = state();
    const TileConfig& c = s.config;
    check(s.configured, "tdpbf16ps before ldtilecfg");
    const int m = c.rows[C], n = c.colsb[C] / 4, kd = c.colsb[A] / 4;
    check(c.rows[A] == m && c.rows[B] == kd && c.colsb[B] == c.colsb[C], "tdpbf16ps shapes do not agree");
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        float acc;
        std::memcpy(&acc, &s.data[C][i][4 * j], 4);
        for (int t = 0; t < kd; ++t)
          for (int e = 0; e < 2; ++e) {
            acc += bf16_daz(&s.data[A][i][4 * t + 2 * e]) * bf16_daz(&s.data[B][t][4 * j + 2 * e]);
            if (std::fabs(acc) < 1.17549435e-38f) acc = std::copysign(0.0f, acc);
          }
        std::memcpy(&s.data[C][i][4 * j], &acc, 4);
      }
      std::memset(&s.data[C][i][4 * n], 0, 64 - 4 * n);
    }
  }
};

#endif

}  // namespace qarvd::gemm::QARVD_SIMD_NS
