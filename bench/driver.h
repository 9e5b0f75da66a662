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
**   - before timing a setting, untimed passes over all queries (warms
**     caches the way a long-running application's would be warm): two on
**     the first state, the first of which counts recall, and with several
**     threads one threaded pass, so that every thread's state is warm too;
**   - each setting is timed `repeats` times; QPS is the median pass;
**     a pass goes over the queries as many times as the second warm-up
**     pass took to fill `pass_s` seconds (at least once), so that a fast system's pass
**     is not a fraction of a second that one hiccup of a shared host
**     decides; latency percentiles pool every query of the first round
**     of each timed single-thread pass;
**   - the threaded figure runs `threads` threads, each with its own
**     per-thread state (its own connection for SQLite systems), splitting
**     the queries between them; QPS is total queries over wall time, median
**     of `repeats` passes;
**   - only one pass is timed at a time, on the whole machine: the drivers
**     run one after another, or (mode "serve", benchServe) bench/run.py
**     keeps every ANN system's driver open and asks each for one pass in
**     turn, the first system of each round rotating, so that a change of
**     load on a shared machine falls on all systems alike.
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
#define BENCH_MAX_THREAD 16       /* per-thread states at most */

typedef struct BenchSystem BenchSystem;
struct BenchSystem {
  void *pSys;
  /* Per-thread state (e.g. a database connection); NULL on failure. */
  void *(*xOpen)(void *pSys, int iThread);
  /* Make `setting` (ef_search, ...) current for this state. Called from
  ** the main thread, while no thread uses the state. */
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
  double passSeconds;       /* a timed pass repeats the queries to last this long */
} BenchQueries;

typedef struct BenchWorker {
  const BenchSystem *pSystem;
  const BenchQueries *pQ;
  void *pState;
  int iFirst, nStride;      /* queries iFirst, iFirst+nStride, ... */
  double *aLatency;         /* per query of the first round, or NULL when not wanted */
  int nRound;               /* times over the share (0 counts as 1) */
  long nHit;
  int rc;
  pthread_barrier_t *pBarrier;  /* of a threaded pass, else unused */
  double tStart, tEnd;          /* when its share of a threaded pass ran */
} BenchWorker;

static inline int benchCompareDouble(const void *a, const void *b){
  double x = *(const double*)a, y = *(const double*)b;
  return (x>y) - (x<y);
}

/* Sorts a[0..n-1] in place; n must be at least 1. */
static inline double benchMedian(double *a, int n){
  qsort(a, (size_t)n, sizeof(double), benchCompareDouble);
  return n%2 ? a[n/2] : 0.5*(a[n/2-1]+a[n/2]);
}

/* The worker's share of the queries, once; latencies into aLatency
** unless it is NULL, hits counted with bCount. */
static inline void benchRound(BenchWorker *w, double *aLatency, int bCount){
  const BenchQueries *q = w->pQ;
  int64_t aId[1024];
  int k = q->k < 1024 ? q->k : 1024;
  for(int i=w->iFirst; i<q->nQuery && w->rc==0; i+=w->nStride){
    double t0 = aLatency ? benchNow() : 0.0;
    int n = w->pSystem->xSearch(w->pState, q->aQuery + (size_t)i*q->dim, k, aId);
    if( aLatency ) aLatency[i] = benchNow() - t0;
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

/* One pass of a worker: its share nRound times, the first round's
** latencies kept and hits counted (bCount). */
static inline void benchPass(BenchWorker *w, int bCount){
  benchRound(w, w->aLatency, bCount);
  for(int r=1; r<w->nRound && w->rc==0; r++) benchRound(w, NULL, 0);
}

/* A thread's share of one threaded pass, timed by the thread itself: the
** main thread, blocked in pthread_join, may be woken late on a busy
** machine, so its own clock would miss part of the pass. */
static inline void *benchWorkerMain(void *pArg){
  BenchWorker *w = (BenchWorker*)pArg;
  pthread_barrier_wait(w->pBarrier);           /* all created: start together */
  w->tStart = benchNow();
  benchPass(w, 0);
  w->tEnd = benchNow();
  return NULL;
}

/* One pass over the queries split between nThread threads, thread t on
** apState[t] taking queries t, t+nThread, ..., nRound times: queries per
** second of wall time, from the first thread's start to the last one's
** end (creating and joining the threads is not timed), or -1.0 if a
** query failed. */
static inline double benchThreadPass(const BenchSystem *s, const BenchQueries *q, void **apState,
                                     int nThread, int nRound){
  BenchWorker aW[BENCH_MAX_THREAD];
  pthread_t aT[BENCH_MAX_THREAD];
  pthread_barrier_t barrier;
  double t0 = 0.0, t1 = 0.0;
  int rc = 0;
  if( nThread>BENCH_MAX_THREAD ) nThread = BENCH_MAX_THREAD;
  pthread_barrier_init(&barrier, NULL, (unsigned)nThread);
  for(int t=0; t<nThread; t++){
    memset(&aW[t], 0, sizeof(aW[t]));
    aW[t].pSystem = s; aW[t].pQ = q; aW[t].pState = apState[t];
    aW[t].iFirst = t; aW[t].nStride = nThread; aW[t].nRound = nRound;
    aW[t].pBarrier = &barrier;
    pthread_create(&aT[t], NULL, benchWorkerMain, &aW[t]);
  }
  for(int t=0; t<nThread; t++){
    pthread_join(aT[t], NULL);
    rc |= aW[t].rc;
    if( t==0 || aW[t].tStart<t0 ) t0 = aW[t].tStart;
    if( t==0 || aW[t].tEnd>t1 ) t1 = aW[t].tEnd;
  }
  pthread_barrier_destroy(&barrier);
  return rc ? -1.0 : (double)q->nQuery*(nRound>1 ? nRound : 1) / (t1 - t0);
}

/* Rounds for a timed pass whose single round took tRound seconds: enough
** to fill the queries' passSeconds. */
static inline int benchRounds(const BenchQueries *q, double tRound){
  double n = tRound>0.0 ? q->passSeconds/tRound : 1.0;
  return n<=1.0 ? 1 : n>=1e6 ? 1000000 : (int)n + (n>(int)n);
}

/*
** One system's open states and the passes collected for its current
** setting. Both benchSearchAll (every pass of a setting in a row) and
** benchServe (passes on command, interleaved with other processes') are
** sequences of benchRunSetting, benchRunPass, benchRunThreadPass and
** benchRunReport, so the two paths measure the same way.
*/
typedef struct BenchRun {
  const BenchSystem *pSystem;
  const BenchQueries *pQ;
  void *apState[BENCH_MAX_THREAD];
  int nState;               /* states open: nThread, within 1..BENCH_MAX_THREAD */
  int nThread;              /* threads asked for, as reported */
  int bSetting;             /* true once a setting is current */
  int setting;              /* the current setting */
  long nHit;                /* its warm-up pass's hits, for recall */
  double *aQps; int nQps;   /* its single-thread passes */
  double *aTQps; int nTQps; /* its threaded passes */
  int nRound, nTRound;      /* rounds of the queries per single-thread, threaded pass */
  double *aLat;             /* nQps x nQuery latencies of the passes */
} BenchRun;

/* Opens nThread states (at least one). Non-zero on failure. */
static inline int benchRunOpen(BenchRun *r, const BenchSystem *s, const BenchQueries *q,
                               int nThread){
  memset(r, 0, sizeof(*r));
  r->pSystem = s; r->pQ = q; r->nThread = nThread;
  r->nState = nThread<1 ? 1 : nThread>BENCH_MAX_THREAD ? BENCH_MAX_THREAD : nThread;
  for(int t=0; t<r->nState; t++){
    r->apState[t] = s->xOpen(s->pSys, t);
    if( r->apState[t]==NULL ) return 1;
  }
  return 0;
}

static inline void benchRunClose(BenchRun *r){
  for(int t=0; t<r->nState; t++){
    if( r->apState[t] ) r->pSystem->xClose(r->apState[t]);
  }
  free(r->aQps);
  free(r->aTQps);
  free(r->aLat);
  memset(r, 0, sizeof(*r));
}

static inline double benchRunRecall(const BenchRun *r){
  const BenchQueries *q = r->pQ;
  int nTrue = q->k < q->truthK ? q->k : q->truthK;
  return (double)r->nHit/((double)nTrue*q->nQuery);
}

/* Appends v to a[0..*pn-1], growing it. Non-zero if out of memory. */
static inline int benchAppend(double **pa, int *pn, double v){
  double *a = (double*)realloc(*pa, sizeof(double)*(size_t)(*pn+1));
  if( a==NULL ) return 1;
  a[(*pn)++] = v;
  *pa = a;
  return 0;
}

/*
** Makes `setting` current on every state and warms them with untimed
** passes: state 0 answers every query, counting recall (a long-running
** application's caches would be warm); with several threads, one
** threaded pass warms each thread's state on its share. Their times set
** the rounds of the timed passes (benchRounds). Forgets the passes of
** the previous setting. Non-zero on failure.
*/
static inline int benchRunSetting(BenchRun *r, int setting){
  const BenchSystem *s = r->pSystem;
  BenchWorker w;
  double t0;
  r->bSetting = 0;
  r->nQps = r->nTQps = 0;
  for(int t=0; t<r->nState; t++){
    if( s->xSetting(s->pSys, r->apState[t], setting) ) return 1;
  }
  memset(&w, 0, sizeof(w));
  w.pSystem = s; w.pQ = r->pQ; w.pState = r->apState[0]; w.nStride = 1;
  benchPass(&w, 1);
  if( w.rc ) return 1;
  /* The rounds come from a second untimed pass: the first may have loaded
  ** the index (a lazily loaded graph's first pass at the first setting
  ** took ten times a warm one), which would leave the timed passes a
  ** tenth of pass_s long. It does not count hits: w.nHit stays the first's. */
  t0 = benchNow();
  benchPass(&w, 0);
  if( w.rc ) return 1;
  r->nRound = benchRounds(r->pQ, benchNow() - t0);
  r->nTRound = 1;
  if( r->nThread>1 ){
    double qps = benchThreadPass(s, r->pQ, r->apState, r->nState, 1);
    if( qps<0 ) return 1;
    r->nTRound = benchRounds(r->pQ, r->pQ->nQuery/qps);
  }
  r->setting = setting;
  r->nHit = w.nHit;
  r->bSetting = 1;
  return 0;
}

/* One timed single-thread pass on state 0, keeping every query's
** latency: its QPS, or -1.0 on failure. */
static inline double benchRunPass(BenchRun *r){
  const BenchQueries *q = r->pQ;
  size_t nQ = (size_t)q->nQuery;
  double *aLat = (double*)realloc(r->aLat, sizeof(double)*nQ*(size_t)(r->nQps+1));
  BenchWorker w;
  double t0, qps;
  if( aLat==NULL ) return -1.0;
  r->aLat = aLat;
  memset(&w, 0, sizeof(w));
  w.pSystem = r->pSystem; w.pQ = q; w.pState = r->apState[0]; w.nStride = 1;
  w.aLatency = aLat + nQ*(size_t)r->nQps;
  w.nRound = r->nRound;
  t0 = benchNow();
  benchPass(&w, 0);
  qps = (double)q->nQuery*r->nRound / (benchNow() - t0);
  if( w.rc || benchAppend(&r->aQps, &r->nQps, qps) ) return -1.0;
  return qps;
}

/* One timed pass on nThread threads: its QPS, or -1.0 on failure. */
static inline double benchRunThreadPass(BenchRun *r){
  double qps = benchThreadPass(r->pSystem, r->pQ, r->apState, r->nState, r->nTRound);
  if( qps<0 || benchAppend(&r->aTQps, &r->nTQps, qps) ) return -1.0;
  return qps;
}

/*
** Prints the current setting's line from the passes collected, at least
** one single-thread pass:
**   {"setting": S, "recall": R, "qps": Q1, "p50_ms": .., "p99_ms": ..,
**    "qps_threads": Q2, "threads": T}
** Q1 and Q2 are medians (Q2 is 0 without threaded passes); the latency
** percentiles pool every query of every single-thread pass.
*/
static inline void benchRunReport(BenchRun *r){
  size_t nLat = (size_t)r->pQ->nQuery*(size_t)r->nQps;
  double qpsThreads = r->nTQps>0 ? benchMedian(r->aTQps, r->nTQps) : 0.0;
  qsort(r->aLat, nLat, sizeof(double), benchCompareDouble);
  printf("{\"setting\": %d, \"recall\": %.4f, \"qps\": %.2f, \"p50_ms\": %.4f, "
         "\"p99_ms\": %.4f, \"qps_threads\": %.2f, \"threads\": %d}\n",
         r->setting, benchRunRecall(r), benchMedian(r->aQps, r->nQps),
         r->aLat[nLat/2]*1e3, r->aLat[(nLat*99)/100]*1e3, qpsThreads, r->nThread);
  fflush(stdout);
}

/*
** Runs every setting in a row (warm-up, nPass single-thread passes, then
** nPass threaded passes if nThread>1) and prints one line per setting
** (benchRunReport). Returns non-zero if the system failed a query.
*/
static inline int benchSearchAll(const BenchSystem *s, const BenchQueries *q, const int *aSetting,
                          int nSetting, int nPass, int nThread){
  BenchRun r;
  int rc = benchRunOpen(&r, s, q, nThread);
  if( nPass<1 ) nPass = 1;
  for(int si=0; si<nSetting && rc==0; si++){
    rc = benchRunSetting(&r, aSetting[si]);
    for(int p=0; p<nPass && rc==0; p++){
      if( benchRunPass(&r)<0 ) rc = 1;
    }
    for(int p=0; p<nPass && rc==0 && nThread>1; p++){
      if( benchRunThreadPass(&r)<0 ) rc = 1;
    }
    if( rc==0 ) benchRunReport(&r);
  }
  benchRunClose(&r);
  return rc;
}

/* The reply to a command that failed; serving stops after it. */
static inline int benchServeError(const char *zMsg){
  printf("{\"error\": \"%s\"}\n", zMsg);
  fflush(stdout);
  return 1;
}

/*
** Answers one command of benchServe (a line without its newline).
** Returns 0 to go on, non-zero after an error reply.
*/
static inline int benchServeCommand(BenchRun *r, const char *z){
  double qps;
  if( strncmp(z, "setting ", 8)==0 ){
    char *zEnd;
    long setting = strtol(z+8, &zEnd, 10);
    if( zEnd==z+8 || *zEnd ) return benchServeError("setting: not an integer");
    if( benchRunSetting(r, (int)setting) ) return benchServeError("setting failed");
    printf("{\"ready\": %d, \"recall\": %.4f, \"rounds\": %d, \"thread_rounds\": %d}\n",
           r->setting, benchRunRecall(r), r->nRound, r->nTRound);
  }else if( strcmp(z, "pass")==0 ){
    if( !r->bSetting ) return benchServeError("pass before setting");
    if( (qps = benchRunPass(r))<0 ) return benchServeError("pass failed");
    printf("{\"pass_qps\": %.2f}\n", qps);
  }else if( strcmp(z, "tpass")==0 ){
    if( !r->bSetting ) return benchServeError("tpass before setting");
    if( r->nThread<2 ) return benchServeError("tpass needs threads>1");
    if( (qps = benchRunThreadPass(r))<0 ) return benchServeError("tpass failed");
    printf("{\"tpass_qps\": %.2f}\n", qps);
  }else if( strcmp(z, "done")==0 ){
    if( !r->bSetting || r->nQps<1 ) return benchServeError("done before any pass");
    benchRunReport(r);
    r->bSetting = 0;
  }else{
    return benchServeError("unknown command");
  }
  fflush(stdout);
  return 0;
}

/*
** Keeps the system open and answers commands read from stdin, one per
** line, with one JSON line each (flushed), so that bench/run.py can
** alternate several systems' timed passes:
**   setting S   S made current, warm-up passes  {"ready": S, "recall": R,
**                                                 "rounds": N, "thread_rounds": T}
**               (each timed pass will go over the queries N or T times)
**   pass        a timed single-thread pass       {"pass_qps": Q}
**   tpass       a timed pass on nThread threads  {"tpass_qps": Q}
**   done        S's line, as benchSearchAll prints it, from the passes
**               since `setting S`
** Blank lines are ignored. At the end of input, closes the states and
** returns 0; after a failure or a command it does not know, replies
** {"error": ".."} and returns 1.
*/
static inline int benchServe(const BenchSystem *s, const BenchQueries *q, int nThread){
  BenchRun r;
  char zLine[256];
  int rc;
  fflush(stdout);                              /* the caller's {"cold_s"} */
  rc = benchRunOpen(&r, s, q, nThread);
  if( rc ) benchServeError("open failed");
  while( rc==0 && fgets(zLine, sizeof(zLine), stdin) ){
    size_t n = strlen(zLine);
    while( n>0 && (zLine[n-1]=='\n' || zLine[n-1]=='\r' || zLine[n-1]==' ') ) zLine[--n] = 0;
    if( n>0 ) rc = benchServeCommand(&r, zLine);
  }
  benchRunClose(&r);
  return rc;
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
  q->passSeconds = atof(benchArg(argc, argv, "pass_s", "0"));
  q->nQuery = (int)(nQ / (sizeof(float)*(size_t)dim));
  if( nT / (sizeof(int32_t)*(size_t)q->truthK) < (size_t)q->nQuery ){
    fprintf(stderr, "ground truth has fewer rows than queries\n");
    exit(1);
  }
  if( nq>0 && nq<q->nQuery ) q->nQuery = nq;
}

#endif /* BENCH_DRIVER_H */
