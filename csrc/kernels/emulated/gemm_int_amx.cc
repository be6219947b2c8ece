// The emulated build of ../gemm_int_amx.cc: SIMDe for the AVX-512 parts, the plain C++ tile
// emulation of ../amx_tiles.h for AMX (see ../simd_build.h).
#define QARVD_SIMD_EMULATED
#include "../gemm_int_amx.cc"
