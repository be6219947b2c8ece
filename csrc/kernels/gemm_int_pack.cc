// Building quantized layers: weight quantization (the exact semantics of quant_math.h) and packing
// into the panel layouts of gemm_int_kernels.h, once per layer; and reading the weights back.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "../common/parallel.h"
#include "gemm_int_kernels.h"

namespace qarvd::gemm {
namespace {

QType weight_qtype(int bits) { return bits == 8 ? QType::kInt8 : QType::kInt4; }

// Fills the layout fields of a segment from its spec and checks that it continues the layer.
PackedSegment& begin_segment(PackedInt& layer, const SegmentSpec& spec) {
  const int64_t next_k0 = layer.segs.empty() ? 0 : layer.segs.back().spec.k0 + layer.segs.back().spec.len;
  if (spec.k0 != next_k0 || spec.len <= 0 || spec.k0 + spec.len > layer.k) {
    throw std::out_of_range("native: segment [" + std::to_string(spec.k0) + ", " +
                            std::to_string(spec.k0 + spec.len) + ") does not continue the layer's columns");
  }
  if (spec.bits != 8 && spec.bits != 4) throw std::out_of_range("native: segment bits must be 8 or 4");
  if (spec.group < 0 || spec.group % kGroupMultiple != 0) {
    throw std::out_of_range("native: group size must be 0 or a positive multiple of 16");
  }
  if (spec.act.dtype != QType::kInt8 && spec.act.dtype != QType::kUint8) {
    throw std::out_of_range("native: activation dtype must be int8 or uint8");
  }
  if (!spec.act.dynamic) {
    const QRange r = qrange(spec.act.dtype);
    if (!(spec.act.scale > 0.0f) || !std::isfinite(spec.act.scale) || spec.act.zero_point < r.qmin ||
        spec.act.zero_point > r.qmax) {
      throw std::out_of_range("native: bad static activation scale or zero point");
    }
  }
  layer.segs.emplace_back();
  PackedSegment& s = layer.segs.back();
  s.spec = spec;
  s.group = spec.group > 0 ? std::min(spec.group, spec.len) : spec.len;
  s.ngroups = ceil_div(spec.len, s.group);
  // |acc|, |wzero * row_sum| and |zc * wsum| are each at most amax * wmax * group; three of them add.
  // int16 pairs: |a| <= 255, |w - zw| <= 255 (8-bit only). Bytes: |a|, |zc| <= 255, |w| and |w - zw|
  // <= 255 (8-bit) or 15 (4-bit).
  const double g = static_cast<double>(s.group), wmax = spec.bits == 8 ? 255 : 15;
  s.float_exact16 = 3.0 * 255 * 255 * g <= 16777216.0;
  s.float_exact8 = 3.0 * 255 * wmax * g <= 16777216.0;
  const int64_t panels = ceil_div(layer.n, kIntNr);
  s.wscale.resize(static_cast<size_t>(panels * s.ngroups * kIntNr));
  s.wzero.resize(s.wscale.size());
  s.wsum.resize(s.wscale.size());
  return s;
}

// K per step of a layout: the kernels' steps (pairs: 2 and 8; quads: 4 and 8).
int64_t layout_step(const PackedSegment& s, WeightLayout l) {
  if (l == WeightLayout::kPairs) return s.spec.bits == 8 ? 2 : 8;
  return s.spec.bits == 8 ? 4 : 8;
}

void plan_layout(const PackedInt& layer, PackedSegment& s, WeightLayout l) {
  WeightPanels& w = s.layouts[static_cast<int>(l)];
  w.step = layout_step(s, l);
  w.len_pad = (s.ngroups - 1) * s.group + round_up(s.group_len(s.ngroups - 1), w.step);
  w.panel_bytes = s.spec.bits == 8 ? w.len_pad * kIntNr : w.len_pad * kIntNr / 2;
  w.bytes.resize(static_cast<size_t>(ceil_div(layer.n, kIntNr) * w.panel_bytes));
}

// Where weight (channel c of its panel, k) lives in a layout: its byte and, for 4-bit weights, the
// nibble (0 low, 1 high).
struct Slot {
  int64_t byte;
  int nibble;
};
Slot slot(WeightLayout l, int bits, int c, int64_t kk) {
  if (l == WeightLayout::kPairs) {
    if (bits == 8) return {(kk / 2) * 32 + c * 2 + kk % 2, 0};
    return {(kk / 8) * 64 + ((kk % 8) / 4) * 32 + (c % 8) * 4 + kk % 4, c < 8 ? 0 : 1};
  }
  if (bits == 8) return {(kk / 4) * 64 + c * 4 + kk % 4, 0};
  return {(kk / 8) * 64 + c * 4 + kk % 4, static_cast<int>((kk % 8) / 4)};
}

void write_weights(PackedSegment& s, WeightLayout l, int64_t n, const int8_t* q) {
  WeightPanels& w = s.layouts[static_cast<int>(l)];
  const int64_t len = s.spec.len;
  parallel_for(ceil_div(n, kIntNr), 8, [&](int64_t begin, int64_t end, int) {
    for (int64_t p = begin; p < end; ++p) {
      uint8_t* panel = w.bytes.data() + p * w.panel_bytes;
      for (int c = 0; c < kIntNr && p * kIntNr + c < n; ++c) {
        const int8_t* qr = q + (p * kIntNr + c) * len;
        for (int64_t kk = 0; kk < len; ++kk) {
          const Slot at = slot(l, s.spec.bits, c, kk);
          if (s.spec.bits == 8) {
            panel[at.byte] = static_cast<uint8_t>(qr[kk]);
          } else {
            const uint8_t u = static_cast<uint8_t>(qr[kk] + 8);
            uint8_t& byte = panel[at.byte];
            byte = at.nibble == 0 ? static_cast<uint8_t>((byte & 0xf0) | u) : static_cast<uint8_t>((byte & 0x0f) | (u << 4));
          }
        }
      }
    }
  });
}

void read_weights(const PackedSegment& s, WeightLayout l, int64_t n, int8_t* q) {
  const WeightPanels& w = s.panels(l);
  const int64_t len = s.spec.len;
  for (int64_t row = 0; row < n; ++row) {
    const uint8_t* panel = w.bytes.data() + (row / kIntNr) * w.panel_bytes;
    const int c = static_cast<int>(row % kIntNr);
    for (int64_t kk = 0; kk < len; ++kk) {
      const Slot at = slot(l, s.spec.bits, c, kk);
      const uint8_t byte = panel[at.byte];
      q[row * len + kk] = s.spec.bits == 8 ? static_cast<int8_t>(byte)
                                           : static_cast<int8_t>((at.nibble == 0 ? byte & 15 : byte >> 4) - 8);
    }
  }
}

// Packs q [n][len] with scale/zero [n][ngroups] into s (whose layout is set).
void pack_segment(PackedInt& layer, PackedSegment& s, const int8_t* q, const float* scale, const int32_t* zero) {
  const int64_t n = layer.n, len = s.spec.len, ng = s.ngroups;
  const QRange r = qrange(weight_qtype(s.spec.bits));
  for (int64_t i = 0; i < n * ng; ++i) {
    if (!(scale[i] > 0.0f) || !std::isfinite(scale[i]) || zero[i] < r.qmin || zero[i] > r.qmax) {
      throw std::out_of_range("native: weight scale or zero point out of range at " + std::to_string(i));
    }
  }
  if (s.spec.bits == 4) {
    for (int64_t i = 0; i < n * len; ++i) {
      if (q[i] < r.qmin || q[i] > r.qmax) {
        throw std::out_of_range("native: int4 weight value out of range at " + std::to_string(i));
      }
    }
  }
  s.no_wzero = true;
  for (int64_t row = 0; row < n; ++row) {
    const int64_t p = row / kIntNr;
    const int c = static_cast<int>(row % kIntNr);
    const int8_t* qr = q + row * len;
    for (int64_t g = 0; g < ng; ++g) {
      const size_t meta = static_cast<size_t>((p * ng + g) * kIntNr + c);
      const int32_t wz = s.spec.bits == 8 ? zero[row * ng + g] : zero[row * ng + g] + 8;
      int32_t sum = 0;
      for (int64_t kk = g * s.group; kk < g * s.group + s.group_len(g); ++kk) sum += s.spec.bits == 8 ? qr[kk] : qr[kk] + 8;
      s.wscale[meta] = scale[row * ng + g];
      s.wzero[meta] = wz;
      s.no_wzero = s.no_wzero && wz == 0;
      s.wsum[meta] = sum - static_cast<int32_t>(s.group_len(g)) * wz;
    }
  }
  plan_layout(layer, s, layer.primary);
  write_weights(s, layer.primary, n, q);
}

void quantize_and_pack(PackedInt& layer, PackedSegment& s, const float* w, bool symmetric, const float* scale_in,
                       const int32_t* zero_in, float* scale_out, int32_t* zero_out) {
  const SegmentSpec& spec = s.spec;
  const int64_t n = layer.n, k = layer.k, len = spec.len, ng = s.ngroups;
  const QType qt = weight_qtype(spec.bits);
  const QRange r = qrange(qt);
  std::vector<int8_t> q(static_cast<size_t>(n * len));
  std::vector<float> scale(static_cast<size_t>(n * ng));
  std::vector<int32_t> zero(static_cast<size_t>(n * ng));
  auto column = [&](int64_t j) { return layer.perm.empty() ? spec.k0 + j : layer.perm[spec.k0 + j]; };
  parallel_for(n, 16, [&](int64_t begin, int64_t end, int) {
    for (int64_t row = begin; row < end; ++row) {
      const float* wr = w + row * k;
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t j0 = g * s.group, j1 = j0 + s.group_len(g);
        QParams qp;
        if (scale_in) {
          qp = {scale_in[row * ng + g], zero_in[row * ng + g]};
        } else {
          float lo = wr[column(j0)], hi = lo;
          for (int64_t j = j0; j < j1; ++j) {
            const float v = wr[column(j)];
            if (!std::isfinite(v)) throw std::out_of_range("native: weight values must be finite");
            lo = std::min(lo, v);
            hi = std::max(hi, v);
          }
          qp = choose_qparams(lo, hi, qt, symmetric);
        }
        scale[row * ng + g] = qp.scale;
        zero[row * ng + g] = qp.zero_point;
        for (int64_t j = j0; j < j1; ++j)
          q[row * len + j] = static_cast<int8_t>(quantize_value(wr[column(j)], qp.scale, qp.zero_point, r));
      }
    }
  });
  pack_segment(layer, s, q.data(), scale.data(), zero.data());
  if (scale_out) std::copy(scale.begin(), scale.end(), scale_out);
  if (zero_out) std::copy(zero.begin(), zero.end(), zero_out);
}

}  // namespace

int64_t PackedInt::total_groups() const {
  int64_t g = 0;
  for (const auto& s : segs) g += s.ngroups;
  return g;
}

size_t PackedInt::weight_bytes() const {
  size_t bytes = 0;
  for (const auto& s : segs) {
    bytes += s.layouts[0].bytes.bytes() + s.layouts[1].bytes.bytes() + s.wscale.bytes() + s.wzero.bytes() + s.wsum.bytes();
  }
  return bytes + perm.size() * sizeof(int32_t);
}

void PackedInt::ensure_layout(WeightLayout l) const {
  if (l == primary) return;
  std::call_once(other_layout_once, [&] {
    auto& self = const_cast<PackedInt&>(*this);
    for (PackedSegment& s : self.segs) {
      std::vector<int8_t> q(static_cast<size_t>(n * s.spec.len));
      read_weights(s, primary, n, q.data());
      plan_layout(self, s, l);
      write_weights(s, l, n, q.data());
    }
  });
}

std::unique_ptr<PackedInt> make_int_layer(int64_t n, int64_t k, const int32_t* perm) {
  if (n <= 0 || k <= 0 || k > kMaxIntK) throw std::out_of_range("native: bad quantized layer shape");
  auto layer = std::make_unique<PackedInt>();
  layer->n = n;
  layer->k = k;
  layer->primary = current_int_path().layout;
  if (perm) {
    std::vector<bool> seen(static_cast<size_t>(k), false);
    for (int64_t j = 0; j < k; ++j) {
      if (perm[j] < 0 || perm[j] >= k || seen[perm[j]]) throw std::out_of_range("native: perm is not a permutation");
      seen[perm[j]] = true;
    }
    bool identity = true;
    for (int64_t j = 0; j < k; ++j) identity = identity && perm[j] == j;
    if (!identity) {
      layer->perm.assign(perm, perm + k);
      std::vector<PackedInt::Run> runs;
      for (int64_t j = 0; j < k; ++j) {
        if (!runs.empty() && runs.back().src + runs.back().len == perm[j]) {
          ++runs.back().len;
        } else {
          runs.push_back({perm[j], static_cast<int32_t>(j), 1});
        }
      }
      // Copies pay off while runs are long on average; a scattered permutation is gathered.
      if (static_cast<int64_t>(runs.size()) * 16 <= k) layer->runs = std::move(runs);
    }
  }
  return layer;
}

void add_segment_float(PackedInt& layer, const SegmentSpec& spec, const float* w, bool symmetric,
                       const float* scale_in, const int32_t* zero_in, float* scale_out, int32_t* zero_out) {
  PackedSegment& s = begin_segment(layer, spec);
  try {
    quantize_and_pack(layer, s, w, symmetric, scale_in, zero_in, scale_out, zero_out);
  } catch (...) {
    layer.segs.pop_back();
    throw;
  }
}

void add_segment_quantized(PackedInt& layer, const SegmentSpec& spec, const int8_t* q, const float* scale,
                           const int32_t* zero) {
  PackedSegment& s = begin_segment(layer, spec);
  try {
    pack_segment(layer, s, q, scale, zero);
  } catch (...) {
    layer.segs.pop_back();
    throw;
  }
}

void export_segment(const PackedInt& layer, int seg, int8_t* q, float* scale, int32_t* zero) {
  if (seg < 0 || seg >= static_cast<int>(layer.segs.size())) throw std::out_of_range("native: no such segment");
  const PackedSegment& s = layer.segs[seg];
  const int64_t n = layer.n, ng = s.ngroups;
  for (int64_t row = 0; row < n; ++row) {
    const int64_t p = row / kIntNr;
    const int c = static_cast<int>(row % kIntNr);
    for (int64_t g = 0; g < ng; ++g) {
      const size_t meta = static_cast<size_t>((p * ng + g) * kIntNr + c);
      scale[row * ng + g] = s.wscale[meta];
      zero[row * ng + g] = s.spec.bits == 8 ? s.wzero[meta] : s.wzero[meta] - 8;
    }
  }
  read_weights(s, layer.primary, n, q);
}

}  // namespace qarvd::gemm
