// Quantized linear layers on the CPU: W8A8, W4A8 and the fused dual-scale (outlier) layer are one
// kernel family. A layer is a list of K segments, each with its own weight bit-width (8 or 4),
// weight quantizer (per output channel, or per group of `group` inputs) and activation quantizer:
//
//   y[m,n] = bias[n] + sum_s sa[m,s] * sum_g sw[n,s,g] * acc[m,n,s,g]
//   acc[m,n,s,g] = sum_{k in group g of segment s} (xq[m,k] - za[m,s]) * (wq[n,k] - zw[n,s,g])
//
// computed exactly in int32 and combined in one fp32 epilogue per output tile (not one GEMM per
// segment plus an add). Input columns may be permuted first (perm[j] = original column of position
// j), so that the outlier columns of a dual-scale layer form the first segment; the permutation, the
// activation quantization (static, or dynamic per token and per segment) and the packing of X are one
// pass over each row.
//
// Exactness. Every path computes the same int32 sums exactly, so outputs are bit-identical across
// paths:
// - scalar and AVX2 (no VNNI): 8-bit weights use vpmaddwd on int16 operands (activations stored as
//   xq - za in [-255, 255], weights sign-extended from int8): products and pair sums fit int32,
//   nothing saturates. 4-bit weights use vpmaddubsw with the weights as unsigned nibbles u in
//   [0, 15] and the activations as signed bytes: a pair sum is at most 2 * 15 * 128 = 3840, so two of
//   them add in int16 without saturation.
// - VNNI (vpdpbusd, AVX-512 and AVX-VNNI): unsigned activation bytes (the signed bytes + 128) times
//   signed weight bytes (int8, or the nibbles u), four products summed straight into int32.
// - AMX (tdpbssd): signed activation bytes times signed weight bytes, into int32 tiles.
// Where the activations are bytes, the zero points are folded in afterwards through per-group
// activation row sums and weight column sums (corrected = acc - zw * rowsum - zc * wsum). K is
// limited to kMaxIntK so no int32 sum can overflow.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "gemm_common.h"
#include "gemm_f32.h"
#include "quant_math.h"

namespace qarvd::gemm {

constexpr int kIntNr = 16;               // output channels of a packed weight panel
constexpr int64_t kMaxIntK = 32768;      // 255 * 255 * 32768 < 2^31: no int32 accumulator overflows
constexpr int64_t kGroupMultiple = 16;   // group sizes are multiples of this (whole kernel steps)

// How one segment's activations are quantized. Dynamic: per row (token), the range of the row's
// finite values in the segment gives scale and zero point through choose_qparams (NaN then
// quantizes to the zero point and infinities saturate, as with any scale).
struct ActQuant {
  bool dynamic = true;
  QType dtype = QType::kInt8;  // kInt8 or kUint8
  bool symmetric = false;      // dynamic only
  float scale = 1.0f;          // static only
  int32_t zero_point = 0;      // static only
};

// Where a segment's quantized weights come from.
struct SegmentSpec {
  int64_t k0 = 0, len = 0;  // columns [k0, k0 + len) of the permuted input
  int bits = 8;             // 8 (int8 weights) or 4 (int4 weights)
  int64_t group = 0;        // group size along K (multiple of kGroupMultiple), 0: per output channel
  ActQuant act;
};

// The two weight layouts (gemm_int_kernels.h): pairs of k for the scalar and AVX2 paths, quads of k
// (64-byte rows of 16 channels x 4 bytes, the AMX tile row) for the VNNI and AMX paths. A layer is
// packed in the layout of the path in use when it is built; the other is made on first use.
enum class WeightLayout { kPairs = 0, kQuads = 1 };

struct WeightPanels {
  int64_t step = 0;     // K per kernel step (pairs: 2 for 8-bit, 8 for 4-bit; quads: 64, 32 or 16)
  int64_t len_pad = 0;  // the segment's K, its last group rounded up to whole steps
  int64_t panel_bytes = 0;
  AlignedBuffer<uint8_t> bytes;  // panel p at p * panel_bytes
};

struct PackedSegment {
  SegmentSpec spec;
  int64_t group = 0;    // effective group size (len when per channel; at least 1)
  int64_t ngroups = 0;  // ceil(len / group), at least 1
  // Every partial sum of the corrected accumulators is an integer below 2^24 in magnitude, so the
  // epilogue may apply the zero-point corrections in float, exactly (small groups), for activations
  // as int16 differences (pairs) or as bytes (4-bit pairs, quads).
  bool float_exact16 = false, float_exact8 = false;
  bool no_wzero = false;  // every stored zero point is 0 (8-bit symmetric weights): no row-sum term
  WeightPanels layouts[2];  // indexed by WeightLayout
  // [panel][group][kIntNr], zero for the padding channels past N.
  AlignedBuffer<float> wscale;
  AlignedBuffer<int32_t> wzero;  // the stored weights' zero point: zw (8-bit) or zw + 8 (4-bit nibbles)
  AlignedBuffer<int32_t> wsum;   // sum over the group of the stored weights, minus n_g * wzero

  const WeightPanels& panels(WeightLayout l) const { return layouts[static_cast<int>(l)]; }
  int64_t group_len(int64_t g) const { return std::min(group, spec.len - g * group); }
  int64_t group_offset_k(int64_t g) const { return g * group; }  // a multiple of every layout's step
};

struct PackedInt {
  int64_t n = 0, k = 0;
  std::vector<int32_t> perm;  // empty: identity
  // The permutation as runs of consecutive columns (src, dst, len), when it has few of them (a
  // dual-scale layer's: its outlier columns, then the others in order): rows are then permuted by
  // copies, not gathered element by element. Empty: gather.
  struct Run {
    int32_t src, dst, len;
  };
  std::vector<Run> runs;
  std::vector<PackedSegment> segs;
  WeightLayout primary = WeightLayout::kPairs;  // built with each segment; the other on first use

  // The other weight layout, and the dequantized weights in the original column order packed for
  // the FP32 GEMM (the emulated forward), are built on first use.
  mutable std::once_flag other_layout_once;
  mutable std::once_flag emulated_once;
  mutable std::unique_ptr<PackedF32> emulated;

  int64_t total_groups() const;
  size_t weight_bytes() const;  // packed integer weights (every layout built) plus scales, zero points and sums
  // Makes sure every segment has weights in layout l (thread-safe; a no-op once built).
  void ensure_layout(WeightLayout l) const;
};

// Starts a layer of n outputs and k inputs; perm (k entries, a permutation of 0..k-1) may be null.
// Its weights are packed in the layout of the path in use now (int_path()).
std::unique_ptr<PackedInt> make_int_layer(int64_t n, int64_t k, const int32_t* perm);

// The path forward_int takes now (for backends()).
KernelPath int_path();

// The int8 operations per second of the best native multiply instruction this CPU has (AMX
// tdpbssd, else AVX-512 vpdpbusd) on all threads, measured for about `seconds`, and its name; 0
// and "none" when the CPU has neither.
double int_peak_ops_per_second(double seconds, const char** isa);

// Adds the next segment (segments must tile [0, k) in order). The quantized weights come from:
// - quantize_float: w is the float weight [n, k] in the ORIGINAL column order; columns perm[k0..)
//   are quantized per channel/group, from their range (choose_qparams with the given dtype and
//   symmetry) when scale_in is null, else with scale_in / zero_in ([n][ngroups]);
// - quantized: q [n][len] (already in segment order) with scale_in / zero_in.
// The scales and zero points used are written to scale_out / zero_out ([n][ngroups]) when not null.
void add_segment_float(PackedInt& layer, const SegmentSpec& spec, const float* w, bool symmetric,
                       const float* scale_in, const int32_t* zero_in, float* scale_out, int32_t* zero_out);
void add_segment_quantized(PackedInt& layer, const SegmentSpec& spec, const int8_t* q, const float* scale,
                           const int32_t* zero);

// Reads a segment back: q [n][len], scale and zero [n][ngroups].
void export_segment(const PackedInt& layer, int seg, int8_t* q, float* scale, int32_t* zero);

// y[m, n] = the layer applied to x[m, k] (+ bias). When acc is not null, the int32 accumulators
// acc[m][n][G] (G = total_groups, segment-major) are written instead of y. act_scale / act_zero
// ([m][segments]) receive the activation quantization parameters used, when not null.
// The epilogue (if any) runs on each finished block of y.
void forward_int(const PackedInt& layer, const float* x, int64_t m, const float* bias, float* y, int32_t* acc,
                 float* act_scale, int32_t* act_zero, const Epilogue* post = nullptr);

// Several quantized layers over the same input x (q, k and v): one parallel job; where the layers
// quantize their activations alike (same permutation, segments and activation quantizers) x is
// quantized and packed once for all. Each layer's result is what forward_int would give.
struct IntJob {
  const PackedInt* layer;
  const float* bias;
  float* y;
  const Epilogue* post;
};
void forward_int_multi(const float* x, int64_t m, const IntJob* jobs, int count);

// The same layer emulated in floating point: activations fake-quantized with exactly the parameters
// forward_int uses, weights dequantized, then the FP32 GEMM.
void forward_int_emulated(const PackedInt& layer, const float* x, int64_t m, const float* bias, float* y);

}  // namespace qarvd::gemm
