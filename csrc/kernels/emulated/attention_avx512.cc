// The emulated build of ../attention_avx512.cc (see ../simd_build.h).
#define QARVD_SIMD_EMULATED
#include "../attention_avx512.cc"
