// The emulated build of ../gemm_f32_avx512.cc (see ../simd_build.h).
#define QARVD_SIMD_EMULATED
#include "../gemm_f32_avx512.cc"
