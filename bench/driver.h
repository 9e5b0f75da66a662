/*
** What every benchmark driver shares: argument parsing, reading the cached
** data files, and the timed search loop that turns a system's "answer one
** query" callback into recall, QPS with 1 and 2 threads, and latency
** percentiles, printed as one JSON object per line.
**
** The drivers (sqlite_run.c for vectordb and sqlite-vec, hnswlib_run.cpp,
** faiss_run.cpp) are separate processes so that bench/run.py measures each
** system's peak RSS alone and a crash in one cannot take down the run.
** Header-only, usable from C and C++.
**
** Measurement rules, identical for every system:
**   - one query at a time (batch size 1), k results, ids 0-based;
**   - before timing a setting, one untimed pass over all queries (warms
**     caches the way a long-running application's would be warm);
**   - each setting is timed `repeats` times; QPS is the median pass;
**     latency percentiles pool every timed query;
**   - the threaded figure runs `threads` threads, each with its own
**     per-thread state (its own connection for SQLite systems), splitting
**     the queries between them; QPS is total queries over wall time, median
**     of `repeats` passes.
*/
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <pthread.h>
#include <sys/resource.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- arguments: NAME=VALUE pairs after the mode word ------------------- */
static inline const char *benchArg(int argc, char **argv, const char *zName, const char *zDefault){
  size_t n = strlen(zName);
  for(int i=1; i<argc; i++){
    if( strncmp(argv[i], zName, n)==0 && argv[i][n]=='=' ) return argv[i]+n+1;
  }
  if( zDefault==NULL ){
    fprintf(stderr, "missing argument %s=...\n", zName);
    exit(2);
  }
  return zDefault;
}

static inline long benchArgInt(int argc, char **argv, const char *zName, const char *zDefault){
  return strtol(benchArg(argc, argv, zName, zDefault), NULL, 10);
}

/* A comma-separated list of integers; returns the count. */
static inline int benchIntList(const char *z, int *aOut, int nMax){
  int n = 0;
  while( *z && n<nMax ){
    aOut[n++] = (int)strtol(z, (char**)&z, 10);
    if( *z==',' ) z++;
  }
  return n;
}

static inline double benchNow(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec*1e-9;
}

/* The whole of a file, or exit. *pnByte receives its size. */
static inline void *benchReadFile(const char *zPath, size_t *pnByte){
  FILE *f = fopen(zPath, "rb");
  long n;
  void *p;
  if( f==NULL ){ perror(zPath); exit(1); }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc(n>0 ? (size_t)n : 1);
  if( p==NULL || fread(p, 1, (size_t)n, f)!=(size_t)n ){ perror(zPath); exit(1); }
  fclose(f);
  *pnByte = (size_t)n;
  return p;
}

static inline long long benchFileSize(const char *zPath){
  FILE *f = fopen(zPath, "rb");
  long long n;
  if( f==NULL ) return -1;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fclose(f);
  return n;
}

/* Prints the process's peak resident set size, for bench/run.py: VmHWM,
** the high-water mark of this program's own address space. Not
** getrusage's ru_maxrss: Linux carries that across exec, so a driver
** started by a Python holding gigabytes of data reported Python's size. */
static inline int benchReportRss(int rc){
  FILE *f = fopen("/proc/self/status", "r");
  char zLine[256];
  long long kb = -1;
  while( f && fgets(zLine, sizeof(zLine), f) ){
    if( strncmp(zLine, "VmHWM:", 6)==0 ){ kb = atoll(zLine+6); break; }
  }
  if( f ) fclose(f);
  if( kb>=0 ) printf("{\"peak_rss_mb\": %.1f, \"rss_source\": \"VmHWM\"}\n", (double)kb/1024.0);
  return rc;
}

/* ---- the search loop ---------------------------------------------------- */
typedef struct BenchSystem BenchSystem;
struct BenchSystem {
  void *pSys;
  /* Per-thread state (e.g. a database connection); NULL on failure. */
  void *(*xOpen)(void *pSys, int iThread);
  /* Make `setting` (ef_search, ...) current for this state. Called from
  ** the main thread, before the threads that use the state start. */
  int (*xSetting)(void *pSys, void *pState, int setting);
  /* Answer one query: write up to k 0-based ids, return how many, or -1. */
  int (*xSearch)(void *pState, const float *q, int k, int64_t *aId);
  void (*xClose)(void *pState);
};

typedef struct BenchQueries {
  const float *aQuery;      /* nQuery x dim */
  int nQuery, dim;
  const int32_t *aTruth;    /* nQuery x truthK exact neighbours, 0-based */
  int truthK, k;
} BenchQueries;

typedef struct BenchWorker {
  const BenchSystem *pSystem;
  const BenchQueries *pQ;
  void *pState;
  int iFirst, nStride;      /* queries iFirst, iFirst+nStride, ... */
  double *aLatency;         /* per query, or NULL when not wanted */
  long nHit;
  int rc;
  pthread_barrier_t *pBarrier;
  int nPass;                /* timed passes, each between two barriers */
} BenchWorker;

static inline int benchCompareDouble(const void *a, const void *b){
  double x = *(const double*)a, y = *(const double*)b;
  return (x>y) - (x<y);
}

static inline double benchMedian(double *a, int n){
  qsort(a, (size_t)n, sizeof(double), benchCompareDouble);
  return n%2 ? a[n/2] : 0.5*(a[n/2-1]+a[n/2]);
}

/* One pass of a worker over its share of the queries. */
static inline void benchPass(BenchWorker *w, int bCount){
  const BenchQueries *q = w->pQ;
  int64_t aId[1024];
  int k = q->k < 1024 ? q->k : 1024;
  for(int i=w->iFirst; i<q->nQuery && w->rc==0; i+=w->nStride){
    double t0 = w->aLatency ? benchNow() : 0.0;
    int n = w->pSystem->xSearch(w->pState, q->aQuery + (size_t)i*q->dim, k, aId);
    if( w->aLatency ) w->aLatency[i] = benchNow() - t0;
    if( n<0 ){ w->rc = 1; break; }
    if( bCount ){
      const int32_t *aTrue = q->aTruth + (size_t)i*q->truthK;
      int nTrue = k < q->truthK ? k : q->truthK;
      for(int j=0; j<n; j++){
        for(int t=0; t<nTrue; t++){
          if( aId[j]==aTrue[t] ){ w->nHit++; break; }
        }
      }
    }
  }
}

static inline void *benchWorkerMain(void *pArg){
  BenchWorker *w = (BenchWorker*)pArg;
  benchPass(w, 0);                             /* warm-up, untimed */
  for(int p=0; p<w->nPass; p++){
    pthread_barrier_wait(w->pBarrier);         /* all start together */
    benchPass(w, 0);
    pthread_barrier_wait(w->pBarrier);         /* main thread stops the clock */
  }
  return NULL;
}

/* Threaded QPS for one setting: median over nPass passes. */
static inline double benchThreaded(const BenchSystem *s, const BenchQueries *q, void **apState,
                            int nThread, int setting, int nPass){
  BenchWorker aW[16];
  pthread_t aT[16];
  pthread_barrier_t barrier;
  double aQps[16];
  int rc = 0;
  if( nThread>16 ) nThread = 16;
  if( nPass>16 ) nPass = 16;
  pthread_barrier_init(&barrier, NULL, (unsigned)nThread+1);
  for(int t=0; t<nThread; t++){
    if( s->xSetting(s->pSys, apState[t], setting) ) return -1.0;
    memset(&aW[t], 0, sizeof(aW[t]));
    aW[t].pSystem = s; aW[t].pQ = q; aW[t].pState = apState[t];
    aW[t].iFirst = t; aW[t].nStride = nThread;
    aW[t].pBarrier = &barrier; aW[t].nPass = nPass;
    pthread_create(&aT[t], NULL, benchWorkerMain, &aW[t]);
  }
  for(int p=0; p<nPass; p++){
    double t0;
    pthread_barrier_wait(&barrier);
    t0 = benchNow();
    pthread_barrier_wait(&barrier);
    aQps[p] = q->nQuery / (benchNow() - t0);
  }
  for(int t=0; t<nThread; t++){
    pthread_join(aT[t], NULL);
    rc |= aW[t].rc;
  }
  pthread_barrier_destroy(&barrier);
  return rc ? -1.0 : benchMedian(aQps, nPass);
}

/*
** Runs every setting and prints one JSON line per setting:
**   {"setting": S, "recall": R, "qps": Q1, "p50_ms": .., "p99_ms": ..,
**    "qps_threads": Q2, "threads": T}
** Returns non-zero if the system failed a query.
*/
static inline int benchSearchAll(const BenchSystem *s, const BenchQueries *q, const int *aSetting,
                          int nSetting, int nPass, int nThread){
  void *apState[16];
  double *aLat = (double*)malloc(sizeof(double)*(size_t)q->nQuery*(size_t)nPass);
  double *aOne = (double*)malloc(sizeof(double)*(size_t)q->nQuery);
  int nState = nThread>1 ? nThread : 1;
  if( nState>16 ) nState = 16;
  if( aLat==NULL || aOne==NULL ) return 1;
  for(int t=0; t<nState; t++){
    apState[t] = s->xOpen(s->pSys, t);
    if( apState[t]==NULL ) return 1;
  }
  for(int si=0; si<nSetting; si++){
    BenchWorker w;
    double aQps[16], qpsThreads = 0.0;
    int passes = nPass>16 ? 16 : nPass;
    memset(&w, 0, sizeof(w));
    w.pSystem = s; w.pQ = q; w.pState = apState[0]; w.nStride = 1;
    if( s->xSetting(s->pSys, apState[0], aSetting[si]) ) return 1;
    benchPass(&w, 1);                          /* warm-up, and recall */
    if( w.rc ) return 1;
    for(int p=0; p<passes; p++){
      double t0 = benchNow();
      w.aLatency = aOne;
      benchPass(&w, 0);
      aQps[p] = q->nQuery / (benchNow() - t0);
      memcpy(aLat + (size_t)p*q->nQuery, aOne, sizeof(double)*(size_t)q->nQuery);
    }
    if( w.rc ) return 1;
    if( nThread>1 ){
      qpsThreads = benchThreaded(s, q, apState, nState, aSetting[si], passes);
      if( qpsThreads<0 ) return 1;
    }
    {
      size_t nLat = (size_t)q->nQuery*(size_t)passes;
      int nTrue = q->k < q->truthK ? q->k : q->truthK;
      qsort(aLat, nLat, sizeof(double), benchCompareDouble);
      printf("{\"setting\": %d, \"recall\": %.4f, \"qps\": %.2f, \"p50_ms\": %.4f, "
             "\"p99_ms\": %.4f, \"qps_threads\": %.2f, \"threads\": %d}\n",
             aSetting[si], (double)w.nHit/((double)nTrue*q->nQuery), benchMedian(aQps, passes),
             aLat[nLat/2]*1e3, aLat[(nLat*99)/100]*1e3, qpsThreads, nThread);
      fflush(stdout);
    }
  }
  for(int t=0; t<nState; t++) s->xClose(apState[t]);
  free(aLat);
  free(aOne);
  return 0;
}

/* Loads queries and ground truth named by the common arguments. */
static inline void benchLoadQueries(int argc, char **argv, BenchQueries *q, int dim){
  size_t nQ, nT;
  int nq = (int)benchArgInt(argc, argv, "nq", "0");
  q->aQuery = (const float*)benchReadFile(benchArg(argc, argv, "queries", NULL), &nQ);
  q->aTruth = (const int32_t*)benchReadFile(benchArg(argc, argv, "truth", NULL), &nT);
  q->dim = dim;
  q->truthK = (int)benchArgInt(argc, argv, "truthk", "100");
  q->k = (int)benchArgInt(argc, argv, "k", "10");
  q->nQuery = (int)(nQ / (sizeof(float)*(size_t)dim));
  if( nT / (sizeof(int32_t)*(size_t)q->truthK) < (size_t)q->nQuery ){
    fprintf(stderr, "ground truth has fewer rows than queries\n");
    exit(1);
  }
  if( nq>0 && nq<q->nQuery ) q->nQuery = nq;
}

#endif /* BENCH_DRIVER_H */
