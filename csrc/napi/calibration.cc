// Bindings of the calibration kernels (csrc/kernels/calibration). Arguments arrive validated by
// lib/calibration; lengths are re-checked here because a mismatch would read or write out of bounds.
#include <string>

#include "../kernels/calibration/clip_search.h"
#include "../kernels/calibration/gram.h"
#include "../kernels/calibration/histogram.h"
#include "../kernels/calibration/reduce.h"
#include "util.h"

namespace {

using qarvd::napi::boolean;
using qarvd::napi::dispatch;
using qarvd::napi::integer;
using qarvd::napi::number;
using qarvd::napi::require;
using qarvd::napi::typed_array;


int64_t dim(const Napi::CallbackInfo& info, size_t index, const char* name) {
  int64_t v = integer(info, index, name);
  require(info, v >= 0, std::string(name) + " must be non-negative");
  return v;
}

qarvd::QType qtype(const Napi::CallbackInfo& info, size_t index) {
  int64_t code = integer(info, index, "dtype");
  require(info, code >= 4 && code <= 7, "dtype must be a quantized dtype code");
  return static_cast<qarvd::QType>(code);
}

// Optional float64 row weights: an empty array means none.
const double* row_weights(const Napi::CallbackInfo& info, size_t index, int64_t rows) {
  auto w = typed_array<double>(info, index, "rowWeights");
  if (w.length == 0) return nullptr;
  require(info, static_cast<int64_t>(w.length) == rows, "rowWeights length must equal rows");
  return w.data;
}

// (x, outer, n, inner, outMin, outMax, outNan[1], async)
Napi::Value MinMax(const Napi::CallbackInfo& info) {
  auto x = typed_array<float>(info, 0, "x");
  int64_t outer = dim(info, 1, "outer"), n = dim(info, 2, "n"), inner = dim(info, 3, "inner");
  auto mn = typed_array<float>(info, 4, "outMin", qarvd::napi::Access::kOut);
  auto mx = typed_array<float>(info, 5, "outMax", qarvd::napi::Access::kOut);
  auto nan = typed_array<double>(info, 6, "outNan", qarvd::napi::Access::kOut);
  require(info, static_cast<int64_t>(x.length) == outer * n * inner, "x length must equal outer * n * inner");
  require(info, static_cast<int64_t>(mn.length) == n && static_cast<int64_t>(mx.length) == n,
          "outMin/outMax length must equal n");
  require(info, nan.length >= 1, "outNan needs one element");
  return dispatch(info, boolean(info, 7, "async"), [=] {
    nan.data[0] = static_cast<double>(qarvd::calib::min_max(x.data, outer, n, inner, mn.data, mx.data));
  });
}

// (w, rows, cols, out, async)
Napi::Value ColumnNorms(const Napi::CallbackInfo& info) {
  auto w = typed_array<float>(info, 0, "w");
  int64_t rows = dim(info, 1, "rows"), cols = dim(info, 2, "cols");
  auto out = typed_array<double>(info, 3, "out", qarvd::napi::Access::kOut);
  require(info, static_cast<int64_t>(w.length) == rows * cols, "w length must equal rows * cols");
  require(info, static_cast<int64_t>(out.length) == cols, "out length must equal cols");
  return dispatch(info, boolean(info, 4, "async"),
                  [=] { qarvd::calib::column_norms(w.data, rows, cols, out.data); });
}

// (x, rows, cols, rowWeights, weight, lo, hi, bins, counts, outNan[1], async)
Napi::Value HistogramAdd(const Napi::CallbackInfo& info) {
  auto x = typed_array<float>(info, 0, "x");
  int64_t rows = dim(info, 1, "rows"), cols = dim(info, 2, "cols");
  const double* rw = row_weights(info, 3, rows);
  double weight = number(info, 4, "weight"), lo = number(info, 5, "lo"), hi = number(info, 6, "hi");
  int64_t bins = dim(info, 7, "bins");
  auto counts = typed_array<double>(info, 8, "counts", qarvd::napi::Access::kOut);
  auto nan = typed_array<double>(info, 9, "outNan", qarvd::napi::Access::kOut);
  require(info, static_cast<int64_t>(x.length) == rows * cols, "x length must equal rows * cols");
  require(info, bins >= 1 && static_cast<int64_t>(counts.length) == bins, "counts length must equal bins >= 1");
  require(info, hi > lo, "hi must exceed lo");
  require(info, nan.length >= 1, "outNan needs one element");
  return dispatch(info, boolean(info, 10, "async"), [=] {
    nan.data[0] = qarvd::calib::histogram_add(x.data, rows, cols, rw, weight, lo, hi, bins, counts.data);
  });
}

// (x, rows, cols, rowWeights, candLo, candHi, dtype, symmetric, outSse, outTotals[2], async)
Napi::Value FakeQuantSse(const Napi::CallbackInfo& info) {
  auto x = typed_array<float>(info, 0, "x");
  int64_t rows = dim(info, 1, "rows"), cols = dim(info, 2, "cols");
  const double* rw = row_weights(info, 3, rows);
  auto lo = typed_array<float>(info, 4, "candLo");
  auto hi = typed_array<float>(info, 5, "candHi");
  qarvd::QType dtype = qtype(info, 6);
  bool symmetric = boolean(info, 7, "symmetric");
  auto sse = typed_array<double>(info, 8, "outSse", qarvd::napi::Access::kOut);
  auto totals = typed_array<double>(info, 9, "outTotals", qarvd::napi::Access::kOut);
  require(info, static_cast<int64_t>(x.length) == rows * cols, "x length must equal rows * cols");
  require(info, lo.length == hi.length && sse.length == lo.length, "candLo, candHi and outSse lengths must match");
  require(info, totals.length >= 2, "outTotals needs two elements");
  return dispatch(info, boolean(info, 10, "async"), [=] {
    auto t = qarvd::calib::fake_quant_sse(x.data, rows, cols, rw, lo.data, hi.data, static_cast<int64_t>(lo.length),
                                          dtype, symmetric, sse.data);
    totals.data[0] = t.weight_sum;
    totals.data[1] = static_cast<double>(t.nan);
  });
}

// (w, rows, cols, percentiles, dtype, symmetric, outScale, outZeroPoint, outLo, outHi, outChoice, outMse, async)
Napi::Value ChannelClipSearch(const Napi::CallbackInfo& info) {
  auto w = typed_array<float>(info, 0, "w");
  int64_t rows = dim(info, 1, "rows"), cols = dim(info, 2, "cols");
  auto pct = typed_array<double>(info, 3, "percentiles");
  qarvd::QType dtype = qtype(info, 4);
  bool symmetric = boolean(info, 5, "symmetric");
  auto scale = typed_array<float>(info, 6, "outScale", qarvd::napi::Access::kOut);
  auto zp = typed_array<int32_t>(info, 7, "outZeroPoint", qarvd::napi::Access::kOut);
  auto lo = typed_array<float>(info, 8, "outLo", qarvd::napi::Access::kOut);
  auto hi = typed_array<float>(info, 9, "outHi", qarvd::napi::Access::kOut);
  auto choice = typed_array<int32_t>(info, 10, "outChoice", qarvd::napi::Access::kOut);
  auto mse = typed_array<double>(info, 11, "outMse", qarvd::napi::Access::kOut);
  int64_t c = static_cast<int64_t>(pct.length);
  require(info, static_cast<int64_t>(w.length) == rows * cols, "w length must equal rows * cols");
  require(info, cols >= 1 && c >= 1, "needs at least one column and one percentile");
  for (int64_t i = 0; i < c; ++i) require(info, pct.data[i] >= 0.5 && pct.data[i] <= 1, "percentiles must lie in [0.5, 1]");
  auto is_rows = [&](size_t n) { return static_cast<int64_t>(n) == rows; };
  require(info, is_rows(scale.length) && is_rows(zp.length) && is_rows(lo.length) && is_rows(hi.length) &&
                    is_rows(choice.length),
          "per-row outputs must have rows elements");
  require(info, static_cast<int64_t>(mse.length) == rows * c, "outMse length must equal rows * percentiles");
  return dispatch(info, boolean(info, 12, "async"), [=] {
    qarvd::calib::channel_clip_search(w.data, rows, cols, pct.data, c, dtype, symmetric, scale.data, zp.data, lo.data,
                                      hi.data, choice.data, mse.data);
  });
}

// (x, rows, cols, rowWeights, weight, h, async)
Napi::Value GramAccumulate(const Napi::CallbackInfo& info) {
  auto x = typed_array<float>(info, 0, "x");
  int64_t rows = dim(info, 1, "rows"), cols = dim(info, 2, "cols");
  const double* rw = row_weights(info, 3, rows);
  double weight = number(info, 4, "weight");
  auto h = typed_array<double>(info, 5, "h", qarvd::napi::Access::kOut);
  require(info, static_cast<int64_t>(x.length) == rows * cols, "x length must equal rows * cols");
  require(info, static_cast<int64_t>(h.length) == cols * cols, "h length must equal cols * cols");
  return dispatch(info, boolean(info, 6, "async"),
                  [=] { qarvd::calib::gram_accumulate(x.data, rows, cols, rw, weight, h.data); });
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("calibMinMax", Napi::Function::New(env, qarvd::napi::binding<MinMax, 7>, "calibMinMax"));
  exports.Set("calibColumnNorms", Napi::Function::New(env, qarvd::napi::binding<ColumnNorms, 4>, "calibColumnNorms"));
  exports.Set("calibHistogramAdd", Napi::Function::New(env, qarvd::napi::binding<HistogramAdd, 10>, "calibHistogramAdd"));
  exports.Set("calibFakeQuantSse", Napi::Function::New(env, qarvd::napi::binding<FakeQuantSse, 10>, "calibFakeQuantSse"));
  exports.Set("calibChannelClipSearch", Napi::Function::New(env, qarvd::napi::binding<ChannelClipSearch, 12>, "calibChannelClipSearch"));
  exports.Set("calibGramAccumulate", Napi::Function::New(env, qarvd::napi::binding<GramAccumulate, 6>, "calibGramAccumulate"));
}

}  // namespace

QARVD_EXPORTS(Export);
