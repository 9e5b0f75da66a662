/*
** Every kernel level against a double-precision oracle, over all lengths
** 1..1024 and a sample up to 8192, with inputs deliberately misaligned.
** Integer kernels must be exact; float kernels must agree within a
** relative 1e-5 of the sum of the magnitudes of the terms (the bound a
** float32 accumulation of that length can promise).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "vdb_kernels.h"

#define MAXN 8192
/* Float inputs are offset by 4 and 8 bytes from a 64-byte boundary: legal
** float alignment, but misaligned for every vector width. */
static _Alignas(64) unsigned char bufA[MAXN*4 + 64];
static _Alignas(64) unsigned char bufB[MAXN*4 + 64];
static _Alignas(64) unsigned char bufU7[MAXN + 64];
#define u7Levels (bufU7 + 3)

static int closeTo(double got, double want, double scale){
  return fabs(got - want) <= 1e-5 * scale + 1e-30;
}

static void checkF32(const VdbKernels *k, size_t n){
  float *a = (float*)malloc(n*sizeof(float)), *b = (float*)malloc(n*sizeof(float));
  float *ua = (float*)(void*)(bufA + 4), *ub = (float*)(void*)(bufB + 8);
  double l2 = 0, l2s = 0, dot = 0, dots = 0, l1 = 0, na = 0, nb = 0;
  size_t i;
  for(i=0; i<n; i++){ a[i] = tuRandFloat()*4; b[i] = tuRandFloat()*4; }
  for(i=0; i<n; i++){
    double d = (double)a[i] - b[i];
    l2 += d*d; l1 += fabs(d);
    dot += (double)a[i]*b[i]; dots += fabs((double)a[i]*b[i]);
    na += (double)a[i]*a[i]; nb += (double)b[i]*b[i];
  }
  l2s = l2;
  /* Copy into misaligned storage: kernels must cope with any alignment. */
  memcpy(ua, a, n*sizeof(float));
  memcpy(ub, b, n*sizeof(float));
  {
    float gL2 = k->f32L2Sq(ua, ub, n);
    float gDot = k->f32Dot(ua, ub, n);
    float gL1 = k->f32L1(ua, ub, n);
    VdbCosParts c = k->f32Cos(ua, ub, n);
    CHECK(closeTo(gL2, l2, l2s), "%s f32L2Sq n=%zu got %g want %g", k->zName, n, gL2, l2);
    CHECK(closeTo(gDot, dot, dots), "%s f32Dot n=%zu got %g want %g", k->zName, n, gDot, dot);
    CHECK(closeTo(gL1, l1, l1), "%s f32L1 n=%zu got %g want %g", k->zName, n, gL1, l1);
    CHECK(closeTo(c.dot, dot, dots) && closeTo(c.normA, na, na) && closeTo(c.normB, nb, nb),
          "%s f32Cos n=%zu", k->zName, n);
  }
  free(a); free(b);
}

static void checkI8(const VdbKernels *k, size_t n){
  int8_t *a = (int8_t*)(bufA + 1), *b = (int8_t*)(bufB + 2);
  int64_t l2 = 0, dot = 0, l1 = 0, na = 0, nb = 0;
  size_t i;
  for(i=0; i<n; i++){
    /* Include the extremes -128 and 127, which stress int16 widening. */
    a[i] = (int8_t)(tuRand() % 7 == 0 ? -128 : (int)(tuRand() % 256) - 128);
    b[i] = (int8_t)(tuRand() % 7 == 0 ? 127 : (int)(tuRand() % 256) - 128);
  }
  for(i=0; i<n; i++){
    int d = a[i] - b[i];
    l2 += d*d; l1 += abs(d); dot += a[i]*b[i]; na += a[i]*a[i]; nb += b[i]*b[i];
  }
  CHECK(k->i8L2Sq(a, b, n)==l2, "%s i8L2Sq n=%zu", k->zName, n);
  CHECK(k->i8Dot(a, b, n)==dot, "%s i8Dot n=%zu", k->zName, n);
  CHECK(k->i8L1(a, b, n)==l1, "%s i8L1 n=%zu", k->zName, n);
  {
    /* a's bytes read as unsigned: 0..255 against -128..127. */
    const uint8_t *u = (const uint8_t*)a;
    int64_t udot = 0;
    for(i=0; i<n; i++) udot += (int)u[i]*b[i];
    CHECK(k->u8i8Dot(u, b, n)==udot, "%s u8i8Dot n=%zu", k->zName, n);
    /* u's top 7 bits, at an odd offset (no alignment), for u7i8Dot. */
    udot = 0;
    for(i=0; i<n; i++){ u7Levels[i] = (uint8_t)(u[i]>>1); udot += (int)u7Levels[i]*b[i]; }
    CHECK(k->u7i8Dot(u7Levels, b, n)==udot, "%s u7i8Dot n=%zu", k->zName, n);
  }
  {
    VdbCosParts c = k->i8Cos(a, b, n);
    CHECK(c.dot==(double)dot && c.normA==(double)na && c.normB==(double)nb,
          "%s i8Cos n=%zu", k->zName, n);
  }
}

static void checkBits(const VdbKernels *k, size_t nByte){
  uint8_t *a = bufA + 5, *b = bufB + 3;
  uint64_t want = 0;
  size_t i;
  for(i=0; i<nByte; i++){ a[i] = (uint8_t)tuRand(); b[i] = (uint8_t)tuRand(); }
  for(i=0; i<nByte*8; i++){
    want += ((a[i/8] >> (i%8)) & 1) != ((b[i/8] >> (i%8)) & 1);
  }
  CHECK(k->bitHamming(a, b, nByte)==want, "%s bitHamming nByte=%zu", k->zName, nByte);
}

/* The largest int8 magnitudes over many blocks exercise the int32 lane
** flushing: a wrap would show as a wrong exact total. */
static void checkI8Extremes(const VdbKernels *k){
  size_t n = MAXN, i;
  int8_t *a = (int8_t*)bufA, *b = (int8_t*)bufB;
  for(i=0; i<n; i++){ a[i] = -128; b[i] = 127; }
  CHECK(k->i8L2Sq(a, b, n)==(int64_t)n*255*255, "%s i8L2Sq extremes", k->zName);
  CHECK(k->i8L1(a, b, n)==(int64_t)n*255, "%s i8L1 extremes", k->zName);
  CHECK(k->i8Dot(a, a, n)==(int64_t)n*128*128, "%s i8Dot extremes", k->zName);
}

/* u8 x s8 at its extremes over more elements than the VNNI kernel adds
** into its int32 lanes before flushing them (1,024 steps of 128). */
static void checkU8I8Extremes(const VdbKernels *k){
  size_t n = 300001, i;
  uint8_t *a = (uint8_t*)malloc(n);
  int8_t *b = (int8_t*)malloc(n);
  CHECK(a && b, "malloc");
  if( a && b ){
    for(i=0; i<n; i++){ a[i] = 255; b[i] = -128; }
    CHECK(k->u8i8Dot(a, b, n)==-(int64_t)n*255*128, "%s u8i8Dot extremes", k->zName);
    for(i=0; i<n; i++) b[i] = 127;
    CHECK(k->u8i8Dot(a, b, n)==(int64_t)n*255*127, "%s u8i8Dot extremes", k->zName);
  }
  free(a);
  free(b);
}

/* u7i8Dot at its extremes, 127 against -128 and 127, over more steps than
** an int32 lane holds before it is added up (VDB_U7_FLUSH steps of 64
** bytes at most, vdb_kernels_simd.c). */
static void checkU7I8Extremes(const VdbKernels *k){
  size_t n = 2*32768*64 + 17;
  uint8_t *a = (uint8_t*)malloc(n);
  int8_t *b = (int8_t*)malloc(n);
  CHECK(a && b, "malloc");
  if( a && b ){
    memset(a, 127, n);
    memset(b, -128, n);
    CHECK(k->u7i8Dot(a, b, n)==-(int64_t)n*127*128, "%s u7i8Dot extremes", k->zName);
    memset(b, 127, n);
    CHECK(k->u7i8Dot(a, b, n)==(int64_t)n*127*127, "%s u7i8Dot extremes", k->zName);
  }
  free(a);
  free(b);
}

/* The int8 code's grid against an oracle: the range exactly (and the
** report of a NaN or an infinity wherever it sits), the levels exactly,
** ties to even included (t = k + 0.5 exactly, which the data below
** hits at every half level), clamped at both ends, with their sums. */
static void checkGrid(const VdbKernels *k, size_t n){
  float *x = (float*)(void*)(bufA + 4);
  uint8_t *out = bufB + 3;
  float lo, hi, wantLo, wantHi, inv;
  int64_t sum, sumSq, wantSum = 0, wantSq = 0;
  size_t i;
  int kind = (int)(tuRand() % 3);
  for(i=0; i<n; i++){
    /* Half-integer levels (exact ties) or arbitrary floats, a few just
    ** outside 0..255 to be clamped. */
    x[i] = kind==0 ? (float)(tuRand() % 520)*0.5f - 2.0f : tuRandFloat()*300.0f - 20.0f;
  }
  wantLo = wantHi = x[0];
  for(i=0; i<n; i++){
    if( x[i]<wantLo ) wantLo = x[i];
    if( x[i]>wantHi ) wantHi = x[i];
  }
  CHECK(k->f32Range(x, n, &lo, &hi)==1 && lo==wantLo && hi==wantHi,
        "%s f32Range n=%zu got %g..%g want %g..%g", k->zName, n, lo, hi, wantLo, wantHi);
  /* lo 0 and inv 1: the element itself is the level before rounding. */
  inv = kind==2 ? 0.75f : 1.0f;
  sum = k->f32Levels(x, n, 0.0f, inv, out, &sumSq);
  for(i=0; i<n; i++){
    double t = (double)(x[i]*inv), r = floor(t), want;
    if( t - r > 0.5 || (t - r == 0.5 && fmod(r, 2.0) != 0) ) r += 1;
    want = r<0 ? 0 : r>255 ? 255 : r;
    if( out[i]!=(uint8_t)want ){
      CHECK(0, "%s f32Levels n=%zu element %zu: %g gave %d, want %g", k->zName, n, i, t, out[i], want);
      break;
    }
    wantSum += (int64_t)want;
    wantSq += (int64_t)want*(int64_t)want;
  }
  CHECK(i<n || (sum==wantSum && sumSq==wantSq), "%s f32Levels n=%zu sums %lld %lld want %lld %lld",
        k->zName, n, (long long)sum, (long long)sumSq, (long long)wantSum, (long long)wantSq);
  if( n>0 ){
    size_t at = tuRand() % n;
    float keep = x[at];
    x[at] = (tuRand() % 2) ? NAN : (tuRand() % 2) ? INFINITY : -INFINITY;
    CHECK(k->f32Range(x, n, &lo, &hi)==0, "%s f32Range n=%zu missed %g at %zu", k->zName, n, x[at], at);
    x[at] = keep;
  }
}

int main(void){
  int level, nLevels = 0;
  for(level=0; level<VDB_KLEVEL_COUNT; level++){
    const VdbKernels *k = vdbKernelsAt((VdbKernelLevel)level);
    size_t n;
    if( !k ){ printf("level %d not supported on this CPU\n", level); continue; }
    nLevels++;
    for(n=0; n<=1024; n++){ checkF32(k, n); checkI8(k, n); }
    for(n=1; n<=1024; n++) checkGrid(k, n);
    checkGrid(k, MAXN);
    for(n=1; n<=1024; n++) checkBits(k, n);
    for(n=1025; n<=MAXN; n += 1 + (size_t)(tuRand() % 97)){ checkF32(k, n); checkI8(k, n); checkBits(k, n); }
    checkF32(k, MAXN); checkI8(k, MAXN); checkI8Extremes(k); checkU8I8Extremes(k); checkU7I8Extremes(k);
    printf("kernel level %s checked\n", k->zName);
  }
  CHECK(vdbKernelsAt(VDB_KLEVEL_SCALAR)!=0 && vdbKernelsAt(VDB_KLEVEL_BASE)!=0, "scalar and base always exist");
  CHECK(vdbKernelsBest()!=0, "a best level exists");
  CHECK(nLevels>=2, "at least two levels ran");
  return tuFinish();
}
