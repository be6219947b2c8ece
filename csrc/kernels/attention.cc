// Attention: argument checks, the choice of path, and the scalar path (one query at a time, an exact
// two-pass softmax over its visible keys), which also spells out each precision's arithmetic.
#include "attention.h"

#include <stdexcept>

#include "../common/cpu_features.h"
#include "attention_internal.h"

namespace qarvd {

namespace {

// Beyond its ISA level, the avx512vnni path multiplies bfloat16 pairs (AVX512-BF16) and the amx path
// bfloat16 and int8 tiles (AMX-BF16, AMX-INT8).
bool runs_natively(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kAvx512Vnni: return isa_native(isa) && f.avx512_bf16;
    case Isa::kAmx: return isa_native(isa) && f.amx_bf16 && f.avx512_bf16;
    default: return isa_native(isa);
  }
}

}  // namespace

KernelPath attention_path() {
  // pick_path's rule with the BF16 requirements above: the best path up to the cap that runs
  // natively, or through its emulated build when emulation is on and (or always) it does not.
  const Isa limit = isa_limit();
  const Emulation emulation = isa_emulation();
  const bool emulate = emulation != Emulation::kOff && emulation_compiled() && isa_native(Isa::kAvx2);
  KernelPath best;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx}) {
    if (isa > limit) continue;
    const bool has_emulated = isa >= Isa::kAvx512;
    if (emulate && has_emulated && (emulation == Emulation::kAlways || !runs_natively(isa))) {
      best = {isa, true};
    } else if (runs_natively(isa)) {
      best = {isa, false};
    }
  }
  return best;
}

namespace {

using attn::Int8Keys;

void check_view(const KvView& x, const AttentionParams& p, const char* name) {
  const std::string n = name;
  if (x.dtype != KvDtype::kFp32 && x.dtype != KvDtype::kBf16 && x.dtype != KvDtype::kInt8)
    throw std::range_error("attention: bad dtype of " + n);
  if (x.data == nullptr) throw std::range_error("attention: no data for " + n);
  if (x.stride < p.heads * p.head_dim) throw std::range_error("attention: token stride of " + n + " smaller than heads * head_dim");
  if (x.dtype == KvDtype::kInt8 && (x.scale == nullptr || x.scale_stride < p.heads))
    throw std::range_error("attention: int8 " + n + " needs a scale per token and head");
}

void attention_scalar(const float* q, const KvView& k, const KvView& v, float* out, const AttentionParams& p,
                      const Int8Keys* k8) {
  using namespace attn;
  constexpr int64_t kRows = 16;
  const int64_t d = p.head_dim, blocks = (p.q_len + kRows - 1) / kRows;
  const bool fp32 = p.precision == AttentionPrecision::kFp32, int8 = p.precision == AttentionPrecision::kInt8;
  struct Rows {
    std::vector<float> s, x, acc;
    std::vector<int8_t> xq;
  };
  dynamic_for<Rows>(
      blocks * p.heads,
      [&] { return Rows{std::vector<float>(p.kv_len), std::vector<float>(d), std::vector<float>(d), std::vector<int8_t>(d)}; },
      [&](int64_t task, Rows& sc) {
        const int64_t h = task % p.heads, i0 = (blocks - 1 - task / p.heads) * kRows;
        for (int64_t i = i0; i < std::min(p.q_len, i0 + kRows); ++i) {
          const float* qi = q + i * p.q_stride + h * d;
          // float32 scales the scores, as the SIMD paths' float32 kernels; the others scale q first.
          for (int64_t c = 0; c < d; ++c) sc.x[c] = fp32 ? qi[c] : round_bf16(qi[c] * p.scale);
          float qscale = 1.0f;
          if (int8) {
            for (int64_t c = 0; c < d; ++c) sc.x[c] = qi[c] * p.scale;
            qscale = quantize_row(sc.x.data(), d, sc.xq.data());
          }
          const int64_t n = visible(p, i);
          float mx = kNegInf;
          for (int64_t j = 0; j < n; ++j) {
            float dot = 0;
            if (int8) {
              const int8_t* kj = k8->data + j * k8->stride + h * k8->row;
              int32_t acc = 0;
              for (int64_t c = 0; c < d; ++c) acc += static_cast<int32_t>(sc.xq[c]) * kj[c];
              dot = static_cast<float>(acc) * k8->scale[j * k8->scale_stride + h] * qscale;
            } else {
              const bool round = !fp32 && k.dtype == KvDtype::kFp32;
              for (int64_t c = 0; c < d; ++c) {
                const float kv = stored(k, j, h * d + c);
                dot += sc.x[c] * (round ? round_bf16(kv) : kv);
              }
              if (k.dtype == KvDtype::kInt8) dot *= stored_scale(k, j, h);
            }
            sc.s[j] = fp32 ? dot * p.scale : dot;
            mx = std::max(mx, sc.s[j]);
          }
          float sum = 0;
          for (int64_t j = 0; j < n; ++j) sum += (sc.s[j] = std::exp(sc.s[j] - mx));
          std::fill(sc.acc.begin(), sc.acc.end(), 0.0f);
          for (int64_t j = 0; j < n; ++j) {
            // int8 values: the probability carries the value's scale, the integers are exact.
            float w = sc.s[j] * stored_scale(v, j, h);
            if (!fp32) w = round_bf16(w);
            const bool round = !fp32 && v.dtype == KvDtype::kFp32;
            for (int64_t c = 0; c < d; ++c) {
              const float vv = stored(v, j, h * d + c);
              sc.acc[c] += w * (round ? round_bf16(vv) : vv);
            }
          }
          float* oi = out + i * p.out_stride + h * d;
          for (int64_t c = 0; c < d; ++c) oi[c] = sc.acc[c] / sum;
        }
      });
}

}  // namespace

attn::RowQuantizer attn::path_row_quantizer() {
  const KernelPath path = attention_path();
  if (path.isa < Isa::kAvx512) return quantize_row;
#ifdef QARVD_WITH_SIMDE
  if (path.emulated) return emulated::quantize_row512;
#endif
  return native::quantize_row512;
}

void attention(const float* q, const KvView& k, const KvView& v, float* out, const AttentionParams& p,
               AttentionWorkspace* workspace) {
  if (p.q_len < 0 || p.kv_len < 1 || p.heads < 1 || p.head_dim < 1) throw std::range_error("attention: bad sizes");
  const int64_t row = p.heads * p.head_dim;
  if (p.q_stride < row || p.out_stride < row) throw std::range_error("attention: token stride smaller than heads * head_dim");
  check_view(k, p, "k");
  check_view(v, p, "v");
  if (p.chunk < 0 || p.query_offset < 0) throw std::range_error("attention: bad mask");
  if (p.precision != AttentionPrecision::kFp32 && p.precision != AttentionPrecision::kBf16 &&
      p.precision != AttentionPrecision::kInt8)
    throw std::range_error("attention: bad precision");
  // The SIMD kernels compare key positions in 32-bit lanes; int8 sums of 128 x 127 x head_dim must fit 2^24
  // to be exact in float32 on the FMA paths.
  if (p.kv_len > INT32_MAX) throw std::range_error("attention: more than 2^31 - 1 keys");
  if (p.precision == AttentionPrecision::kInt8 && p.head_dim > 1024) throw std::range_error("attention: int8 precision needs head_dim <= 1024");
  if (p.q_len == 0) return;
  AttentionWorkspace local;
  AttentionWorkspace& ws = workspace ? *workspace : local;
  const KernelPath path = attention_path();
  Int8Keys k8;
  if (p.precision == AttentionPrecision::kInt8) k8 = attn::prepare_int8_keys(k, p, ws, attn::path_row_quantizer());
  const Int8Keys* keys8 = p.precision == AttentionPrecision::kInt8 ? &k8 : nullptr;
  attn::Operands in;
  in.k = k;
  in.v = v;
  in.k8 = keys8;
  switch (path.isa) {
    case Isa::kScalar: attention_scalar(q, k, v, out, p, keys8); return;
    case Isa::kAvx2: attn::run_avx2(q, in, out, p); return;
    case Isa::kAvx512:
    case Isa::kAvx512Vnni: {
      const bool dot = path.isa == Isa::kAvx512Vnni;
#ifdef QARVD_WITH_SIMDE
      if (path.emulated) return attn::emulated::run_avx512(q, in, out, p, dot, ws);
#endif
      attn::native::run_avx512(q, in, out, p, dot, ws);
      return;
    }
    case Isa::kAmx:
#ifdef QARVD_WITH_SIMDE
      if (path.emulated) return attn::emulated::run_amx(q, in, out, p, ws);
#endif
      attn::native::run_amx(q, in, out, p, ws);
      return;
    default: attention_scalar(q, k, v, out, p, keys8); return;
  }
}

}  // namespace qarvd
