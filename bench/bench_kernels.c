/*
** Kernel micro-benchmark: nanoseconds per distance and GB/s of vector data
** for every kernel level this CPU runs, side by side with the scalar
** reference, so each SIMD speed-up is a ratio measured in the same run.
**
** One query against 256 base vectors (hot in cache: this measures the
** arithmetic, not memory), best of 5 timed rounds of ~20 ms each.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vdb_kernels.h"

#define NBASE 256

static double nowSeconds(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "int8 coding" is not a distance: it codes each base vector on its grid
** (f32Range, then f32Levels), as every query and every node a walk meets
** for the first time is coded. */
typedef enum { K_F32_L2, K_F32_DOT, K_F32_COS, K_F32_L1, K_F32_GRID, K_I8_L2, K_I8_DOT, K_U8I8_DOT,
               K_U7I8_DOT, K_BIT_HAM, K_COUNT } KernelId;
static const char *azKernel[K_COUNT] = {
  "f32 l2sq", "f32 dot", "f32 cosine", "f32 l1", "int8 coding", "int8 l2sq", "int8 dot", "u8 x i8 dot",
  "u7 x i8 dot", "bit hamming"
};
static unsigned char aLevels[8192];

/* Bytes of one vector of d dimensions for the kernel. */
static size_t vectorBytes(KernelId id, size_t d){
  if( id<=K_F32_GRID ) return d*4;
  if( id<=K_U7I8_DOT ) return d;
  return d/8;
}

static volatile double sink;

/* One pass of the query against every base vector. */
static void onePass(const VdbKernels *k, KernelId id, const void *q, const void *base, size_t d){
  size_t i, stride = vectorBytes(id, d);
  double acc = 0;
  for(i=0; i<NBASE; i++){
    const void *b = (const char*)base + i*stride;
    switch( id ){
      case K_F32_L2:  acc += k->f32L2Sq((const float*)q, (const float*)b, d); break;
      case K_F32_DOT: acc += k->f32Dot((const float*)q, (const float*)b, d); break;
      case K_F32_COS: acc += k->f32Cos((const float*)q, (const float*)b, d).dot; break;
      case K_F32_L1:  acc += k->f32L1((const float*)q, (const float*)b, d); break;
      case K_F32_GRID: {
        float lo, hi;
        int64_t sumSq;
        if( k->f32Range((const float*)b, d, &lo, &hi) && hi>lo ){
          acc += (double)k->f32Levels((const float*)b, d, lo, 255.0f/(hi - lo), aLevels, &sumSq);
        }
        break;
      }
      case K_I8_L2:   acc += (double)k->i8L2Sq((const int8_t*)q, (const int8_t*)b, d); break;
      case K_I8_DOT:  acc += (double)k->i8Dot((const int8_t*)q, (const int8_t*)b, d); break;
      case K_U8I8_DOT: acc += (double)k->u8i8Dot((const uint8_t*)q, (const int8_t*)b, d); break;
      case K_U7I8_DOT: acc += (double)k->u7i8Dot((const uint8_t*)q, (const int8_t*)b, d); break;
      default:        acc += (double)k->bitHamming((const uint8_t*)q, (const uint8_t*)b, d/8); break;
    }
  }
  sink += acc;
}

/* Best nanoseconds per distance over 5 rounds. */
static double measure(const VdbKernels *k, KernelId id, const void *q, const void *base, size_t d){
  double best = 1e30;
  int round;
  long passes = 1;
  /* Calibrate so a round lasts about 20 ms. */
  for(;;){
    double t0 = nowSeconds(), t;
    long p;
    for(p=0; p<passes; p++) onePass(k, id, q, base, d);
    t = nowSeconds() - t0;
    if( t>0.02 ) break;
    passes *= 2;
  }
  for(round=0; round<5; round++){
    double t0 = nowSeconds(), ns;
    long p;
    for(p=0; p<passes; p++) onePass(k, id, q, base, d);
    ns = (nowSeconds() - t0) * 1e9 / ((double)passes * NBASE);
    if( ns<best ) best = ns;
  }
  return best;
}

int main(void){
  static const size_t aDim[] = {128, 384, 768, 1536};
  const VdbKernels *aLevel[VDB_KLEVEL_COUNT];
  int nLevel = 0, l, id;
  size_t di;
  for(l=0; l<VDB_KLEVEL_COUNT; l++){
    const VdbKernels *k = vdbKernelsAt((VdbKernelLevel)l);
    if( k ) aLevel[nLevel++] = k;
  }
  printf("vectordb kernel benchmark: levels on this CPU:");
  for(l=0; l<nLevel; l++) printf(" %s", aLevel[l]->zName);
  printf(" (run-time choice: %s)\n", vdbKernelsBest()->zName);
  printf("ns per distance (GB/s of base vectors read), ratio = scalar ns / level ns\n\n");
  printf("%-13s %5s", "kernel", "dim");
  for(l=0; l<nLevel; l++) printf(" %20s", aLevel[l]->zName);
  for(l=1; l<nLevel; l++) printf(" %8s", aLevel[l]->zName);
  printf("\n");
  for(id=0; id<K_COUNT; id++){
    for(di=0; di<sizeof(aDim)/sizeof(aDim[0]); di++){
      size_t d = aDim[di], nb = vectorBytes((KernelId)id, d), i;
      unsigned char *q = (unsigned char*)aligned_alloc(64, nb + 64);
      unsigned char *base = (unsigned char*)aligned_alloc(64, nb*NBASE + 64);
      double ns[VDB_KLEVEL_COUNT];
      /* Small random values: valid floats and int8s alike. */
      srand(42);
      if( id<=K_F32_GRID ){
        for(i=0; i<d; i++) ((float*)q)[i] = (float)rand()/RAND_MAX - 0.5f;
        for(i=0; i<d*NBASE; i++) ((float*)base)[i] = (float)rand()/RAND_MAX - 0.5f;
      }else{
        for(i=0; i<nb; i++) q[i] = (unsigned char)rand();
        for(i=0; i<nb*NBASE; i++) base[i] = (unsigned char)rand();
        /* A query's levels for u7i8Dot: 0..127. */
        for(i=0; i<d && id==K_U7I8_DOT; i++) q[i] >>= 1;
      }
      printf("%-13s %5zu", azKernel[id], d);
      for(l=0; l<nLevel; l++){
        ns[l] = measure(aLevel[l], (KernelId)id, q, base, d);
        printf(" %9.1f ns %5.1f GB/s", ns[l], (double)nb / ns[l]);
      }
      for(l=1; l<nLevel; l++) printf(" %7.1fx", ns[0]/ns[l]);
      printf("\n");
      free(q);
      free(base);
    }
  }
  return 0;
}
