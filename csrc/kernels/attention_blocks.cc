// The parts of the attention block loop that every SIMD path shares: the int8 keys of a call, the
// packing of a task's queries, and the scalar conversions of key and value blocks to the format of
// the path's multiply unit.
#include <stdexcept>

#include "attention_internal.h"

namespace qarvd::attn {

namespace {

// A token's keys as floats (int8: the integers), `width` of them.
void token_row(const KvView& k, int64_t t, int64_t width, float* dst) {
  if (k.dtype == KvDtype::kFp32) {
    const float* src = static_cast<const float*>(k.data) + t * k.stride;
    std::copy(src, src + width, dst);
  } else if (k.dtype == KvDtype::kBf16) {
    const uint16_t* src = static_cast<const uint16_t*>(k.data) + t * k.stride;
    for (int64_t c = 0; c < width; ++c) dst[c] = bf16_value(src[c]);
  } else {
    const int8_t* src = static_cast<const int8_t*>(k.data) + t * k.stride;
    for (int64_t c = 0; c < width; ++c) dst[c] = src[c];
  }
}

}  // namespace

Int8Keys prepare_int8_keys(const KvView& k, const AttentionParams& p, AttentionWorkspace& ws, RowQuantizer quantize) {
  const int64_t d = p.head_dim, heads = p.heads, n = p.kv_len, width = heads * d;
  Int8Keys out;
  ws.key_sum.resize(static_cast<size_t>(n * heads));
  if (k.dtype == KvDtype::kInt8 && d % 4 == 0) {
    out.data = static_cast<const int8_t*>(k.data);
    out.stride = k.stride;
    out.row = d;
    out.scale = k.scale;
    out.scale_stride = k.scale_stride;
  } else {
    // Smoothing: the mean of each channel over the keys, summed in double per group of tokens and
    // the groups in order, so that the result does not depend on the thread count. Stored int8 keys
    // (head_dim not a multiple of 4) are already smoothed: they are only re-laid out.
    constexpr int64_t kGroup = 256;
    const int64_t groups = (n + kGroup - 1) / kGroup;
    ws.mean.assign(static_cast<size_t>(width), 0.0f);
    if (k.dtype != KvDtype::kInt8) {
      ws.partial.assign(static_cast<size_t>(groups * width), 0.0);
      parallel_for(groups, 1, [&](int64_t g0, int64_t g1, int) {
        std::vector<float> row(static_cast<size_t>(width));
        for (int64_t g = g0; g < g1; ++g) {
          double* acc = ws.partial.data() + g * width;
          for (int64_t t = g * kGroup; t < std::min(n, (g + 1) * kGroup); ++t) {
            token_row(k, t, width, row.data());
            for (int64_t c = 0; c < width; ++c) acc[c] += row[c];
          }
        }
      });
      for (int64_t c = 0; c < width; ++c) {
        double s = 0;
        for (int64_t g = 0; g < groups; ++g) s += ws.partial[g * width + c];
        ws.mean[c] = static_cast<float>(s / static_cast<double>(n));
      }
    }
    const int64_t row = round_up(d, 4);
    ws.keys.resize(static_cast<size_t>(n * heads * row));
    ws.key_scale.resize(static_cast<size_t>(n * heads));
    parallel_for(n, 64, [&](int64_t t0, int64_t t1, int) {
      std::vector<float> x(static_cast<size_t>(width));
      const float* mean = ws.mean.data();
      for (int64_t t = t0; t < t1; ++t) {
        if (k.dtype == KvDtype::kFp32) {
          const float* src = static_cast<const float*>(k.data) + t * k.stride;
          for (int64_t c = 0; c < width; ++c) x[c] = src[c] - mean[c];
        } else {
          token_row(k, t, width, x.data());
          if (k.dtype == KvDtype::kBf16)
            for (int64_t c = 0; c < width; ++c) x[c] -= mean[c];
        }
        for (int64_t h = 0; h < heads; ++h) {
          int8_t* dst = ws.keys.data() + (t * heads + h) * row;
          std::fill(dst + d, dst + row, static_cast<int8_t>(0));
          if (k.dtype == KvDtype::kInt8) {
            for (int64_t c = 0; c < d; ++c) dst[c] = static_cast<int8_t>(x[h * d + c]);
            ws.key_scale[t * heads + h] = stored_scale(k, t, h);
          } else {
            ws.key_scale[t * heads + h] = quantize(x.data() + h * d, d, dst);
          }
        }
      }
    });
    out.data = ws.keys.data();
    out.stride = heads * row;
    out.row = row;
    out.scale = ws.key_scale.data();
    out.scale_stride = heads;
  }
  parallel_for(n, 256, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        const int8_t* r = out.data + t * out.stride + h * out.row;
        int32_t s = 0;
        for (int64_t c = 0; c < d; ++c) s += r[c];
        ws.key_sum[t * heads + h] = s;
      }
  });
  out.sum = ws.key_sum.data();
  return out;
}

Scratch make_scratch(const PathShape& s, const AttentionParams& p, Unit qk, Unit pv) {
  Scratch sc;
  const int64_t d = p.head_dim;
  sc.bq = s.bq;
  sc.bk = s.bk;
  sc.d = d;
  sc.dp = round_up(d, s.dp_multiple);
  if (qk == Unit::kFp32Fma) {
    sc.depth = d;
    sc.qt.assign(static_cast<size_t>(d * s.bq), 0.0f);
    sc.ldk = d;
    sc.kbuf.resize(static_cast<size_t>(s.bk * d * 4));
  } else if (qk == Unit::kBf16Dot) {
    sc.depth = round_up(d, s.bf16_multiple) / 2;
    sc.ldk = 2 * sc.depth;
    sc.kbuf.resize(static_cast<size_t>(s.bk * sc.ldk * 2));
  } else {
    sc.depth = round_up(d, s.int8_multiple) / 4;
    sc.ldk = 4 * sc.depth;
    sc.kbuf.resize(static_cast<size_t>(s.bk * sc.ldk));
  }
  if (qk != Unit::kFp32Fma) sc.qpack.assign(static_cast<size_t>(sc.depth * s.bq), 0u);
  sc.qscale.assign(static_cast<size_t>(s.bq), 0.0f);
  sc.st.assign(static_cast<size_t>(s.bk * s.bq), 0.0f);
  if (pv == Unit::kBf16Dot) {
    sc.ppack.assign(static_cast<size_t>(s.bk / 2 * s.bq), 0u);
    sc.ldv = sc.dp;
    sc.vbuf.assign(static_cast<size_t>(s.bk / 2 * sc.ldv * 4), 0);
  } else {
    sc.ldv = sc.dp;
    sc.vbuf.assign(static_cast<size_t>(s.bk * sc.ldv * 4), 0);
  }
  sc.o.assign(static_cast<size_t>(s.bq * sc.dp), 0.0f);
  sc.m.resize(static_cast<size_t>(s.bq));
  sc.l.resize(static_cast<size_t>(s.bq));
  sc.alpha.resize(static_cast<size_t>(s.bq));
  sc.lim.resize(static_cast<size_t>(s.bq));
  sc.kscale.resize(static_cast<size_t>(s.bk));
  sc.vscale.resize(static_cast<size_t>(s.bk));
  sc.ksum.resize(static_cast<size_t>(s.bk));
  sc.zero.assign(static_cast<size_t>(round_up(d, 64) * 4), 0);
  sc.int8_unsigned = s.int8_unsigned_queries;
  sc.xrow.resize(static_cast<size_t>(d));
  sc.xrow8.resize(static_cast<size_t>(d));
  return sc;
}

void pack_queries(const float* q, const AttentionParams& p, int64_t h, int64_t q0, int64_t rows, int64_t rows_p, Unit qk,
                  Scratch& sc, RowQuantizer quantize) {
  const int64_t d = p.head_dim, bq = sc.bq;
  const bool int8 = p.precision == AttentionPrecision::kInt8, bf16 = p.precision == AttentionPrecision::kBf16;
  sc.qscaled = int8;
  std::vector<float>& x = sc.xrow;
  std::vector<int8_t>& xq = sc.xrow8;
  for (int64_t r = 0; r < rows_p; ++r) {
    sc.lim[r] = static_cast<int32_t>(visible(p, q0 + std::min(r, rows - 1)));
    if (r < rows) {
      const float* src = q + (q0 + r) * p.q_stride + h * d;
      for (int64_t c = 0; c < d; ++c) x[c] = src[c] * p.scale;
      if (int8) {
        sc.qscale[r] = quantize(x.data(), d, xq.data());
        for (int64_t c = 0; c < d; ++c) x[c] = xq[c];
      } else if (bf16) {
        for (int64_t c = 0; c < d; ++c) x[c] = round_bf16(x[c]);
      }
    } else {
      std::fill(x.begin(), x.end(), 0.0f);
      std::fill(xq.begin(), xq.end(), static_cast<int8_t>(0));
      sc.qscale[r] = 0.0f;
    }
    if (qk == Unit::kFp32Fma) {
      for (int64_t c = 0; c < d; ++c) sc.qt[c * bq + r] = x[c];
    } else if (qk == Unit::kBf16Dot) {
      for (int64_t t = 0; t < sc.depth; ++t) {
        const uint32_t lo = 2 * t < d ? bf16_bits(x[2 * t]) : 0u, hi = 2 * t + 1 < d ? bf16_bits(x[2 * t + 1]) : 0u;
        sc.qpack[t * bq + r] = lo | (hi << 16);
      }
    } else {
      // vpdpbusd multiplies unsigned bytes by signed ones: queries go as q + 128 (padding as 0, so
      // that it adds nothing), the keys' sums take the 128 back out.
      const int offset = r < rows && sc.qscaled ? 128 : 0;
      for (int64_t t = 0; t < sc.depth; ++t) {
        uint32_t w = 0;
        for (int e = 0; e < 4; ++e) {
          const int64_t c = 4 * t + e;
          const uint32_t b = c < d ? static_cast<uint8_t>(xq[c] + (sc.int8_unsigned ? offset : 0)) : 0u;
          w |= b << (8 * e);
        }
        sc.qpack[t * bq + r] = w;
      }
    }
  }
}

namespace {

// Copies (or converts) n rows of the stored keys or values into float32 rows `ld` apart.
void rows_as_fp32(const KvView& x, int64_t h, int64_t d, int64_t first, int64_t n, bool round, float* dst, int64_t ld) {
  for (int64_t j = 0; j < n; ++j)
    for (int64_t c = 0; c < d; ++c) {
      const float s = stored(x, first + j, h * d + c);
      dst[j * ld + c] = round ? round_bf16(s) : s;
    }
}

void gather_scales(const KvView& x, int64_t h, int64_t first, int64_t n, float* dst) {
  for (int64_t j = 0; j < n; ++j) dst[j] = stored_scale(x, first + j, h);
}

}  // namespace

KeyBlock keys_as_fp32(const KvView& k, const Int8Keys* k8, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk,
                      Scratch& sc) {
  const int64_t d = p.head_dim;
  KeyBlock b;
  b.nk = nk;
  b.zero = sc.zero.data();
  float* buf = reinterpret_cast<float*>(sc.kbuf.data());
  if (p.precision == AttentionPrecision::kInt8) {
    for (int64_t j = 0; j < nk; ++j) {
      const int8_t* r = k8->data + (kb + j) * k8->stride + h * k8->row;
      for (int64_t c = 0; c < d; ++c) buf[j * sc.ldk + c] = r[c];
      sc.kscale[j] = k8->scale[(kb + j) * k8->scale_stride + h];
    }
    b.base = buf;
    b.stride = sc.ldk;
    b.scale = sc.kscale.data();
    return b;
  }
  if (k.dtype == KvDtype::kFp32 && p.precision == AttentionPrecision::kFp32) {
    b.base = static_cast<const float*>(k.data) + kb * k.stride + h * d;
    b.stride = k.stride;
    return b;
  }
  // bfloat16 keys widen exactly; int8 keys as their integers, the scales per key on the scores.
  rows_as_fp32(k, h, d, kb, nk, k.dtype == KvDtype::kFp32 && p.precision == AttentionPrecision::kBf16, buf, sc.ldk);
  b.base = buf;
  b.stride = sc.ldk;
  if (k.dtype == KvDtype::kInt8) {
    gather_scales(k, h, kb, nk, sc.kscale.data());
    b.scale = sc.kscale.data();
  }
  return b;
}

KeyBlock keys_as_bf16(const KvView& k, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc) {
  const int64_t d = p.head_dim;
  KeyBlock b;
  b.nk = nk;
  b.zero = sc.zero.data();
  if (k.dtype == KvDtype::kBf16 && sc.ldk == d) {
    b.base = static_cast<const uint16_t*>(k.data) + kb * k.stride + h * d;
    b.stride = k.stride;
    return b;
  }
  uint16_t* buf = reinterpret_cast<uint16_t*>(sc.kbuf.data());
  for (int64_t j = 0; j < nk; ++j) {
    for (int64_t c = 0; c < d; ++c) buf[j * sc.ldk + c] = bf16_bits(stored(k, kb + j, h * d + c));
    std::fill(buf + j * sc.ldk + d, buf + (j + 1) * sc.ldk, static_cast<uint16_t>(0));
  }
  b.base = buf;
  b.stride = sc.ldk;
  if (k.dtype == KvDtype::kInt8) {
    gather_scales(k, h, kb, nk, sc.kscale.data());
    b.scale = sc.kscale.data();
  }
  return b;
}

KeyBlock keys_as_int8(const Int8Keys& k8, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc) {
  KeyBlock b;
  b.nk = nk;
  b.zero = sc.zero.data();
  for (int64_t j = 0; j < nk; ++j) {
    sc.kscale[j] = k8.scale[(kb + j) * k8.scale_stride + h];
    sc.ksum[j] = k8.sum[(kb + j) * p.heads + h];
  }
  b.scale = sc.kscale.data();
  b.sum = sc.ksum.data();
  if (k8.row == sc.ldk) {
    b.base = k8.data + kb * k8.stride + h * k8.row;
    b.stride = k8.stride;
    return b;
  }
  int8_t* buf = reinterpret_cast<int8_t*>(sc.kbuf.data());
  for (int64_t j = 0; j < nk; ++j) {
    const int8_t* r = k8.data + (kb + j) * k8.stride + h * k8.row;
    std::copy(r, r + std::min(k8.row, sc.ldk), buf + j * sc.ldk);
    std::fill(buf + j * sc.ldk + std::min(k8.row, sc.ldk), buf + (j + 1) * sc.ldk, static_cast<int8_t>(0));
  }
  b.base = buf;
  b.stride = sc.ldk;
  return b;
}

ValueBlock values_as_fp32(const KvView& v, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc) {
  const int64_t d = p.head_dim;
  if (v.dtype == KvDtype::kFp32 && p.precision == AttentionPrecision::kFp32) {
    return {static_cast<const float*>(v.data) + kb * v.stride + h * d, v.stride};
  }
  float* buf = reinterpret_cast<float*>(sc.vbuf.data());
  rows_as_fp32(v, h, d, kb, nk, v.dtype == KvDtype::kFp32, buf, sc.ldv);
  if (v.dtype == KvDtype::kInt8) gather_scales(v, h, kb, nk, sc.vscale.data());
  return {buf, sc.ldv};
}

ValueBlock values_as_pairs(const KvView& v, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc) {
  const int64_t d = p.head_dim, pairs = round_up(nk, 2) / 2;
  uint32_t* buf = reinterpret_cast<uint32_t*>(sc.vbuf.data());
  for (int64_t r = 0; r < pairs; ++r) {
    for (int64_t c = 0; c < d; ++c) {
      const uint32_t lo = bf16_bits(stored(v, kb + 2 * r, h * d + c));
      const uint32_t hi = 2 * r + 1 < nk ? bf16_bits(stored(v, kb + 2 * r + 1, h * d + c)) : 0u;
      buf[r * sc.ldv + c] = lo | (hi << 16);
    }
    std::fill(buf + r * sc.ldv + d, buf + (r + 1) * sc.ldv, 0u);
  }
  if (v.dtype == KvDtype::kInt8) gather_scales(v, h, kb, nk, sc.vscale.data());
  return {buf, sc.ldv};
}

ValueBlock prepared_pairs(const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk, Scratch& sc) {
  if (in.v.dtype == KvDtype::kInt8) gather_scales(in.v, h, kb, nk, sc.vscale.data());
  return {in.vpairs + (kb / 2 * p.heads + h) * in.vpairs_row, p.heads * in.vpairs_row};
}

void probabilities_fp32(int64_t nk, int64_t rows_p, bool scaled, bool round, Scratch& sc) {
  if (!scaled && !round) return;
  for (int64_t j = 0; j < nk; ++j) {
    float* row = sc.st.data() + j * sc.bq;
    const float s = scaled ? sc.vscale[j] : 1.0f;
    for (int64_t i = 0; i < rows_p; ++i) row[i] = round ? round_bf16(row[i] * s) : row[i] * s;
  }
}

void probabilities_pairs(int64_t nk, int64_t rows_p, bool scaled, Scratch& sc) {
  const int64_t pairs = round_up(nk, 2) / 2;
  for (int64_t r = 0; r < pairs; ++r) {
    const float* a = sc.st.data() + 2 * r * sc.bq;
    const float* b = a + sc.bq;
    const float sa = scaled ? sc.vscale[2 * r] : 1.0f;
    const float sb = 2 * r + 1 < nk && scaled ? sc.vscale[2 * r + 1] : 1.0f;
    for (int64_t i = 0; i < rows_p; ++i) {
      const uint32_t lo = bf16_bits(a[i] * sa), hi = 2 * r + 1 < nk ? bf16_bits(b[i] * sb) : 0u;
      sc.ppack[r * sc.bq + i] = lo | (hi << 16);
    }
  }
}

}  // namespace qarvd::attn
