// The emulated build of ../gemm_int_vnni.cc (see ../simd_build.h).
#define QARVD_SIMD_EMULATED
#include "../gemm_int_vnni.cc"
