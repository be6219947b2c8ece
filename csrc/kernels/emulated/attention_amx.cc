// The emulated build of ../attention_amx.cc: SIMDe for the AVX-512 parts, the plain C++ tile
// emulation of ../amx_tiles.h for AMX (see ../simd_build.h).
#define QARVD_SIMD_EMULATED
#include "../attention_amx.cc"
