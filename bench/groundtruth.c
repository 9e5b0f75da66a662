/*
** Exact top-K neighbours of every query, by brute force: the ground truth
** every recall figure in bench/ is computed against.
**
**   groundtruth BASE.f32 QUERIES.f32 DIM K METRIC THREADS OUT.i32
**
** METRIC is l2 or cosine. Writes K int32 ids (0-based, nearest first, ties
** by lower id) per query. Distances use vectordb's SIMD kernels (the best
** level the CPU has), accumulated in float like every system measured;
** queries are split between THREADS threads.
*/
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "vdb_kernels.h"

typedef struct GtJob {
  const float *aBase, *aQuery;
  float *aBaseNorm;         /* cosine only: |b| per base row */
  size_t nBase, nQuery, dim;
  int k, bCosine, iThread, nThread;
  int32_t *aOut;
} GtJob;

typedef struct GtHit { float d; int32_t id; } GtHit;

/* Worse-first order: the heap root is the hit to evict next. */
static int gtWorse(const GtHit *a, const GtHit *b){
  return a->d > b->d || (a->d==b->d && a->id > b->id);
}

static void gtSiftDown(GtHit *a, int n, int i){
  for(;;){
    int l = 2*i+1, r = l+1, w = i;
    GtHit t;
    if( l<n && gtWorse(&a[l], &a[w]) ) w = l;
    if( r<n && gtWorse(&a[r], &a[w]) ) w = r;
    if( w==i ) return;
    t = a[i]; a[i] = a[w]; a[w] = t;
    i = w;
  }
}

static void gtSiftUp(GtHit *a, int i){
  while( i>0 && gtWorse(&a[i], &a[(i-1)/2]) ){
    GtHit t = a[i]; a[i] = a[(i-1)/2]; a[(i-1)/2] = t;
    i = (i-1)/2;
  }
}

static int gtCompareHit(const void *pa, const void *pb){
  const GtHit *a = (const GtHit*)pa, *b = (const GtHit*)pb;
  return gtWorse(a, b) - gtWorse(b, a);
}

static void *gtWorker(void *pArg){
  GtJob *j = (GtJob*)pArg;
  const VdbKernels *kern = vdbKernelsBest();
  GtHit *heap = (GtHit*)malloc(sizeof(GtHit)*(size_t)j->k);
  for(size_t q=(size_t)j->iThread; q<j->nQuery; q+=(size_t)j->nThread){
    const float *pq = j->aQuery + q*j->dim;
    float qNorm = 0.0f;
    int n = 0;
    if( j->bCosine ) qNorm = sqrtf(kern->f32Dot(pq, pq, j->dim));
    for(size_t b=0; b<j->nBase; b++){
      const float *pb = j->aBase + b*j->dim;
      GtHit h;
      if( j->bCosine ){
        float den = qNorm * j->aBaseNorm[b];
        h.d = den>0.0f ? 1.0f - kern->f32Dot(pq, pb, j->dim)/den : 1.0f;
      }else{
        h.d = kern->f32L2Sq(pq, pb, j->dim);
      }
      h.id = (int32_t)b;
      if( n<j->k ){
        heap[n] = h;
        gtSiftUp(heap, n++);
      }else if( gtWorse(&heap[0], &h) ){
        heap[0] = h;
        gtSiftDown(heap, n, 0);
      }
    }
    qsort(heap, (size_t)n, sizeof(GtHit), gtCompareHit);
    for(int i=0; i<j->k; i++) j->aOut[q*(size_t)j->k + (size_t)i] = i<n ? heap[i].id : -1;
  }
  free(heap);
  return NULL;
}

int main(int argc, char **argv){
  size_t nBaseByte, nQueryByte, dim;
  GtJob aJob[64];
  pthread_t aThread[64];
  int k, nThread, bCosine;
  const float *aBase, *aQuery;
  float *aNorm = NULL;
  int32_t *aOut;
  FILE *out;
  if( argc!=8 ){
    fprintf(stderr, "usage: %s BASE QUERIES DIM K l2|cosine THREADS OUT\n", argv[0]);
    return 2;
  }
  dim = strtoul(argv[3], NULL, 10);
  k = atoi(argv[4]);
  bCosine = strcmp(argv[5], "cosine")==0;
  if( !bCosine && strcmp(argv[5], "l2")!=0 ){
    fprintf(stderr, "unknown metric %s\n", argv[5]);
    return 2;
  }
  nThread = atoi(argv[6]);
  if( nThread<1 ) nThread = 1;
  if( nThread>64 ) nThread = 64;
  aBase = (const float*)benchReadFile(argv[1], &nBaseByte);
  aQuery = (const float*)benchReadFile(argv[2], &nQueryByte);
  aOut = (int32_t*)malloc(sizeof(int32_t)*(size_t)k*(nQueryByte/(sizeof(float)*dim)) + 1);
  if( bCosine ){
    const VdbKernels *kern = vdbKernelsBest();
    size_t nBase = nBaseByte/(sizeof(float)*dim);
    aNorm = (float*)malloc(sizeof(float)*nBase + 1);
    for(size_t b=0; b<nBase; b++) aNorm[b] = sqrtf(kern->f32Dot(aBase+b*dim, aBase+b*dim, dim));
  }
  for(int t=0; t<nThread; t++){
    GtJob *j = &aJob[t];
    j->aBase = aBase; j->aQuery = aQuery; j->aBaseNorm = aNorm;
    j->nBase = nBaseByte/(sizeof(float)*dim); j->nQuery = nQueryByte/(sizeof(float)*dim);
    j->dim = dim; j->k = k; j->bCosine = bCosine;
    j->iThread = t; j->nThread = nThread; j->aOut = aOut;
    pthread_create(&aThread[t], NULL, gtWorker, j);
  }
  for(int t=0; t<nThread; t++) pthread_join(aThread[t], NULL);
  out = fopen(argv[7], "wb");
  if( out==NULL
   || fwrite(aOut, sizeof(int32_t)*(size_t)k, aJob[0].nQuery, out)!=aJob[0].nQuery
   || fclose(out)!=0 ){
    perror(argv[7]);
    return 1;
  }
  fprintf(stderr, "groundtruth: %zu queries x %zu base rows, top %d, %s, kernels %s, %d threads\n",
          aJob[0].nQuery, aJob[0].nBase, k, argv[5], vdbKernelsBest()->zName, nThread);
  return 0;
}
