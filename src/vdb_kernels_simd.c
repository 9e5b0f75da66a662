/*
** SIMD distance kernels, written once against simde's AVX-512 intrinsics.
**
** The Makefile compiles this file once per level, defining
** VDB_KERNEL_TABLE to the table's name and passing that level's -m flags.
** With -mavx512* simde emits native AVX-512; with -mavx2 it splits each
** 512-bit operation into two AVX2 operations; on the baseline it falls
** back to SSE2 (x86-64) or NEON (aarch64). Everything here is static
** except the table, so the per-level objects never share code that was
** compiled for a wider ISA than the CPU has.
**
** Loop shape: two independent accumulators per kernel hide the FMA
** latency; the final partial block (< one vector) runs in scalar code so
** no kernel ever reads beyond the end of its inputs.
*/
#define SIMDE_ENABLE_NATIVE_ALIASES_NO 1
#include <simde/x86/avx512.h>
#include <string.h>
#include "vdb_kernels.h"

#ifndef VDB_KERNEL_TABLE
# error "compile with -DVDB_KERNEL_TABLE=<table name>"
#endif
#ifndef VDB_KERNEL_NAME
# define VDB_KERNEL_NAME "base"
#endif

/* Sum the 16 float lanes of v. */
static float vdbReduceF32(simde__m512 v){
  simde__m128 s = simde_mm_add_ps(
      simde_mm_add_ps(simde_mm512_extractf32x4_ps(v, 0),
                      simde_mm512_extractf32x4_ps(v, 1)),
      simde_mm_add_ps(simde_mm512_extractf32x4_ps(v, 2),
                      simde_mm512_extractf32x4_ps(v, 3)));
  s = simde_mm_add_ps(s, simde_mm_movehl_ps(s, s));
  s = simde_mm_add_ss(s, simde_mm_shuffle_ps(s, s, 1));
  return simde_mm_cvtss_f32(s);
}

/* Sum the 16 int32 lanes of v into 64 bits. */
static int64_t vdbReduceI32(simde__m512i v){
  int32_t lane[16];
  int64_t sum = 0;
  int i;
  simde_mm512_storeu_si512(lane, v);
  for(i=0; i<16; i++) sum += lane[i];
  return sum;
}

static float vdbF32L2Sq(const float *a, const float *b, size_t n){
  simde__m512 acc0 = simde_mm512_setzero_ps();
  simde__m512 acc1 = simde_mm512_setzero_ps();
  size_t i = 0;
  float sum;
  for(; i+32<=n; i+=32){
    simde__m512 d0 = simde_mm512_sub_ps(simde_mm512_loadu_ps(a+i),
                                        simde_mm512_loadu_ps(b+i));
    simde__m512 d1 = simde_mm512_sub_ps(simde_mm512_loadu_ps(a+i+16),
                                        simde_mm512_loadu_ps(b+i+16));
    acc0 = simde_mm512_fmadd_ps(d0, d0, acc0);
    acc1 = simde_mm512_fmadd_ps(d1, d1, acc1);
  }
  for(; i+16<=n; i+=16){
    simde__m512 d0 = simde_mm512_sub_ps(simde_mm512_loadu_ps(a+i),
                                        simde_mm512_loadu_ps(b+i));
    acc0 = simde_mm512_fmadd_ps(d0, d0, acc0);
  }
  sum = vdbReduceF32(simde_mm512_add_ps(acc0, acc1));
  for(; i<n; i++){ float d = a[i]-b[i]; sum += d*d; }
  return sum;
}

static float vdbF32Dot(const float *a, const float *b, size_t n){
  simde__m512 acc0 = simde_mm512_setzero_ps();
  simde__m512 acc1 = simde_mm512_setzero_ps();
  size_t i = 0;
  float sum;
  for(; i+32<=n; i+=32){
    acc0 = simde_mm512_fmadd_ps(simde_mm512_loadu_ps(a+i),
                                simde_mm512_loadu_ps(b+i), acc0);
    acc1 = simde_mm512_fmadd_ps(simde_mm512_loadu_ps(a+i+16),
                                simde_mm512_loadu_ps(b+i+16), acc1);
  }
  for(; i+16<=n; i+=16){
    acc0 = simde_mm512_fmadd_ps(simde_mm512_loadu_ps(a+i),
                                simde_mm512_loadu_ps(b+i), acc0);
  }
  sum = vdbReduceF32(simde_mm512_add_ps(acc0, acc1));
  for(; i<n; i++) sum += a[i]*b[i];
  return sum;
}

static float vdbF32L1(const float *a, const float *b, size_t n){
  simde__m512 acc0 = simde_mm512_setzero_ps();
  simde__m512 acc1 = simde_mm512_setzero_ps();
  size_t i = 0;
  float sum;
  for(; i+32<=n; i+=32){
    acc0 = simde_mm512_add_ps(acc0, simde_mm512_abs_ps(simde_mm512_sub_ps(
        simde_mm512_loadu_ps(a+i), simde_mm512_loadu_ps(b+i))));
    acc1 = simde_mm512_add_ps(acc1, simde_mm512_abs_ps(simde_mm512_sub_ps(
        simde_mm512_loadu_ps(a+i+16), simde_mm512_loadu_ps(b+i+16))));
  }
  for(; i+16<=n; i+=16){
    acc0 = simde_mm512_add_ps(acc0, simde_mm512_abs_ps(simde_mm512_sub_ps(
        simde_mm512_loadu_ps(a+i), simde_mm512_loadu_ps(b+i))));
  }
  sum = vdbReduceF32(simde_mm512_add_ps(acc0, acc1));
  for(; i<n; i++){ float d = a[i]-b[i]; sum += d<0 ? -d : d; }
  return sum;
}

static VdbCosParts vdbF32Cos(const float *a, const float *b, size_t n){
  simde__m512 dot = simde_mm512_setzero_ps();
  simde__m512 na = simde_mm512_setzero_ps();
  simde__m512 nb = simde_mm512_setzero_ps();
  size_t i = 0;
  float sDot, sA, sB;
  VdbCosParts r;
  for(; i+16<=n; i+=16){
    simde__m512 va = simde_mm512_loadu_ps(a+i);
    simde__m512 vb = simde_mm512_loadu_ps(b+i);
    dot = simde_mm512_fmadd_ps(va, vb, dot);
    na = simde_mm512_fmadd_ps(va, va, na);
    nb = simde_mm512_fmadd_ps(vb, vb, nb);
  }
  sDot = vdbReduceF32(dot);
  sA = vdbReduceF32(na);
  sB = vdbReduceF32(nb);
  for(; i<n; i++){ sDot += a[i]*b[i]; sA += a[i]*a[i]; sB += b[i]*b[i]; }
  r.dot = sDot; r.normA = sA; r.normB = sB;
  return r;
}

/*
** int8 kernels widen 32 elements at a time to int16 and use madd, which
** multiplies int16 pairs and adds adjacent products into int32 lanes.
** A lane gains at most 2*255*255 per block, so int32 lanes are flushed to
** the 64-bit total every VDB_I8_FLUSH blocks, well before they can wrap.
*/
#define VDB_I8_FLUSH 1024

static simde__m512i vdbLoadI8x32(const int8_t *p){
  return simde_mm512_cvtepi8_epi16(simde_mm256_loadu_si256((const void*)p));
}

static int64_t vdbI8L2Sq(const int8_t *a, const int8_t *b, size_t n){
  int64_t total = 0;
  size_t i = 0;
  while( i+32<=n ){
    simde__m512i acc = simde_mm512_setzero_si512();
    int blocks = 0;
    for(; i+32<=n && blocks<VDB_I8_FLUSH; i+=32, blocks++){
      simde__m512i d = simde_mm512_sub_epi16(vdbLoadI8x32(a+i), vdbLoadI8x32(b+i));
      acc = simde_mm512_add_epi32(acc, simde_mm512_madd_epi16(d, d));
    }
    total += vdbReduceI32(acc);
  }
  for(; i<n; i++){ int d = (int)a[i] - (int)b[i]; total += d*d; }
  return total;
}

static int64_t vdbI8Dot(const int8_t *a, const int8_t *b, size_t n){
  int64_t total = 0;
  size_t i = 0;
  while( i+32<=n ){
    simde__m512i acc = simde_mm512_setzero_si512();
    int blocks = 0;
    for(; i+32<=n && blocks<VDB_I8_FLUSH; i+=32, blocks++){
      acc = simde_mm512_add_epi32(acc,
          simde_mm512_madd_epi16(vdbLoadI8x32(a+i), vdbLoadI8x32(b+i)));
    }
    total += vdbReduceI32(acc);
  }
  for(; i<n; i++) total += (int)a[i] * (int)b[i];
  return total;
}

static int64_t vdbI8L1(const int8_t *a, const int8_t *b, size_t n){
  const simde__m512i ones = simde_mm512_set1_epi16(1);
  int64_t total = 0;
  size_t i = 0;
  while( i+32<=n ){
    simde__m512i acc = simde_mm512_setzero_si512();
    int blocks = 0;
    for(; i+32<=n && blocks<VDB_I8_FLUSH; i+=32, blocks++){
      simde__m512i d = simde_mm512_abs_epi16(
          simde_mm512_sub_epi16(vdbLoadI8x32(a+i), vdbLoadI8x32(b+i)));
      acc = simde_mm512_add_epi32(acc, simde_mm512_madd_epi16(d, ones));
    }
    total += vdbReduceI32(acc);
  }
  for(; i<n; i++){ int d = (int)a[i] - (int)b[i]; total += d<0 ? -d : d; }
  return total;
}

static VdbCosParts vdbI8Cos(const int8_t *a, const int8_t *b, size_t n){
  VdbCosParts r;
  r.dot = (double)vdbI8Dot(a, b, n);
  r.normA = (double)vdbI8Dot(a, a, n);
  r.normB = (double)vdbI8Dot(b, b, n);
  return r;
}

/* Hamming distance over 64-bit words; with -mpopcnt each word is one
** instruction. memcpy keeps the unaligned loads well-defined. */
static uint64_t vdbBitHamming(const uint8_t *a, const uint8_t *b, size_t nByte){
  uint64_t total = 0;
  size_t i = 0;
  for(; i+8<=nByte; i+=8){
    uint64_t x, y;
    memcpy(&x, a+i, 8);
    memcpy(&y, b+i, 8);
    total += (uint64_t)__builtin_popcountll(x ^ y);
  }
  for(; i<nByte; i++) total += (uint64_t)__builtin_popcount((unsigned)(a[i] ^ b[i]));
  return total;
}

const VdbKernels VDB_KERNEL_TABLE = {
  VDB_KERNEL_NAME,
  vdbF32L2Sq, vdbF32Dot, vdbF32L1, vdbF32Cos,
  vdbI8L2Sq, vdbI8Dot, vdbI8L1, vdbI8Cos,
  vdbBitHamming
};
