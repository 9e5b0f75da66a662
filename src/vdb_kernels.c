/*
** Scalar reference kernels and run-time selection of the best level.
**
** This file is compiled with -fno-tree-vectorize so that the scalar level
** stays scalar: the benchmarks report SIMD speed-ups against it, and the
** tests use it as a second opinion next to their double-precision oracle.
*/
#include <math.h>
#include <string.h>
#include "vdb_kernels.h"

static float vdbScalarF32L2Sq(const float *a, const float *b, size_t n){
  float sum = 0;
  size_t i;
  for(i=0; i<n; i++){ float d = a[i]-b[i]; sum += d*d; }
  return sum;
}

static float vdbScalarF32Dot(const float *a, const float *b, size_t n){
  float sum = 0;
  size_t i;
  for(i=0; i<n; i++) sum += a[i]*b[i];
  return sum;
}

static float vdbScalarF32L1(const float *a, const float *b, size_t n){
  float sum = 0;
  size_t i;
  for(i=0; i<n; i++) sum += fabsf(a[i]-b[i]);
  return sum;
}

static VdbCosParts vdbScalarF32Cos(const float *a, const float *b, size_t n){
  float dot = 0, na = 0, nb = 0;
  size_t i;
  VdbCosParts r;
  for(i=0; i<n; i++){ dot += a[i]*b[i]; na += a[i]*a[i]; nb += b[i]*b[i]; }
  r.dot = dot; r.normA = na; r.normB = nb;
  return r;
}

static int64_t vdbScalarI8L2Sq(const int8_t *a, const int8_t *b, size_t n){
  int64_t sum = 0;
  size_t i;
  for(i=0; i<n; i++){ int d = (int)a[i]-(int)b[i]; sum += d*d; }
  return sum;
}

static int64_t vdbScalarI8Dot(const int8_t *a, const int8_t *b, size_t n){
  int64_t sum = 0;
  size_t i;
  for(i=0; i<n; i++) sum += (int)a[i]*(int)b[i];
  return sum;
}

static int64_t vdbScalarI8L1(const int8_t *a, const int8_t *b, size_t n){
  int64_t sum = 0;
  size_t i;
  for(i=0; i<n; i++){ int d = (int)a[i]-(int)b[i]; sum += d<0 ? -d : d; }
  return sum;
}

static VdbCosParts vdbScalarI8Cos(const int8_t *a, const int8_t *b, size_t n){
  VdbCosParts r;
  r.dot = (double)vdbScalarI8Dot(a, b, n);
  r.normA = (double)vdbScalarI8Dot(a, a, n);
  r.normB = (double)vdbScalarI8Dot(b, b, n);
  return r;
}

static int64_t vdbScalarU8I8Dot(const uint8_t *a, const int8_t *b, size_t n){
  int64_t sum = 0;
  size_t i;
  for(i=0; i<n; i++) sum += (int)a[i]*(int)b[i];
  return sum;
}

/* Byte at a time with a bit-twiddling count: no POPCNT instruction. */
static uint64_t vdbScalarBitHamming(const uint8_t *a, const uint8_t *b, size_t nByte){
  uint64_t sum = 0;
  size_t i;
  for(i=0; i<nByte; i++){
    unsigned x = (unsigned)(a[i] ^ b[i]);
    x = x - ((x>>1) & 0x55u);
    x = (x & 0x33u) + ((x>>2) & 0x33u);
    sum += (x + (x>>4)) & 0x0fu;
  }
  return sum;
}

static int vdbScalarF32Range(const float *x, size_t n, float *pLo, float *pHi){
  float lo = x[0], hi = x[0];
  int finite = 1;
  size_t i;
  for(i=0; i<n; i++){
    if( !isfinite(x[i]) ) finite = 0;
    if( x[i]<lo ) lo = x[i];
    if( x[i]>hi ) hi = x[i];
  }
  *pLo = lo;
  *pHi = hi;
  return finite;
}

static int64_t vdbScalarF32Levels(const float *x, size_t n, float lo, float inv, uint8_t *out,
                                  int64_t *pSumSq){
  int64_t sum = 0, sumSq = 0;
  size_t i;
  for(i=0; i<n; i++){
    int level = vdbGridLevel((x[i] - lo)*inv);
    out[i] = (uint8_t)level;
    sum += level;
    sumSq += level*level;
  }
  *pSumSq = sumSq;
  return sum;
}

const VdbKernels vdbKernelsScalar = {
  "scalar",
  vdbScalarF32L2Sq, vdbScalarF32Dot, vdbScalarF32L1, vdbScalarF32Cos,
  vdbScalarI8L2Sq, vdbScalarI8Dot, vdbScalarI8L1, vdbScalarI8Cos,
  vdbScalarBitHamming, vdbScalarU8I8Dot, vdbScalarU8I8Dot,
  vdbScalarF32Range, vdbScalarF32Levels
};

const VdbKernels *vdbKernelsAt(VdbKernelLevel level){
  switch( level ){
    case VDB_KLEVEL_SCALAR: return &vdbKernelsScalar;
    case VDB_KLEVEL_BASE:   return &vdbKernelsBase;
#if defined(__x86_64__) || defined(__i386__)
    /* __builtin_cpu_supports consults XCR0 too, so a CPU whose OS has not
    ** enabled the wide register state is reported as lacking the feature. */
    case VDB_KLEVEL_AVX2:
      __builtin_cpu_init();
      if( __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
       && __builtin_cpu_supports("popcnt") ){
        return &vdbKernelsAvx2;
      }
      return 0;
    case VDB_KLEVEL_AVX512:
      __builtin_cpu_init();
      if( __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
       && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")
       && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
       && __builtin_cpu_supports("popcnt") ){
        return &vdbKernelsAvx512;
      }
      return 0;
    case VDB_KLEVEL_AVX512VNNI:
      __builtin_cpu_init();
      if( vdbKernelsAt(VDB_KLEVEL_AVX512) && __builtin_cpu_supports("avx512vnni") ){
        return &vdbKernelsAvx512Vnni;
      }
      return 0;
#endif
    default:
      return 0;
  }
}

const VdbKernels *vdbKernelsBest(void){
  int level;
  for(level=VDB_KLEVEL_COUNT-1; level>VDB_KLEVEL_BASE; level--){
    const VdbKernels *k = vdbKernelsAt((VdbKernelLevel)level);
    if( k ) return k;
  }
  return &vdbKernelsBase;
}
