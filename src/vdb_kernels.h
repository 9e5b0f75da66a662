/*
** Distance kernels.
**
** One kernel table per instruction-set level. The SIMD levels are built
** from a single source (vdb_kernels_simd.c) compiled once per level with
** different target flags; simde maps the same 512-bit intrinsics onto
** AVX-512, onto pairs of AVX2 registers, onto SSE2 or NEON. The scalar
** level is a plain C reference used by the tests and the benchmarks.
**
** Contracts shared by every kernel:
**   - float inputs need only 4-byte alignment, int8 and bit inputs none
**     (vdbVectorFromBlob copies misaligned float BLOBs);
**   - n is the element count (bytes for bit vectors) and may be any value
**     from 0 up; no kernel reads past a[n-1] or b[n-1];
**   - integer kernels accumulate exactly (no overflow for any n that fits
**     in memory), float kernels accumulate in float32 lanes.
*/
#ifndef VDB_KERNELS_H
#define VDB_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef enum VdbKernelLevel {
  VDB_KLEVEL_SCALAR = 0,   /* reference C loops, never auto-vectorised */
  VDB_KLEVEL_BASE,         /* simde on the baseline ISA (SSE2 / NEON) */
  VDB_KLEVEL_AVX2,         /* AVX2 + FMA + POPCNT */
  VDB_KLEVEL_AVX512,       /* AVX-512 F/BW/DQ/VL */
  VDB_KLEVEL_AVX512VNNI,   /* the same and VNNI (vpdpbusd: u8 x s8 dot products) */
  VDB_KLEVEL_COUNT
} VdbKernelLevel;

/* Sums needed for cosine distance, gathered in one pass. */
typedef struct VdbCosParts { double dot, normA, normB; } VdbCosParts;

typedef struct VdbKernels {
  const char *zName;
  float (*f32L2Sq)(const float *a, const float *b, size_t n);
  float (*f32Dot)(const float *a, const float *b, size_t n);
  float (*f32L1)(const float *a, const float *b, size_t n);
  VdbCosParts (*f32Cos)(const float *a, const float *b, size_t n);
  int64_t (*i8L2Sq)(const int8_t *a, const int8_t *b, size_t n);
  int64_t (*i8Dot)(const int8_t *a, const int8_t *b, size_t n);
  int64_t (*i8L1)(const int8_t *a, const int8_t *b, size_t n);
  VdbCosParts (*i8Cos)(const int8_t *a, const int8_t *b, size_t n);
  uint64_t (*bitHamming)(const uint8_t *a, const uint8_t *b, size_t nByte);
  /* Sum of a[i]*b[i] with a unsigned and b signed bytes, one VNNI
  ** instruction per 64 pairs. */
  int64_t (*u8i8Dot)(const uint8_t *a, const int8_t *b, size_t n);
  /* The same sum for a[i] <= 127: a query's 7-bit levels against a
  ** vector's int8 code, the walk's distance (vdb_quant.c). Without VNNI,
  ** vpmaddubsw multiplies 32 byte pairs and adds each two into an int16 in
  ** one instruction, which a full u8 side could saturate (2*255*128 >
  ** 32767) but a 7-bit side cannot (2*127*128). The levels with VNNI, and
  ** the 128-bit level (SSE2 has no vpmaddubsw), use u8i8Dot. */
  int64_t (*u7i8Dot)(const uint8_t *a, const int8_t *b, size_t n);
  /* The int8 code's grid (vdb_quant.c). f32Range: the smallest and the
  ** largest of x[0..n-1], n >= 1, into *pLo and *pHi; returns 0 if an
  ** element is NaN or infinite (the two are then meaningless), else 1.
  ** f32Levels: out[i] = (x[i]-lo)*inv rounded to nearest, ties to even,
  ** clamped to 0..255, for n <= VDB_MAX_DIMS elements whose (x[i]-lo)*inv
  ** lies within -2^22..2^22 (the grid's own range, a little beyond for
  ** rounding); returns the sum of the levels and *pSumSq the sum of their
  ** squares. */
  int (*f32Range)(const float *x, size_t n, float *pLo, float *pHi);
  int64_t (*f32Levels)(const float *x, size_t n, float lo, float inv, uint8_t *out, int64_t *pSumSq);
} VdbKernels;

/* One element's level on the int8 code's grid: t rounded to nearest, ties
** to even (lrintf in the default rounding mode), clamped to 0..255. The
** scalar f32Levels, and the tail of each SIMD one, agree through it. */
static inline int vdbGridLevel(float t){
  long v = lrintf(t);
  return v<0 ? 0 : v>255 ? 255 : (int)v;
}

/* The kernel table for a level, or NULL if this build lacks it or the
** running CPU (and OS) cannot execute it. Thread-safe, no side effects
** beyond libgcc's idempotent CPU probe. */
const VdbKernels *vdbKernelsAt(VdbKernelLevel level);

/* The fastest level the running CPU supports. */
const VdbKernels *vdbKernelsBest(void);

/* Per-level tables defined by the separately compiled SIMD objects. */
extern const VdbKernels vdbKernelsScalar;
extern const VdbKernels vdbKernelsBase;
#if defined(__x86_64__) || defined(__i386__)
extern const VdbKernels vdbKernelsAvx2;
extern const VdbKernels vdbKernelsAvx512;
extern const VdbKernels vdbKernelsAvx512Vnni;
#endif

#endif /* VDB_KERNELS_H */
