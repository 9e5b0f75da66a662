/*
** SIMD distance kernels, written once against a thin width-neutral layer
** over simde.
**
** The Makefile compiles this file once per level, defining
** VDB_KERNEL_TABLE to the table's name and passing that level's -m flags.
** The layer below picks the level's native register width from the
** compiler's target macros: 512-bit with AVX-512, 256-bit with AVX2, and
** 128-bit otherwise (SSE2 on x86-64; simde maps the same calls to NEON on
** aarch64). Each level therefore runs native instructions only: asking
** simde for 512-bit operations on an AVX2 target would emulate them
** through memory and lose most of the speed (measured: 2x scalar instead
** of 10x for f32 L2 at d=768).
**
** Everything here is static except the table, so the per-level objects
** never share code compiled for a wider ISA than the CPU has.
**
** Loop shape: two independent accumulators per kernel hide the FMA
** latency; the final partial block (< one vector) runs in scalar code so
** no kernel ever reads beyond the end of its inputs.
*/
#include <simde/x86/avx512.h>
#include <math.h>
#include <string.h>
#include "vdb_kernels.h"

#ifndef VDB_KERNEL_TABLE
# error "compile with -DVDB_KERNEL_TABLE=<table name>"
#endif
#ifndef VDB_KERNEL_NAME
# define VDB_KERNEL_NAME "base"
#endif

/* ---- the width-neutral layer -------------------------------------------
** VdbF holds VDB_F_LANES floats; VdbI holds int16/int32 lanes. vdbLoadI8
** widens VDB_I8_STEP int8 values to one VdbI of int16.
*/
#if defined(__AVX512F__) && defined(__AVX512BW__)
typedef simde__m512 VdbF;
typedef simde__m512i VdbI;
# define VDB_F_LANES 16
# define VDB_I8_STEP 32
# define vdbFZero()        simde_mm512_setzero_ps()
# define vdbFLoad(p)       simde_mm512_loadu_ps(p)
# define vdbFAdd(a,b)      simde_mm512_add_ps(a,b)
# define vdbFSub(a,b)      simde_mm512_sub_ps(a,b)
# define vdbFMulAdd(a,b,c) simde_mm512_fmadd_ps(a,b,c)
# define vdbFAndNot(a,b)   simde_mm512_andnot_ps(a,b)
# define vdbFSet1(x)       simde_mm512_set1_ps(x)
# define vdbIZero()        simde_mm512_setzero_si512()
# define vdbLoadI8(p)      simde_mm512_cvtepi8_epi16(simde_mm256_loadu_si256((const void*)(p)))
# define vdbILoad(p)       simde_mm512_loadu_si512((const void*)(p))
# define vdbIAdd16(a,b)    simde_mm512_add_epi16(a,b)
# define vdbIMaddubs(a,b)  simde_mm512_maddubs_epi16(a,b)
# define vdbISub16(a,b)    simde_mm512_sub_epi16(a,b)
# define vdbIAbs16(a)      simde_mm512_abs_epi16(a)
# define vdbIMadd16(a,b)   simde_mm512_madd_epi16(a,b)
# define vdbIAdd32(a,b)    simde_mm512_add_epi32(a,b)
# define vdbISet1_16(x)    simde_mm512_set1_epi16(x)
# define vdbIStore(p,v)    simde_mm512_storeu_si512((void*)(p), v)
# define vdbFMin(a,b)      simde_mm512_min_ps(a,b)
# define vdbFMax(a,b)      simde_mm512_max_ps(a,b)
# define vdbFStore(p,v)    simde_mm512_storeu_ps(p,v)
static simde__m128 vdbFToQuarter(VdbF v){
  return simde_mm_add_ps(
      simde_mm_add_ps(simde_mm512_extractf32x4_ps(v, 0), simde_mm512_extractf32x4_ps(v, 1)),
      simde_mm_add_ps(simde_mm512_extractf32x4_ps(v, 2), simde_mm512_extractf32x4_ps(v, 3)));
}
#elif defined(__AVX2__)
typedef simde__m256 VdbF;
typedef simde__m256i VdbI;
# define VDB_F_LANES 8
# define VDB_I8_STEP 16
# define vdbFZero()        simde_mm256_setzero_ps()
# define vdbFLoad(p)       simde_mm256_loadu_ps(p)
# define vdbFAdd(a,b)      simde_mm256_add_ps(a,b)
# define vdbFSub(a,b)      simde_mm256_sub_ps(a,b)
# define vdbFMulAdd(a,b,c) simde_mm256_fmadd_ps(a,b,c)
# define vdbFAndNot(a,b)   simde_mm256_andnot_ps(a,b)
# define vdbFSet1(x)       simde_mm256_set1_ps(x)
# define vdbIZero()        simde_mm256_setzero_si256()
# define vdbLoadI8(p)      simde_mm256_cvtepi8_epi16(simde_mm_loadu_si128((const void*)(p)))
# define vdbLoadU8(p)      simde_mm256_cvtepu8_epi16(simde_mm_loadu_si128((const void*)(p)))
# define vdbILoad(p)       simde_mm256_loadu_si256((const void*)(p))
# define vdbIAdd16(a,b)    simde_mm256_add_epi16(a,b)
# define vdbIMaddubs(a,b)  simde_mm256_maddubs_epi16(a,b)
# define vdbISub16(a,b)    simde_mm256_sub_epi16(a,b)
# define vdbIAbs16(a)      simde_mm256_abs_epi16(a)
# define vdbIMadd16(a,b)   simde_mm256_madd_epi16(a,b)
# define vdbIAdd32(a,b)    simde_mm256_add_epi32(a,b)
# define vdbISet1_16(x)    simde_mm256_set1_epi16(x)
# define vdbIStore(p,v)    simde_mm256_storeu_si256((void*)(p), v)
# define vdbFMin(a,b)      simde_mm256_min_ps(a,b)
# define vdbFMax(a,b)      simde_mm256_max_ps(a,b)
# define vdbFStore(p,v)    simde_mm256_storeu_ps(p,v)
static simde__m128 vdbFToQuarter(VdbF v){
  return simde_mm_add_ps(simde_mm256_castps256_ps128(v), simde_mm256_extractf128_ps(v, 1));
}
#else
typedef simde__m128 VdbF;
typedef simde__m128i VdbI;
# define VDB_F_LANES 4
# define VDB_I8_STEP 8
# define vdbFZero()        simde_mm_setzero_ps()
# define vdbFLoad(p)       simde_mm_loadu_ps(p)
# define vdbFAdd(a,b)      simde_mm_add_ps(a,b)
# define vdbFSub(a,b)      simde_mm_sub_ps(a,b)
# define vdbFMulAdd(a,b,c) simde_mm_add_ps(simde_mm_mul_ps(a,b),c)
# define vdbFAndNot(a,b)   simde_mm_andnot_ps(a,b)
# define vdbFSet1(x)       simde_mm_set1_ps(x)
# define vdbIZero()        simde_mm_setzero_si128()
# define vdbLoadI8(p)      simde_mm_cvtepi8_epi16(simde_mm_loadl_epi64((const void*)(p)))
# define vdbLoadU8(p)      simde_mm_cvtepu8_epi16(simde_mm_loadl_epi64((const void*)(p)))
# define vdbILoad(p)       simde_mm_loadu_si128((const void*)(p))
# define vdbIAdd16(a,b)    simde_mm_add_epi16(a,b)
# define vdbIMaddubs(a,b)  simde_mm_maddubs_epi16(a,b)
# define vdbISub16(a,b)    simde_mm_sub_epi16(a,b)
# define vdbIAbs16(a)      simde_mm_abs_epi16(a)
# define vdbIMadd16(a,b)   simde_mm_madd_epi16(a,b)
# define vdbIAdd32(a,b)    simde_mm_add_epi32(a,b)
# define vdbISet1_16(x)    simde_mm_set1_epi16(x)
# define vdbIStore(p,v)    simde_mm_storeu_si128((void*)(p), v)
# define vdbFMin(a,b)      simde_mm_min_ps(a,b)
# define vdbFMax(a,b)      simde_mm_max_ps(a,b)
# define vdbFStore(p,v)    simde_mm_storeu_ps(p,v)
static simde__m128 vdbFToQuarter(VdbF v){ return v; }
#endif

#define VDB_I32_LANES (VDB_I8_STEP/2)

/* |x| by clearing the sign bit. */
static VdbF vdbFAbs(VdbF x){ return vdbFAndNot(vdbFSet1(-0.0f), x); }

/* Sum of all float lanes. */
static float vdbReduceF32(VdbF v){
  simde__m128 s = vdbFToQuarter(v);
  s = simde_mm_add_ps(s, simde_mm_movehl_ps(s, s));
  s = simde_mm_add_ss(s, simde_mm_shuffle_ps(s, s, 1));
  return simde_mm_cvtss_f32(s);
}

/* Sum of all int32 lanes, in 64 bits. */
static int64_t vdbReduceI32(VdbI v){
  int32_t lane[VDB_I32_LANES];
  int64_t sum = 0;
  int i;
  vdbIStore(lane, v);
  for(i=0; i<VDB_I32_LANES; i++) sum += lane[i];
  return sum;
}

#define VDB_F_STEP2 (2*VDB_F_LANES)

static float vdbF32L2Sq(const float *a, const float *b, size_t n){
  VdbF acc0 = vdbFZero(), acc1 = vdbFZero();
  size_t i = 0;
  float sum;
  for(; i+VDB_F_STEP2<=n; i+=VDB_F_STEP2){
    VdbF d0 = vdbFSub(vdbFLoad(a+i), vdbFLoad(b+i));
    VdbF d1 = vdbFSub(vdbFLoad(a+i+VDB_F_LANES), vdbFLoad(b+i+VDB_F_LANES));
    acc0 = vdbFMulAdd(d0, d0, acc0);
    acc1 = vdbFMulAdd(d1, d1, acc1);
  }
  for(; i+VDB_F_LANES<=n; i+=VDB_F_LANES){
    VdbF d0 = vdbFSub(vdbFLoad(a+i), vdbFLoad(b+i));
    acc0 = vdbFMulAdd(d0, d0, acc0);
  }
  sum = vdbReduceF32(vdbFAdd(acc0, acc1));
  for(; i<n; i++){ float d = a[i]-b[i]; sum += d*d; }
  return sum;
}

static float vdbF32Dot(const float *a, const float *b, size_t n){
  VdbF acc0 = vdbFZero(), acc1 = vdbFZero();
  size_t i = 0;
  float sum;
  for(; i+VDB_F_STEP2<=n; i+=VDB_F_STEP2){
    acc0 = vdbFMulAdd(vdbFLoad(a+i), vdbFLoad(b+i), acc0);
    acc1 = vdbFMulAdd(vdbFLoad(a+i+VDB_F_LANES), vdbFLoad(b+i+VDB_F_LANES), acc1);
  }
  for(; i+VDB_F_LANES<=n; i+=VDB_F_LANES){
    acc0 = vdbFMulAdd(vdbFLoad(a+i), vdbFLoad(b+i), acc0);
  }
  sum = vdbReduceF32(vdbFAdd(acc0, acc1));
  for(; i<n; i++) sum += a[i]*b[i];
  return sum;
}

static float vdbF32L1(const float *a, const float *b, size_t n){
  VdbF acc0 = vdbFZero(), acc1 = vdbFZero();
  size_t i = 0;
  float sum;
  for(; i+VDB_F_STEP2<=n; i+=VDB_F_STEP2){
    acc0 = vdbFAdd(acc0, vdbFAbs(vdbFSub(vdbFLoad(a+i), vdbFLoad(b+i))));
    acc1 = vdbFAdd(acc1, vdbFAbs(vdbFSub(vdbFLoad(a+i+VDB_F_LANES),
                                         vdbFLoad(b+i+VDB_F_LANES))));
  }
  for(; i+VDB_F_LANES<=n; i+=VDB_F_LANES){
    acc0 = vdbFAdd(acc0, vdbFAbs(vdbFSub(vdbFLoad(a+i), vdbFLoad(b+i))));
  }
  sum = vdbReduceF32(vdbFAdd(acc0, acc1));
  for(; i<n; i++) sum += fabsf(a[i]-b[i]);
  return sum;
}

static VdbCosParts vdbF32Cos(const float *a, const float *b, size_t n){
  VdbF dot = vdbFZero(), na = vdbFZero(), nb = vdbFZero();
  size_t i = 0;
  float sDot, sA, sB;
  VdbCosParts r;
  for(; i+VDB_F_LANES<=n; i+=VDB_F_LANES){
    VdbF va = vdbFLoad(a+i);
    VdbF vb = vdbFLoad(b+i);
    dot = vdbFMulAdd(va, vb, dot);
    na = vdbFMulAdd(va, va, na);
    nb = vdbFMulAdd(vb, vb, nb);
  }
  sDot = vdbReduceF32(dot);
  sA = vdbReduceF32(na);
  sB = vdbReduceF32(nb);
  for(; i<n; i++){ sDot += a[i]*b[i]; sA += a[i]*a[i]; sB += b[i]*b[i]; }
  r.dot = sDot; r.normA = sA; r.normB = sB;
  return r;
}

/*
** int8 kernels widen VDB_I8_STEP elements at a time to int16 and use
** madd, which multiplies int16 pairs and adds adjacent products into
** int32 lanes. A lane gains at most 2*255*255 per step, so the int32
** lanes are flushed to the 64-bit total every VDB_I8_FLUSH steps, long
** before they could wrap.
*/
#define VDB_I8_FLUSH 1024

static int64_t vdbI8L2Sq(const int8_t *a, const int8_t *b, size_t n){
  int64_t total = 0;
  size_t i = 0;
  while( i+VDB_I8_STEP<=n ){
    VdbI acc = vdbIZero();
    int steps = 0;
    for(; i+VDB_I8_STEP<=n && steps<VDB_I8_FLUSH; i+=VDB_I8_STEP, steps++){
      VdbI d = vdbISub16(vdbLoadI8(a+i), vdbLoadI8(b+i));
      acc = vdbIAdd32(acc, vdbIMadd16(d, d));
    }
    total += vdbReduceI32(acc);
  }
  for(; i<n; i++){ int d = (int)a[i] - (int)b[i]; total += d*d; }
  return total;
}

static int64_t vdbI8Dot(const int8_t *a, const int8_t *b, size_t n){
  int64_t total = 0;
  size_t i = 0;
  while( i+VDB_I8_STEP<=n ){
    VdbI acc = vdbIZero();
    int steps = 0;
    for(; i+VDB_I8_STEP<=n && steps<VDB_I8_FLUSH; i+=VDB_I8_STEP, steps++){
      acc = vdbIAdd32(acc, vdbIMadd16(vdbLoadI8(a+i), vdbLoadI8(b+i)));
    }
    total += vdbReduceI32(acc);
  }
  for(; i<n; i++) total += (int)a[i] * (int)b[i];
  return total;
}

/* Unsigned by signed bytes, the int8 code distance (vdb_quant.h). With
** VNNI, vpdpbusd multiplies 64 byte pairs and adds each 4 products into
** an int32 lane in one instruction (a lane gains at most 4*255*128 per
** step); 16-byte blocks take most of the rest. Without it both sides are
** widened to int16 (255*128 fits an int16 product exactly). At 512 bits
** this simde has no u8 widening: unpacking against zero interleaves both
** sides the same way, which a sum of products does not mind. */
#if defined(__AVX512VNNI__)
static int64_t vdbU8I8Dot(const uint8_t *a, const int8_t *b, size_t n){
  int64_t total = 0;
  size_t i = 0;
  while( i+64<=n ){
    VdbI acc0 = vdbIZero(), acc1 = vdbIZero();
    int steps = 0;
    for(; i+128<=n && steps<VDB_I8_FLUSH; i+=128, steps++){
      acc0 = simde_mm512_dpbusd_epi32(acc0, simde_mm512_loadu_si512((const void*)(a+i)),
                                      simde_mm512_loadu_si512((const void*)(b+i)));
      acc1 = simde_mm512_dpbusd_epi32(acc1, simde_mm512_loadu_si512((const void*)(a+i+64)),
                                      simde_mm512_loadu_si512((const void*)(b+i+64)));
    }
    if( steps<VDB_I8_FLUSH && i+64<=n ){
      acc0 = simde_mm512_dpbusd_epi32(acc0, simde_mm512_loadu_si512((const void*)(a+i)),
                                      simde_mm512_loadu_si512((const void*)(b+i)));
      i += 64;
    }
    total += vdbReduceI32(vdbIAdd32(acc0, acc1));
  }
  if( i+16<=n ){
    simde__m128i acc = simde_mm_setzero_si128();
    int32_t lane[4];
    for(; i+16<=n; i+=16){
      acc = simde_mm_dpbusd_epi32(acc, simde_mm_loadu_si128((const void*)(a+i)),
                                  simde_mm_loadu_si128((const void*)(b+i)));
    }
    simde_mm_storeu_si128((void*)lane, acc);
    total += (int64_t)lane[0] + lane[1] + lane[2] + lane[3];
  }
  for(; i<n; i++) total += (int)a[i] * (int)b[i];
  return total;
}
#elif defined(__AVX512F__) && defined(__AVX512BW__)
static int64_t vdbU8I8Dot(const uint8_t *a, const int8_t *b, size_t n){
  const simde__m512i zero = simde_mm512_setzero_si512();
  int64_t total = 0;
  size_t i = 0;
  while( i+64<=n ){
    VdbI acc = vdbIZero();
    int steps = 0;
    for(; i+64<=n && steps<VDB_I8_FLUSH; i+=64, steps++){
      simde__m512i va = simde_mm512_loadu_si512((const void*)(a+i));
      simde__m512i vb = simde_mm512_loadu_si512((const void*)(b+i));
      simde__m512i bLo = simde_mm512_srai_epi16(simde_mm512_unpacklo_epi8(zero, vb), 8);
      simde__m512i bHi = simde_mm512_srai_epi16(simde_mm512_unpackhi_epi8(zero, vb), 8);
      acc = vdbIAdd32(acc, vdbIMadd16(simde_mm512_unpacklo_epi8(va, zero), bLo));
      acc = vdbIAdd32(acc, vdbIMadd16(simde_mm512_unpackhi_epi8(va, zero), bHi));
    }
    total += vdbReduceI32(acc);
  }
  for(; i<n; i++) total += (int)a[i] * (int)b[i];
  return total;
}
#else
static int64_t vdbU8I8Dot(const uint8_t *a, const int8_t *b, size_t n){
  int64_t total = 0;
  size_t i = 0;
  while( i+VDB_I8_STEP<=n ){
    VdbI acc = vdbIZero();
    int steps = 0;
    for(; i+VDB_I8_STEP<=n && steps<VDB_I8_FLUSH; i+=VDB_I8_STEP, steps++){
      acc = vdbIAdd32(acc, vdbIMadd16(vdbLoadU8(a+i), vdbLoadI8(b+i)));
    }
    total += vdbReduceI32(acc);
  }
  for(; i<n; i++) total += (int)a[i] * (int)b[i];
  return total;
}
#endif

/* The u7 x s8 sum (vdb_kernels.h) with vpmaddubsw on full registers, its
** pair sums widened to int32 at once by vpmaddwd: one vpmaddubsw and
** three other instructions per register of bytes, against two widenings,
** a vpmaddwd and an add per half register in vdbU8I8Dot without VNNI, and
** half the work of the split of 8-bit levels into 7 bits and 1 this
** replaced. A 16-byte block takes most of the rest (784 dimensions are 24
** steps of 32 and one of 16). An int32 lane gains at most 4*127*128 a
** step (two pair sums), so VDB_U7_FLUSH steps fit before it is added up. */
#if (defined(__AVX2__) || defined(__AVX512BW__)) && !defined(__AVX512VNNI__)
#define VDB_U7_BYTES (2*VDB_I8_STEP)
#define VDB_U7_FLUSH 32768
static int64_t vdbU7I8Dot(const uint8_t *a, const int8_t *b, size_t n){
  const VdbI ones = vdbISet1_16(1);
  int64_t total = 0;
  size_t i = 0;
  size_t nStep = n/VDB_U7_BYTES;
  /* Each flush's step count is known before its loop, which then tests one
  ** index only (with a count in the condition too, gcc 12 kept two). */
  while( nStep>0 ){
    size_t nChunk = nStep<VDB_U7_FLUSH ? nStep : VDB_U7_FLUSH;
    size_t iEnd = i + nChunk*VDB_U7_BYTES;
    VdbI acc = vdbIZero();
    for(; i<iEnd; i+=VDB_U7_BYTES){
      acc = vdbIAdd32(acc, vdbIMadd16(vdbIMaddubs(vdbILoad(a+i), vdbILoad(b+i)), ones));
    }
    nStep -= nChunk;
    total += vdbReduceI32(acc);
  }
#if VDB_U7_BYTES>16
  /* The rest in 16-byte blocks: one with AVX2, up to three with AVX-512. */
  if( i+16<=n ){
    const simde__m128i ones16 = simde_mm_set1_epi16(1);
    simde__m128i acc = simde_mm_setzero_si128();
    int32_t lane[4];
    for(; i+16<=n; i+=16){
      simde__m128i p = simde_mm_maddubs_epi16(simde_mm_loadu_si128((const void*)(a+i)),
                                              simde_mm_loadu_si128((const void*)(b+i)));
      acc = simde_mm_add_epi32(acc, simde_mm_madd_epi16(p, ones16));
    }
    simde_mm_storeu_si128((void*)lane, acc);
    total += (int64_t)lane[0] + lane[1] + lane[2] + lane[3];
  }
#endif
  for(; i<n; i++) total += (int)a[i]*(int)b[i];
  return total;
}
# define VDB_U7I8_DOT vdbU7I8Dot
#else
# define VDB_U7I8_DOT vdbU8I8Dot        /* VNNI's vpdpbusd, or SSE2's widening */
#endif

static int64_t vdbI8L1(const int8_t *a, const int8_t *b, size_t n){
  const VdbI ones = vdbISet1_16(1);
  int64_t total = 0;
  size_t i = 0;
  while( i+VDB_I8_STEP<=n ){
    VdbI acc = vdbIZero();
    int steps = 0;
    for(; i+VDB_I8_STEP<=n && steps<VDB_I8_FLUSH; i+=VDB_I8_STEP, steps++){
      VdbI d = vdbIAbs16(vdbISub16(vdbLoadI8(a+i), vdbLoadI8(b+i)));
      acc = vdbIAdd32(acc, vdbIMadd16(d, ones));
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

/* The int8 code's grid (vdb_quant.c), run for every query and for every
** node a walk codes: one pass for the range, one for the levels, where
** the scalar loops took 3 us at 384 dimensions, 4% of a search at
** ef_search 10. */

/* Smallest and largest element (n >= 1); 0 when one is NaN or infinite
** (x*0 is NaN exactly then), in which case *pLo and *pHi mean nothing. */
static int vdbF32Range(const float *x, size_t n, float *pLo, float *pHi){
  float lo = x[0], hi = x[0], bad = 0.0f;
  size_t i = 0;
  if( n>=VDB_F_LANES ){
    float aLo[VDB_F_LANES], aHi[VDB_F_LANES];
    VdbF vLo = vdbFLoad(x), vHi = vLo, vBad = vdbFZero();
    const VdbF zero = vdbFZero();
    int j;
    for(; i+VDB_F_LANES<=n; i+=VDB_F_LANES){
      VdbF v = vdbFLoad(x+i);
      vLo = vdbFMin(vLo, v);
      vHi = vdbFMax(vHi, v);
      vBad = vdbFMulAdd(v, zero, vBad);
    }
    vdbFStore(aLo, vLo);
    vdbFStore(aHi, vHi);
    for(j=0; j<VDB_F_LANES; j++){
      lo = aLo[j]<lo ? aLo[j] : lo;
      hi = aHi[j]>hi ? aHi[j] : hi;
    }
    bad = vdbReduceF32(vBad);
  }
  for(; i<n; i++){
    lo = x[i]<lo ? x[i] : lo;
    hi = x[i]>hi ? x[i] : hi;
    bad += x[i]*0.0f;
  }
  *pLo = lo;
  *pHi = hi;
  return !isnan(bad);
}

/* The levels' own width: 8 lanes at the AVX2 and AVX-512 levels alike
** (this simde has no 512-bit float to int32 conversion, and coding is not
** the search's hot loop), 4 otherwise. vdbLevStoreBytes writes the lanes,
** each within 0..255, as bytes: the packs work within each 128-bit half,
** whose first 4 bytes then hold that half's lanes. */
#if defined(__AVX2__)
typedef simde__m256 VdbLevF;
typedef simde__m256i VdbLevI;
# define VDB_LEV_LANES       8
# define vdbLevLoad(p)       simde_mm256_loadu_ps(p)
# define vdbLevSet1(x)       simde_mm256_set1_ps(x)
# define vdbLevSub(a,b)      simde_mm256_sub_ps(a,b)
# define vdbLevMul(a,b)      simde_mm256_mul_ps(a,b)
# define vdbLevToI32(a)      simde_mm256_cvtps_epi32(a)
# define vdbLevISet1(x)      simde_mm256_set1_epi32(x)
# define vdbLevIMax(a,b)     simde_mm256_max_epi32(a,b)
# define vdbLevIMin(a,b)     simde_mm256_min_epi32(a,b)
# define vdbLevIAdd(a,b)     simde_mm256_add_epi32(a,b)
# define vdbLevIMul(a,b)     simde_mm256_mullo_epi32(a,b)
# define vdbLevIStore(p,v)   simde_mm256_storeu_si256((void*)(p), v)
static void vdbLevStoreBytes(uint8_t *out, VdbLevI v){
  simde__m256i w = simde_mm256_packs_epi32(v, v);
  int32_t half;
  w = simde_mm256_packus_epi16(w, w);
  half = simde_mm_cvtsi128_si32(simde_mm256_castsi256_si128(w));
  memcpy(out, &half, 4);
  half = simde_mm_cvtsi128_si32(simde_mm256_extracti128_si256(w, 1));
  memcpy(out+4, &half, 4);
}
#else
typedef simde__m128 VdbLevF;
typedef simde__m128i VdbLevI;
# define VDB_LEV_LANES       4
# define vdbLevLoad(p)       simde_mm_loadu_ps(p)
# define vdbLevSet1(x)       simde_mm_set1_ps(x)
# define vdbLevSub(a,b)      simde_mm_sub_ps(a,b)
# define vdbLevMul(a,b)      simde_mm_mul_ps(a,b)
# define vdbLevToI32(a)      simde_mm_cvtps_epi32(a)
# define vdbLevISet1(x)      simde_mm_set1_epi32(x)
# define vdbLevIMax(a,b)     simde_mm_max_epi32(a,b)
# define vdbLevIMin(a,b)     simde_mm_min_epi32(a,b)
# define vdbLevIAdd(a,b)     simde_mm_add_epi32(a,b)
# define vdbLevIMul(a,b)     simde_mm_mullo_epi32(a,b)
# define vdbLevIStore(p,v)   simde_mm_storeu_si128((void*)(p), v)
static void vdbLevStoreBytes(uint8_t *out, VdbLevI v){
  simde__m128i w = simde_mm_packs_epi32(v, v);
  int32_t word;
  w = simde_mm_packus_epi16(w, w);
  word = simde_mm_cvtsi128_si32(w);
  memcpy(out, &word, 4);
}
#endif

/* Level of each element, (x[i]-lo)*inv rounded to nearest (ties to even:
** the conversion's rounding in the default mode, as lrintf) and clamped
** to 0..255, into out; returns their sum and *pSumSq the sum of their
** squares. The int32 lanes cannot overflow: VDB_MAX_DIMS (8192) squares of
** at most 255^2 sum to less than 2^31 even in one lane. */
static int64_t vdbF32Levels(const float *x, size_t n, float lo, float inv, uint8_t *out,
                            int64_t *pSumSq){
  int64_t sum = 0, sumSq = 0;
  size_t i = 0;
  if( n>=VDB_LEV_LANES ){
    const VdbLevF vLo = vdbLevSet1(lo), vInv = vdbLevSet1(inv);
    const VdbLevI zero = vdbLevISet1(0), top = vdbLevISet1(255);
    VdbLevI acc = zero, accSq = zero;
    int32_t lane[VDB_LEV_LANES];
    int j;
    for(; i+VDB_LEV_LANES<=n; i+=VDB_LEV_LANES){
      VdbLevI v = vdbLevToI32(vdbLevMul(vdbLevSub(vdbLevLoad(x+i), vLo), vInv));
      v = vdbLevIMin(vdbLevIMax(v, zero), top);
      vdbLevStoreBytes(out+i, v);
      acc = vdbLevIAdd(acc, v);
      accSq = vdbLevIAdd(accSq, vdbLevIMul(v, v));
    }
    vdbLevIStore(lane, acc);
    for(j=0; j<VDB_LEV_LANES; j++) sum += lane[j];
    vdbLevIStore(lane, accSq);
    for(j=0; j<VDB_LEV_LANES; j++) sumSq += lane[j];
  }
  for(; i<n; i++){
    int level = vdbGridLevel((x[i] - lo)*inv);
    out[i] = (uint8_t)level;
    sum += level;
    sumSq += level*level;
  }
  *pSumSq = sumSq;
  return sum;
}

const VdbKernels VDB_KERNEL_TABLE = {
  VDB_KERNEL_NAME,
  vdbF32L2Sq, vdbF32Dot, vdbF32L1, vdbF32Cos,
  vdbI8L2Sq, vdbI8Dot, vdbI8L1, vdbI8Cos,
  vdbBitHamming, vdbU8I8Dot, VDB_U7I8_DOT,
  vdbF32Range, vdbF32Levels
};
