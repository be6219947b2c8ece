// Bindings of GPTQ (csrc/kernels/gptq). Arguments arrive validated by lib/calibration/gptq.ts;
// lengths are re-checked here because a mismatch would read or write out of bounds.
#include <string>
#include <vector>

#include "../common/cpu_features.h"
#include "../kernels/gptq/gptq.h"
#include "util.h"

namespace {

using qarvd::napi::boolean;
using qarvd::napi::dispatch;
using qarvd::napi::integer;
using qarvd::napi::number;
using qarvd::napi::require;
using qarvd::napi::typed_array;


bool use_avx2() { return qarvd::active_isa() >= qarvd::Isa::kAvx2; }

// (w, rows, cols, h, order, groupOf, groupDtype, groupSymmetric, groupMode, damp, blockSize, rtnLoss,
//  outQ, scale, zeroPoint, outStats[4], async)
Napi::Value Run(const Napi::CallbackInfo& info) {
  auto w = typed_array<float>(info, 0, "w");
  int64_t rows = integer(info, 1, "rows"), cols = integer(info, 2, "cols");
  auto h = typed_array<double>(info, 3, "h");
  auto order = typed_array<int32_t>(info, 4, "order");
  auto group_of = typed_array<int32_t>(info, 5, "groupOf");
  auto dtype = typed_array<int32_t>(info, 6, "groupDtype");
  auto sym = typed_array<uint8_t>(info, 7, "groupSymmetric");
  auto mode = typed_array<int32_t>(info, 8, "groupMode");
  double damp = number(info, 9, "damp");
  int64_t block = integer(info, 10, "blockSize");
  bool rtn = boolean(info, 11, "rtnLoss");
  auto q = typed_array<uint8_t>(info, 12, "outQ", qarvd::napi::Access::kOut);
  auto scale = typed_array<float>(info, 13, "scale", qarvd::napi::Access::kOut);
  auto zp = typed_array<int32_t>(info, 14, "zeroPoint", qarvd::napi::Access::kOut);
  auto stats = typed_array<double>(info, 15, "outStats", qarvd::napi::Access::kOut);
  require(info, rows >= 1 && cols >= 1 && cols <= 65536, "rows and cols must be positive (cols <= 65536)");
  const int64_t g = static_cast<int64_t>(dtype.length);
  require(info, static_cast<int64_t>(w.length) == rows * cols, "w length must equal rows * cols");
  require(info, static_cast<int64_t>(h.length) == cols * cols, "h length must equal cols * cols");
  require(info, static_cast<int64_t>(order.length) == cols && static_cast<int64_t>(group_of.length) == cols,
          "order and groupOf must have cols elements");
  require(info, g >= 1 && static_cast<int64_t>(sym.length) == g && static_cast<int64_t>(mode.length) == g,
          "group arrays must have the same positive length");
  require(info, static_cast<int64_t>(q.length) == rows * cols, "outQ length must equal rows * cols");
  require(info, static_cast<int64_t>(scale.length) == rows * g && static_cast<int64_t>(zp.length) == rows * g,
          "scale and zeroPoint must have rows * groups elements");
  require(info, stats.length >= 4, "outStats needs four elements");
  auto groups = std::make_shared<std::vector<qarvd::gptq::Group>>(g);
  for (int64_t i = 0; i < g; ++i) {
    require(info, dtype.data[i] >= 4 && dtype.data[i] <= 7, "groupDtype must hold quantized dtype codes");
    require(info, mode.data[i] >= 0 && mode.data[i] <= 2, "groupMode must hold 0, 1 or 2");
    (*groups)[i] = {static_cast<qarvd::QType>(dtype.data[i]), sym.data[i] != 0,
                    static_cast<qarvd::gptq::GroupMode>(mode.data[i])};
  }
  qarvd::gptq::Problem p{w.data,        rows,           cols,        h.data, order.data, group_of.data,
                         groups->data(), g,              damp,        block,  rtn,        use_avx2()};
  qarvd::gptq::Output out{q.data, scale.data, zp.data};
  return dispatch(info, boolean(info, 16, "async"), [=] {
    (void)groups;  // keeps the group table alive on the worker
    qarvd::gptq::Stats s = qarvd::gptq::run(p, out);
    stats.data[0] = s.loss_rtn;
    stats.data[1] = s.loss;
    stats.data[2] = s.lambda;
    stats.data[3] = static_cast<double>(s.dead);
  });
}

// (h, cols, order, damp, outR, outStats[2], async)
Napi::Value HessianFactor(const Napi::CallbackInfo& info) {
  auto h = typed_array<double>(info, 0, "h");
  int64_t cols = integer(info, 1, "cols");
  auto order = typed_array<int32_t>(info, 2, "order");
  double damp = number(info, 3, "damp");
  auto u = typed_array<double>(info, 4, "outR", qarvd::napi::Access::kOut);
  auto stats = typed_array<double>(info, 5, "outStats", qarvd::napi::Access::kOut);
  require(info, cols >= 1 && cols <= 65536, "cols must be in [1, 65536]");
  require(info, static_cast<int64_t>(h.length) == cols * cols && static_cast<int64_t>(u.length) == cols * cols,
          "h and outR must have cols * cols elements");
  require(info, static_cast<int64_t>(order.length) == cols, "order must have cols elements");
  require(info, stats.length >= 2, "outStats needs two elements");
  bool avx2 = use_avx2();
  return dispatch(info, boolean(info, 6, "async"), [=] {
    qarvd::gptq::Stats s = qarvd::gptq::hessian_factor(h.data, cols, order.data, damp, u.data, avx2);
    stats.data[0] = s.lambda;
    stats.data[1] = static_cast<double>(s.dead);
  });
}

// (h, cols, tol, outIssue[3]): kind, i, j of the first problem (kind 0: none). Synchronous.
Napi::Value CheckHessian(const Napi::CallbackInfo& info) {
  auto h = typed_array<double>(info, 0, "h");
  int64_t cols = integer(info, 1, "cols");
  double tol = number(info, 2, "tol");
  auto out = typed_array<double>(info, 3, "outIssue", qarvd::napi::Access::kOut);
  require(info, cols >= 1 && static_cast<int64_t>(h.length) == cols * cols, "h length must equal cols * cols");
  require(info, out.length >= 3, "outIssue needs three elements");
  qarvd::gptq::HessianIssue issue = qarvd::gptq::check_hessian(h.data, cols, tol);
  out.data[0] = issue.kind;
  out.data[1] = static_cast<double>(issue.i);
  out.data[2] = static_cast<double>(issue.j);
  return info.Env().Undefined();
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("gptqCheckHessian", Napi::Function::New(env, qarvd::napi::guarded<CheckHessian>, "gptqCheckHessian"));
  exports.Set("gptqRun", Napi::Function::New(env, qarvd::napi::binding<Run, 16>, "gptqRun"));
  exports.Set("gptqHessianFactor", Napi::Function::New(env, qarvd::napi::binding<HessianFactor, 6>, "gptqHessianFactor"));
}

}  // namespace

QARVD_EXPORTS(Export);
