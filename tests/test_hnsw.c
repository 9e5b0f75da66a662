/*
** The HNSW algorithm on its own, over an in-memory node map, on real data:
** the first N Fashion-MNIST training images (Debian's dataset-fashion-mnist)
** as the base set and test images as queries, L2 on raw pixels.
**
**   usage: test_hnsw [N]      (default 10000; the sanitizer run uses fewer)
**
** Checks: recall@10 against brute force, self-recall, the graph invariants
** (vdbHnswCheck) after every phase, determinism, deletes with repair and
** entry-point re-election, recall after churn against a fresh build of the
** same rows, filtered search, and the cosine and dot metrics.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "vdb_hnsw.h"
#include "vdb_index_hnsw.h"
#include "vdb_quant.h"

#define DIM 784
#define NQUERY 200
#define K 10

/* ---- in-memory access layer: nodes in an array indexed by nid ---------- */

typedef struct MemGraph {
  int m;
  const VdbHnswSpace *pSpace;     /* computes each node's aux value */
  VdbHnswNode **apNode;
  sqlite3_int64 nSlot;
  int nDirty;
} MemGraph;

static int memGet(void *pCtx, sqlite3_int64 nid, VdbHnswNode **pp){
  MemGraph *g = (MemGraph*)pCtx;
  if( nid<0 || nid>=g->nSlot || g->apNode[nid]==0 ) return SQLITE_NOTFOUND;
  *pp = g->apNode[nid];
  return SQLITE_OK;
}

static int memCreate(void *pCtx, sqlite3_int64 nid, int level, const void *pVec, VdbHnswNode **pp){
  MemGraph *g = (MemGraph*)pCtx;
  VdbHnswNode *p;
  float *pCopy;
  int l;
  if( nid>=g->nSlot ){
    sqlite3_int64 n = g->nSlot ? g->nSlot : 1024;
    while( n<=nid ) n *= 2;
    g->apNode = (VdbHnswNode**)realloc(g->apNode, sizeof(VdbHnswNode*)*(size_t)n);
    memset(g->apNode + g->nSlot, 0, sizeof(VdbHnswNode*)*(size_t)(n - g->nSlot));
    g->nSlot = n;
  }
  p = (VdbHnswNode*)calloc(1, sizeof(*p));
  pCopy = (float*)malloc(sizeof(float)*DIM);
  memcpy(pCopy, pVec, sizeof(float)*DIM);
  p->nid = nid;
  p->level = level;
  p->pVec = pCopy;
  p->aux = vdbHnswAux(g->pSpace, pCopy);
  if( g->pSpace->nCodeBytes ){
    void *pCode = malloc((size_t)g->pSpace->nCodeBytes);
    g->pSpace->xEncode(g->pSpace, pCopy, pCode);
    p->pCode = pCode;
  }
  for(l=0; l<=level; l++){
    p->aaLink[l] = (sqlite3_int64*)calloc((size_t)vdbHnswLayerCap(g->m, l), sizeof(sqlite3_int64));
  }
  g->apNode[nid] = p;
  *pp = p;
  return SQLITE_OK;
}

static int memDirty(void *pCtx, VdbHnswNode *p){
  (void)p;
  ((MemGraph*)pCtx)->nDirty++;
  return SQLITE_OK;
}

static void memFreeNode(VdbHnswNode *p){
  int l;
  for(l=0; l<=VDB_HNSW_MAX_LEVEL; l++) free(p->aaLink[l]);
  free((void*)p->pVec);
  free((void*)p->pCode);
  free(p);
}

static int memRemove(void *pCtx, VdbHnswNode *p){
  MemGraph *g = (MemGraph*)pCtx;
  g->apNode[p->nid] = 0;
  memFreeNode(p);
  return SQLITE_OK;
}

static int memTopNode(void *pCtx, sqlite3_int64 nidExcluded, sqlite3_int64 *pNid, int *pLevel){
  MemGraph *g = (MemGraph*)pCtx;
  sqlite3_int64 i;
  int best = -1;
  for(i=0; i<g->nSlot; i++){
    VdbHnswNode *p = g->apNode[i];
    if( p && p->nid!=nidExcluded && p->level>best ){ best = p->level; *pNid = p->nid; }
  }
  if( best<0 ) return SQLITE_NOTFOUND;
  *pLevel = best;
  return SQLITE_OK;
}

static void memFree(MemGraph *g){
  sqlite3_int64 i;
  for(i=0; i<g->nSlot; i++) if( g->apNode[i] ) memFreeNode(g->apNode[i]);
  free(g->apNode);
  memset(g, 0, sizeof(*g));
}

static void openIndexQ(VdbHnsw *h, MemGraph *g, VdbMetric eMetric, int m, int efc, VdbQuantizer eQuant){
  VdbHnswParams params;
  VdbHnswSpace space;
  VdbHnswAccess access;
  int rc;
  memset(g, 0, sizeof(*g));
  memset(&access, 0, sizeof(access));   /* no fast paths: the algorithm falls back on xGet */
  g->m = m;
  rc = vdbHnswSpaceInit(&space, VDB_ELEM_F32, eMetric, DIM, vdbKernelsBest());
  CHECK(rc==SQLITE_OK, "space for metric %d: rc=%d", (int)eMetric, rc);
  rc = vdbQuantInit(&space, eQuant);
  CHECK(rc==SQLITE_OK, "quantizer %d: rc=%d", (int)eQuant, rc);
  params.m = m;
  params.efConstruction = efc;
  params.seed = 12345;
  access.pCtx = g;
  access.xGet = memGet;
  access.xCreate = memCreate;
  access.xDirty = memDirty;
  access.xRemove = memRemove;
  access.xTopNode = memTopNode;
  rc = vdbHnswInit(h, &params, &space, &access);
  CHECK(rc==SQLITE_OK, "vdbHnswInit m=%d efc=%d: rc=%d", m, efc, rc);
  g->pSpace = &h->space;
}

static void openIndex(VdbHnsw *h, MemGraph *g, VdbMetric eMetric, int m, int efc){
  openIndexQ(h, g, eMetric, m, efc, VDB_QUANT_NONE);
}

/* m must fit the fixed arrays the walk and the linking use; spaces exist
** only for float32 under l2, cosine and dot. */
static void testInitLimits(void){
  VdbHnsw h;
  VdbHnswParams params;
  VdbHnswSpace space;
  VdbHnswAccess access;
  memset(&params, 0, sizeof(params));
  memset(&access, 0, sizeof(access));
  CHECK(vdbHnswSpaceInit(&space, VDB_ELEM_F32, VDB_METRIC_L2, DIM, vdbKernelsBest())==SQLITE_OK, "l2 space");
  CHECK(vdbHnswSpaceInit(&space, VDB_ELEM_F32, VDB_METRIC_L1, DIM, vdbKernelsBest())!=SQLITE_OK,
        "no l1 space");
  CHECK(vdbHnswSpaceInit(&space, VDB_ELEM_INT8, VDB_METRIC_L2, DIM, vdbKernelsBest())!=SQLITE_OK,
        "no int8 space yet");
  vdbHnswSpaceInit(&space, VDB_ELEM_F32, VDB_METRIC_L2, DIM, vdbKernelsBest());
  params.efConstruction = 100;
  params.m = VDB_HNSW_MAX_M;
  CHECK(vdbHnswInit(&h, &params, &space, &access)==SQLITE_OK, "m=%d accepted", VDB_HNSW_MAX_M);
  vdbHnswFree(&h);
  params.m = VDB_HNSW_MAX_M+1;
  CHECK(vdbHnswInit(&h, &params, &space, &access)==SQLITE_RANGE, "m=%d refused", VDB_HNSW_MAX_M+1);
  vdbHnswFree(&h);
  params.m = 1;
  CHECK(vdbHnswInit(&h, &params, &space, &access)==SQLITE_RANGE, "m=1 refused");
  vdbHnswFree(&h);
}

static void closeIndex(VdbHnsw *h, MemGraph *g){
  vdbHnswFree(h);
  memFree(g);
}

/* The nids currently in the graph. */
static int liveNids(MemGraph *g, sqlite3_int64 *aNid){
  sqlite3_int64 i;
  int n = 0;
  for(i=0; i<g->nSlot; i++) if( g->apNode[i] ) aNid[n++] = i;
  return n;
}

static int checkGraph(VdbHnsw *h, MemGraph *g, const char *zPhase){
  sqlite3_int64 *aNid = (sqlite3_int64*)malloc(sizeof(sqlite3_int64)*(size_t)(g->nSlot+1));
  char *zErr = 0;
  int n = liveNids(g, aNid);
  int rc = vdbHnswCheck(h, aNid, n, &zErr);
  CHECK(rc==SQLITE_OK, "graph invariants after %s: %s", zPhase, zErr ? zErr : "");
  sqlite3_free(zErr);
  free(aNid);
  return rc;
}

/* ---- data ----------------------------------------------------------------- */

/* n images of an IDX file from Debian's dataset package, as floats. */
static float *loadImages(const char *zFile, int skip, int n){
  char zCmd[512];
  FILE *f;
  unsigned char header[16];
  unsigned char *raw;
  float *out;
  size_t i;
  snprintf(zCmd, sizeof(zCmd), "zcat /usr/share/datasets/fashion-mnist/%s", zFile);
  f = popen(zCmd, "r");
  if( f==0 || fread(header, 1, 16, f)!=16 ){ if( f ) pclose(f); return 0; }
  raw = (unsigned char*)malloc((size_t)DIM*(size_t)(skip+n));
  if( fread(raw, DIM, (size_t)(skip+n), f)!=(size_t)(skip+n) ){ free(raw); pclose(f); return 0; }
  pclose(f);
  out = (float*)malloc(sizeof(float)*(size_t)DIM*(size_t)n);
  for(i=0; i<(size_t)DIM*(size_t)n; i++) out[i] = raw[(size_t)DIM*(size_t)skip + i];
  free(raw);
  return out;
}

typedef struct ExactHit { double d; sqlite3_int64 nid; } ExactHit;

static int exactCompare(const void *a, const void *b){
  const ExactHit *x = (const ExactHit*)a, *y = (const ExactHit*)b;
  if( x->d!=y->d ) return x->d<y->d ? -1 : 1;
  return x->nid<y->nid ? -1 : x->nid>y->nid;
}

/* Brute-force top-K nids over the live nodes of g passing keep(). */
static void exactTopK(VdbHnsw *h, MemGraph *g, const float *q, sqlite3_int64 *aOut,
                      int (*keep)(void*, sqlite3_int64)){
  ExactHit *a = (ExactHit*)malloc(sizeof(ExactHit)*(size_t)g->nSlot);
  sqlite3_int64 i;
  int n = 0;
  for(i=0; i<g->nSlot; i++){
    VdbHnswNode *p = g->apNode[i];
    if( p==0 || (keep && !keep(0, i)) ) continue;
    vdbRawDistance(h->space.pK, VDB_ELEM_F32, h->space.eMetric, DIM, q, p->pVec, &a[n].d);
    a[n++].nid = i;
  }
  qsort(a, (size_t)n, sizeof(ExactHit), exactCompare);
  for(i=0; i<K; i++) aOut[i] = i<n ? a[i].nid : -1;
  free(a);
}

static double recallAt(VdbHnsw *h, MemGraph *g, const float *aQuery, int nQuery, int ef,
                       int (*keep)(void*, sqlite3_int64)){
  int qi, found = 0, total = 0;
  for(qi=0; qi<nQuery; qi++){
    const float *q = aQuery + (size_t)qi*DIM;
    sqlite3_int64 aWant[K];
    VdbHnswHit *aHit;
    int nHit, nVisited, i, j;
    exactTopK(h, g, q, aWant, keep);
    if( vdbHnswSearch(h, q, K, ef, keep, 0, &aHit, &nHit, &nVisited)!=SQLITE_OK ) return -1;
    for(i=0; i<K; i++){
      if( aWant[i]<0 ) continue;
      total++;
      for(j=0; j<nHit; j++) if( aHit[j].nid==aWant[i] ){ found++; break; }
    }
    for(j=1; j<nHit; j++){
      if( aHit[j].dist<aHit[j-1].dist ) return -2;       /* must come sorted */
      if( keep && !keep(0, aHit[j].nid) ) return -3;    /* must pass the filter */
    }
    sqlite3_free(aHit);
  }
  return total ? (double)found/total : 1.0;
}

static int keepSevenths(void *pArg, sqlite3_int64 nid){ (void)pArg; return nid%7==0; }

/* ---- tests ------------------------------------------------------------------- */

static int keepAll(void *pArg, sqlite3_int64 nid){ (void)pArg; (void)nid; return 1; }

/* A walk without a filter keeps one sorted beam, a walk with one (or wider
** than VDB_BEAM_MAX_EF) the paper's two heaps; they must visit the same
** nodes and return the same hits: a filter that keeps every node makes
** the same search take the heaps. Over float32 vectors and over codes
** (whose walk also keeps a reserve for the re-rank). And walks wider than
** the graph, on either side of VDB_BEAM_MAX_EF, visit all of it and
** return the exact top K. */
static void testWalkForms(const float *aBase, const float *aQuery){
  static const int aEf[] = { 1, 8, 10, 64, 200 };
  int iQuant, i, qi, n = 2000, nSame = 0, nCase = 0;
  for(iQuant=0; iQuant<2; iQuant++){
    VdbHnsw h;
    MemGraph g;
    int e;
    openIndexQ(&h, &g, VDB_METRIC_L2, 16, 100, iQuant ? VDB_QUANT_INT8 : VDB_QUANT_NONE);
    for(i=0; i<n; i++){
      if( vdbHnswInsert(&h, i+1, aBase + (size_t)i*DIM)!=SQLITE_OK ){ CHECK(0, "insert %d", i); break; }
    }
    for(e=0; e<(int)(sizeof(aEf)/sizeof(aEf[0])); e++){
      for(qi=0; qi<NQUERY/4; qi++){
        const float *q = aQuery + (size_t)qi*DIM;
        VdbHnswHit *aBeam = 0, *aHeaps = 0;
        int nBeam = 0, nHeaps = 0, nVisitedBeam = 0, nVisitedHeaps = 0, same;
        int rc1 = vdbHnswSearch(&h, q, K, aEf[e], 0, 0, &aBeam, &nBeam, &nVisitedBeam);
        int rc2 = vdbHnswSearch(&h, q, K, aEf[e], keepAll, 0, &aHeaps, &nHeaps, &nVisitedHeaps);
        same = rc1==SQLITE_OK && rc2==SQLITE_OK && nBeam==nHeaps && nVisitedBeam==nVisitedHeaps;
        for(i=0; same && i<nBeam; i++){
          same = aBeam[i].nid==aHeaps[i].nid && aBeam[i].dist==aHeaps[i].dist;
        }
        nSame += same;
        nCase++;
        sqlite3_free(aBeam);
        sqlite3_free(aHeaps);
      }
    }
    closeIndex(&h, &g);
  }
  {
    /* Wider than the graph, the widest beam and the narrowest heaps: every
    ** node is visited, the answer is exact. */
    VdbHnsw h;
    MemGraph g;
    int e, nWide = VDB_BEAM_MAX_EF<n ? VDB_BEAM_MAX_EF : n;
    openIndex(&h, &g, VDB_METRIC_L2, 16, 100);
    for(i=0; i<nWide; i++){
      if( vdbHnswInsert(&h, i+1, aBase + (size_t)i*DIM)!=SQLITE_OK ){ CHECK(0, "insert %d", i); break; }
    }
    for(e=0; e<2; e++){
      double r = recallAt(&h, &g, aQuery, NQUERY/10, VDB_BEAM_MAX_EF+e, 0);
      CHECK(r==1.0, "a walk of ef %d over %d nodes: recall %.4f, not 1", VDB_BEAM_MAX_EF+e, nWide, r);
    }
    closeIndex(&h, &g);
  }
  printf("walk forms: %d of %d searches the same with the beam and with the heaps\n", nSame, nCase);
  CHECK(nSame==nCase, "%d of %d searches differ between the beam and the heaps", nCase-nSame, nCase);
}

static void testBuildSearchChurn(int n, const float *aBase, const float *aExtra, const float *aQuery){
  VdbHnsw h, fresh;
  MemGraph g, gFresh;
  double recall, recallFresh, recallFiltered;
  int i, selfFound = 0, nSelf = n<1000 ? n : 1000, efc = n>5000 ? 200 : 100;
  openIndex(&h, &g, VDB_METRIC_L2, 16, efc);
  for(i=0; i<n; i++){
    if( vdbHnswInsert(&h, i+1, aBase + (size_t)i*DIM)!=SQLITE_OK ){ CHECK(0, "insert %d", i); break; }
  }
  checkGraph(&h, &g, "the build");
  recall = recallAt(&h, &g, aQuery, NQUERY, 64, 0);
  printf("build of %d: recall@10 at ef=64 %.4f, %.0f distances per insert\n",
         n, recall, (double)h.nDistance/n);
  CHECK(recall>=0.95, "recall@10 at ef=64 is %.4f, below 0.95", recall);

  /* Every stored vector finds itself first. */
  for(i=0; i<nSelf; i++){
    VdbHnswHit *aHit;
    int nHit, nVisited;
    vdbHnswSearch(&h, aBase + (size_t)i*DIM, 1, 64, 0, 0, &aHit, &nHit, &nVisited);
    selfFound += nHit==1 && aHit[0].nid==i+1;
    sqlite3_free(aHit);
  }
  printf("self-recall %.4f\n", (double)selfFound/nSelf);
  CHECK(selfFound >= 0.99*nSelf, "self-recall %d of %d", selfFound, nSelf);

  recallFiltered = recallAt(&h, &g, aQuery, NQUERY/4, 64, keepSevenths);
  printf("filtered (1 in 7 rows) recall@10 at ef=64 %.4f\n", recallFiltered);
  CHECK(recallFiltered>=0.90, "filtered recall %.4f", recallFiltered);

  /* Churn: delete 30% of the rows, insert as many new ones under new nids. */
  for(i=0; i<n; i++){
    if( (i*7919)%10 < 3 && vdbHnswDelete(&h, i+1)!=SQLITE_OK ){ CHECK(0, "delete %d", i+1); break; }
  }
  checkGraph(&h, &g, "deleting 30%");
  for(i=0; i<(3*n)/10; i++){
    if( vdbHnswInsert(&h, n+1+i, aExtra + (size_t)i*DIM)!=SQLITE_OK ){ CHECK(0, "reinsert %d", i); break; }
  }
  checkGraph(&h, &g, "re-inserting");
  recall = recallAt(&h, &g, aQuery, NQUERY, 64, 0);

  /* A fresh build of exactly the same rows. */
  openIndex(&fresh, &gFresh, VDB_METRIC_L2, 16, efc);
  for(i=0; i<g.nSlot; i++){
    if( g.apNode[i] ) vdbHnswInsert(&fresh, i, g.apNode[i]->pVec);
  }
  recallFresh = recallAt(&fresh, &gFresh, aQuery, NQUERY, 64, 0);
  printf("after churn: recall@10 %.4f; fresh build of the same rows %.4f\n", recall, recallFresh);
  CHECK(recall >= recallFresh - 0.01, "churned recall %.4f vs fresh %.4f", recall, recallFresh);
  closeIndex(&fresh, &gFresh);
  closeIndex(&h, &g);
}

/* The same inserts give the same graph, link for link. */
static void testDeterminism(const float *aBase){
  VdbHnsw a, b;
  MemGraph ga, gb;
  int i, l, same = 1;
  openIndex(&a, &ga, VDB_METRIC_L2, 8, 40);
  openIndex(&b, &gb, VDB_METRIC_L2, 8, 40);
  for(i=0; i<500; i++){
    vdbHnswInsert(&a, i+1, aBase + (size_t)i*DIM);
    vdbHnswInsert(&b, i+1, aBase + (size_t)i*DIM);
  }
  for(i=1; i<=500 && same; i++){
    VdbHnswNode *x = ga.apNode[i], *y = gb.apNode[i];
    same = x->level==y->level;
    for(l=0; same && l<=x->level; l++){
      same = x->anLink[l]==y->anLink[l]
          && memcmp(x->aaLink[l], y->aaLink[l], sizeof(sqlite3_int64)*(size_t)x->anLink[l])==0;
    }
  }
  CHECK(same, "two builds from the same inserts differ at node %d", i-1);
  CHECK(a.entryNid==b.entryNid, "same entry point");
  closeIndex(&a, &ga);
  closeIndex(&b, &gb);
}

/* Outliers far from everything find only full neighbours with shorter
** links; they must still be linked in, never left unreachable. */
static void testOutliers(const float *aBase){
  VdbHnsw h;
  MemGraph g;
  float v[DIM];
  int i, j;
  /* A tight cluster saturates every node's links with very short ones. */
  openIndex(&h, &g, VDB_METRIC_L2, 4, 40);
  for(i=0; i<400; i++){
    for(j=0; j<DIM; j++) v[j] = aBase[j] + 0.001f*(float)((i*131 + j*17) % 97);
    vdbHnswInsert(&h, i+1, v);
  }
  for(i=0; i<5; i++){
    for(j=0; j<DIM; j++) v[j] = aBase[j] + 1000.0f*(float)(i+1);
    vdbHnswInsert(&h, 1000+i, v);
  }
  checkGraph(&h, &g, "inserting outliers next to a saturated cluster");
  for(i=0; i<5; i++){
    CHECK(g.apNode[1000+i]->anLink[0]>0, "outlier %d has layer-0 links", i);
  }
  closeIndex(&h, &g);
}

/* Levels follow the geometric law: about 1/M of nodes reach level 1. */
static void testLevels(void){
  VdbHnswParams params;
  int i, n1 = 0, maxLevel = 0;
  memset(&params, 0, sizeof(params));
  params.m = 16;
  params.seed = 7;
  for(i=1; i<=160000; i++){
    int l = vdbHnswLevel(&params, i);
    n1 += l>=1;
    if( l>maxLevel ) maxLevel = l;
  }
  CHECK(n1>9000 && n1<11000, "%d of 160000 nodes on level >= 1 (expect ~10000)", n1);
  CHECK(maxLevel>=3 && maxLevel<=VDB_HNSW_MAX_LEVEL, "max level %d", maxLevel);
}

/* Deleting the entry point again and again, down to an empty graph. */
static void testDeleteEverything(const float *aBase){
  VdbHnsw h;
  MemGraph g;
  int i, ok = 1;
  openIndex(&h, &g, VDB_METRIC_L2, 8, 40);
  for(i=0; i<300; i++) vdbHnswInsert(&h, i+1, aBase + (size_t)i*DIM);
  for(i=0; i<300 && ok; i++){
    sqlite3_int64 victim = i%2 ? h.entryNid : (sqlite3_int64)(300 - i/2);
    if( g.apNode[victim]==0 ) victim = h.entryNid;
    ok = vdbHnswDelete(&h, victim)==SQLITE_OK;
    if( ok && i%50==0 ) ok = checkGraph(&h, &g, "deleting entry points")==SQLITE_OK;
  }
  CHECK(ok, "delete down to empty");
  CHECK(!h.hasEntry, "an empty graph has no entry point");
  checkGraph(&h, &g, "deleting everything");
  closeIndex(&h, &g);
}

/* Mean number of layer-0 links per node. */
static double meanDegree(MemGraph *g){
  sqlite3_int64 i;
  double nLink = 0, nNode = 0;
  for(i=0; i<g->nSlot; i++){
    if( g->apNode[i] ){ nLink += g->apNode[i]->anLink[0]; nNode++; }
  }
  return nNode ? nLink/nNode : 0;
}

/* Many rounds of deleting half the rows and inserting them again under new
** nids. Each delete repair must give back what it took, not link every
** former neighbour to the others: that swelled degrees with short edges to
** 1.5x a fresh build's, and cost 0.02 to 0.05 of recall, in a churn test of
** the crash workload's kind. */
static void testRepeatedChurn(const float *aBase, const float *aQuery){
  enum { N = 1500, ROUNDS = 6 };
  VdbHnsw h, fresh;
  MemGraph g, gFresh;
  sqlite3_int64 aNid[N], next = 1;
  double degChurned, degFresh, recall, recallFresh;
  int i, r, ok = 1;
  openIndex(&h, &g, VDB_METRIC_L2, 8, 64);
  for(i=0; i<N; i++){
    aNid[i] = next++;
    ok = ok && vdbHnswInsert(&h, aNid[i], aBase + (size_t)i*DIM)==SQLITE_OK;
  }
  for(r=0; ok && r<ROUNDS; r++){
    for(i=0; ok && i<N; i++){
      if( ((unsigned)(i*2654435761u) >> (r+3)) % 2 ) continue;
      ok = vdbHnswDelete(&h, aNid[i])==SQLITE_OK;
      aNid[i] = 0;
    }
    for(i=0; ok && i<N; i++){
      if( aNid[i] ) continue;
      aNid[i] = next++;
      ok = vdbHnswInsert(&h, aNid[i], aBase + (size_t)i*DIM)==SQLITE_OK;
    }
  }
  CHECK(ok, "repeated churn");
  checkGraph(&h, &g, "repeated churn");
  openIndex(&fresh, &gFresh, VDB_METRIC_L2, 8, 64);
  for(i=0; i<N; i++) vdbHnswInsert(&fresh, aNid[i], aBase + (size_t)i*DIM);
  degChurned = meanDegree(&g);
  degFresh = meanDegree(&gFresh);
  recall = recallAt(&h, &g, aQuery, NQUERY, 16, 0);
  recallFresh = recallAt(&fresh, &gFresh, aQuery, NQUERY, 16, 0);
  printf("after %d rounds of churn: layer-0 degree %.2f (fresh build %.2f), recall@10 at ef=16 %.4f (fresh %.4f)\n",
         ROUNDS, degChurned, degFresh, recall, recallFresh);
  CHECK(degChurned <= 1.15*degFresh, "churn swelled the mean degree to %.2f from %.2f", degChurned, degFresh);
  CHECK(recall >= recallFresh - 0.01, "churned recall %.4f vs fresh %.4f", recall, recallFresh);
  closeIndex(&fresh, &gFresh);
  closeIndex(&h, &g);
}

/* Cosine and dot on normalised data find the same neighbours as L2. */
static void testOtherMetrics(const float *aBase, const float *aQuery){
  static const VdbMetric aMetric[] = { VDB_METRIC_COSINE, VDB_METRIC_DOT };
  int n = 2000, mi, i, j;
  float *aNorm = (float*)malloc(sizeof(float)*DIM*(size_t)(n+NQUERY));
  for(i=0; i<n+NQUERY; i++){
    const float *src = i<n ? aBase + (size_t)i*DIM : aQuery + (size_t)(i-n)*DIM;
    double s = 0;
    for(j=0; j<DIM; j++) s += (double)src[j]*src[j];
    for(j=0; j<DIM; j++) aNorm[(size_t)i*DIM+j] = (float)(src[j]/sqrt(s));
  }
  for(mi=0; mi<2; mi++){
    VdbHnsw h;
    MemGraph g;
    double recall;
    openIndex(&h, &g, aMetric[mi], 16, 100);
    for(i=0; i<n; i++) vdbHnswInsert(&h, i+1, aNorm + (size_t)i*DIM);
    checkGraph(&h, &g, "a cosine/dot build");
    recall = recallAt(&h, &g, aNorm + (size_t)n*DIM, NQUERY/2, 64, 0);
    printf("%s on 2000 normalised images: recall@10 %.4f\n", mi==0 ? "cosine" : "dot", recall);
    CHECK(recall>=0.95, "metric %d recall %.4f", mi, recall);
    closeIndex(&h, &g);
  }
  free(aNorm);
}

/* The int8 code's L2 walk distance against the exact one, on vectors with
** positive and negative elements, far from the origin, constant, and not
** finite. Each coded element is within half a grid step of the element,
** so |q^ - x^| is within sqrt(dim) (sq + sx) / 2 of |q - x| (sq, sx: the
** grid steps, (max - min) / 255); an element that is not finite leaves
** no distance (+Inf) on either side. Checked from the outside, through
** the space's own functions, against those bounds only. */
static void testCodeDistances(void){
  VdbHnswSpace space;
  unsigned char *aCode, *aQCode;
  float aQ[DIM], aX[DIM];
  int rc, trial, i;
  unsigned int seed = 7;
  double got;
  rc = vdbHnswSpaceInit(&space, VDB_ELEM_F32, VDB_METRIC_L2, DIM, vdbKernelsBest());
  if( rc==SQLITE_OK ) rc = vdbQuantInit(&space, VDB_QUANT_INT8);
  CHECK(rc==SQLITE_OK, "int8 space: rc=%d", rc);
  if( rc!=SQLITE_OK ) return;
  aCode = (unsigned char*)malloc((size_t)space.nCodeBytes);
  aQCode = (unsigned char*)malloc((size_t)space.nQueryCodeBytes);
  for(trial=0; trial<200; trial++){
    double exact = 0, bound, qlo = 1e30, qhi = -1e30, xlo = 1e30, xhi = -1e30;
    float offset = trial%4==1 ? 1000.0f : trial%4==2 ? -50.0f : 0.0f;
    float width = trial%4==1 ? 0.001f : 1.0f;
    for(i=0; i<DIM; i++){
      seed = seed*1103515245u + 12345u;
      aQ[i] = offset + width*((float)((seed>>8) % 20001) - 10000.0f)/1000.0f;
      seed = seed*1103515245u + 12345u;
      aX[i] = trial%4==3 ? 2.5f : offset + width*((float)((seed>>8) % 20001) - 10000.0f)/1000.0f;
      exact += ((double)aQ[i] - aX[i])*((double)aQ[i] - aX[i]);
      if( aQ[i]<qlo ) qlo = aQ[i];
      if( aQ[i]>qhi ) qhi = aQ[i];
      if( aX[i]<xlo ) xlo = aX[i];
      if( aX[i]>xhi ) xhi = aX[i];
    }
    space.xEncode(&space, aX, aCode);
    space.xEncodeQuery(&space, aQ, aQCode);
    got = space.xCodeWalk(&space, aQCode, aCode);
    /* A query's grid has 128 levels, a vector's 256 (vdb_quant.c). */
    bound = sqrt((double)DIM)*((qhi - qlo)/127.0 + (xhi - xlo)/255.0)/2.0;
    CHECK(got>=0 || fabs(got) <= 1e-6*exact + 1e-9, "trial %d: negative code distance %.9g", trial, got);
    CHECK(fabs(sqrt(got>0 ? got : 0) - sqrt(exact)) <= bound*1.0001 + 1e-6*sqrt(exact) + 1e-6,
          "trial %d: code distance %.9g, exact %.9g, bound on the root %.9g", trial, got, exact, bound);
    /* Two vectors' codes (the link choices' distance): both on grids of
    ** 256 levels, within the bound of those grids. */
    {
      unsigned char *aCodeQ = (unsigned char*)malloc((size_t)space.nCodeBytes);
      double pair, pairBound = sqrt((double)DIM)*((qhi - qlo)/255.0 + (xhi - xlo)/255.0)/2.0;
      space.xEncode(&space, aQ, aCodeQ);
      pair = space.xCodePair(&space, aCodeQ, aCode);
      CHECK(fabs(sqrt(pair>0 ? pair : 0) - sqrt(exact)) <= pairBound*1.0001 + 1e-6*sqrt(exact) + 1e-6,
            "trial %d: pair distance %.9g, exact %.9g, bound on the root %.9g", trial, pair, exact, pairBound);
      CHECK(pair==space.xCodePair(&space, aCode, aCodeQ), "trial %d: pair distance not symmetric", trial);
      free(aCodeQ);
    }
  }
  for(trial=0; trial<4; trial++){
    float bad = trial%2 ? NAN : INFINITY;
    for(i=0; i<DIM; i++){ aQ[i] = (float)i; aX[i] = (float)(DIM-i); }
    if( trial<2 ) aX[DIM/2] = bad; else aQ[DIM/3] = bad;
    space.xEncode(&space, aX, aCode);
    space.xEncodeQuery(&space, aQ, aQCode);
    got = space.xCodeWalk(&space, aQCode, aCode);
    CHECK(isinf(got) && got>0, "trial %d: a %s element gave code distance %g", trial, trial%2 ? "NaN" : "Inf", got);
    space.xEncode(&space, aQ, aQCode);
    got = space.xCodePair(&space, aQCode, aCode);
    CHECK(isinf(got) && got>0, "trial %d: a %s element gave pair distance %g", trial, trial%2 ? "NaN" : "Inf", got);
  }
  free(aCode);
  free(aQCode);
}

/* A walk over int8 codes, re-ranked with the vectors, finds what the walk
** over vectors finds at the same ef, and reports exact distances: on the
** images, on the same images moved far from the origin and shrunk (where a
** code that ignored the offset would see every vector alike), and under
** cosine and dot. Inserts walk codes too, so the two graphs may differ a
** little; the recall of each is measured against exact search. */
static void testQuantized(int nBase, const float *aBase, const float *aQuery){
  static const int aEf[] = { 10, 16, 64 };
  int n = nBase<3000 ? nBase : 3000, variant, i, j;
  float *aData = (float*)malloc(sizeof(float)*DIM*(size_t)(n+NQUERY));
  for(variant=0; variant<4; variant++){
    VdbMetric eMetric = variant<2 ? VDB_METRIC_L2 : variant==2 ? VDB_METRIC_COSINE : VDB_METRIC_DOT;
    VdbHnsw hq, hf;
    MemGraph gq, gf;
    int ei;
    for(i=0; i<n+NQUERY; i++){
      const float *src = i<n ? aBase + (size_t)i*DIM : aQuery + (size_t)(i-n)*DIM;
      double norm = 0;
      for(j=0; j<DIM; j++) norm += (double)src[j]*src[j];
      for(j=0; j<DIM; j++){
        float *x = &aData[(size_t)i*DIM+j];
        if( variant==0 ) *x = src[j];
        else if( variant==1 ) *x = 1000.0f + src[j]*0.001f;
        else *x = (float)(src[j]/sqrt(norm));
      }
    }
    openIndexQ(&hq, &gq, eMetric, 16, 100, VDB_QUANT_INT8);
    openIndexQ(&hf, &gf, eMetric, 16, 100, VDB_QUANT_NONE);
    for(i=0; i<n; i++){
      vdbHnswInsert(&hq, i+1, aData + (size_t)i*DIM);
      vdbHnswInsert(&hf, i+1, aData + (size_t)i*DIM);
    }
    for(ei=0; ei<3; ei++){
      double rq = recallAt(&hq, &gq, aData + (size_t)n*DIM, NQUERY/2, aEf[ei], 0);
      double rf = recallAt(&hf, &gf, aData + (size_t)n*DIM, NQUERY/2, aEf[ei], 0);
      printf("int8 codes, variant %d, ef=%d: recall@10 %.4f (vectors %.4f)\n", variant, aEf[ei], rq, rf);
      CHECK(rq >= rf - 0.005, "variant %d ef=%d: int8 recall %.4f, vectors %.4f", variant, aEf[ei], rq, rf);
    }
    /* Distances come from the vectors, not the codes. */
    for(i=0; i<20; i++){
      const float *q = aData + (size_t)(n+i)*DIM;
      VdbHnswHit *aHit = 0;
      int nHit = 0, nVisited = 0;
      CHECK(vdbHnswSearch(&hq, q, K, 16, 0, 0, &aHit, &nHit, &nVisited)==SQLITE_OK, "search");
      for(j=0; j<nHit; j++){
        double want;
        vdbRawDistance(hq.space.pK, VDB_ELEM_F32, eMetric, DIM, q, gq.apNode[aHit[j].nid]->pVec, &want);
        CHECK(fabs(aHit[j].dist - want) <= 1e-6*fabs(want) + 1e-9,
              "variant %d: distance %.9g, exact %.9g", variant, aHit[j].dist, want);
      }
      sqlite3_free(aHit);
    }
    /* A beam narrower than k: over codes it is that narrow (fewer nodes
    ** measured) and still returns k, from the beam and the hits it let go;
    ** over vectors it is widened to k (the same walk as ef = k). */
    {
      long visitedQ[2] = {0, 0}, visitedF[2] = {0, 0};
      int nSame = 0, e;
      for(i=0; i<20; i++){
        const float *q = aData + (size_t)(n+i)*DIM;
        VdbHnswHit *aHitF[2] = {0, 0};
        int nHitF[2] = {0, 0};
        for(e=0; e<2; e++){
          VdbHnswHit *aHit = 0;
          int nHit = 0, nVisited = 0, ef = e==0 ? 4 : K;
          CHECK(vdbHnswSearch(&hq, q, K, ef, 0, 0, &aHit, &nHit, &nVisited)==SQLITE_OK, "search");
          CHECK(nHit==K, "variant %d ef=%d: %d hits, k=%d", variant, ef, nHit, K);
          for(j=1; j<nHit; j++) CHECK(aHit[j].dist>=aHit[j-1].dist, "variant %d ef=%d: unsorted", variant, ef);
          visitedQ[e] += nVisited;
          sqlite3_free(aHit);
          CHECK(vdbHnswSearch(&hf, q, K, ef, 0, 0, &aHitF[e], &nHitF[e], &nVisited)==SQLITE_OK, "search");
          visitedF[e] += nVisited;
        }
        if( nHitF[0]==nHitF[1] && memcmp(aHitF[0], aHitF[1], sizeof(VdbHnswHit)*(size_t)nHitF[0])==0 ) nSame++;
        sqlite3_free(aHitF[0]);
        sqlite3_free(aHitF[1]);
      }
      CHECK(visitedQ[0] < visitedQ[1], "variant %d: codes at ef=4 measured %ld nodes, at ef=k %ld",
            variant, visitedQ[0], visitedQ[1]);
      CHECK(visitedF[0]==visitedF[1] && nSame==20, "variant %d: vectors at ef=4 measured %ld nodes, "
            "at ef=k %ld; %d of 20 results the same", variant, visitedF[0], visitedF[1], nSame);
    }
    closeIndex(&hq, &gq);
    closeIndex(&hf, &gf);
  }
  free(aData);
}

/* Walk records' pages come from slabs (vdb_hnsw_records.c): every record
** keeps what was published in it while pages are freed and reused around
** it, freed pages are reused before a new slab is taken, and a slab goes
** when all its pages are free. */
static void testRecordSlabs(void){
  enum { NCODE = 64, NNID = 40000 };
  VdbRecords a;
  unsigned char aCode[NCODE], *aLive;
  sqlite3_int64 nid, nNew = 0, nSlabBytes, nSlabBytesFull, nPage;
  int nSlab, nBad = 0, i;
  vdbRecordsInit(&a, NCODE, 0, 0, 0);
  CHECK(vdbRecordsCover(&a, NNID)==SQLITE_OK, "cover");
  /* Every third node, so that every page is taken. */
  for(nid=1; nid<NNID; nid+=3){
    memset(aCode, (int)(nid % 251), NCODE);
    memcpy(aCode, &nid, sizeof(nid));
    if( vdbRecordsPublish(&a, nid, aCode, 0, 0, &nNew)==0 ) nBad++;
  }
  CHECK(nBad==0, "%d publishes failed", nBad);
  nPage = a.nPageAlloc;
  nSlab = vdbRecordsSlabs(&a, &nSlabBytes);
  CHECK(nPage==(NNID + VDB_REC_PAGE_NODES-1)/VDB_REC_PAGE_NODES, "%lld pages", nPage);
  CHECK(nNew==nPage*vdbRecordsPageBytes(&a), "%lld bytes for %lld pages", nNew, nPage);
  CHECK(nSlab>1 && nSlabBytes>=nNew && nSlabBytes<=2*nNew + 4*vdbRecordsPageBytes(&a),
        "%d slabs of %lld bytes for %lld bytes of pages", nSlab, nSlabBytes, nNew);
  /* Free every other page; the others keep their codes. */
  aLive = (unsigned char*)sqlite3_malloc64((sqlite3_uint64)a.nPage);
  for(i=0; i<a.nPage; i++) aLive[i] = (unsigned char)(i%2);
  CHECK(vdbRecordsKeep(&a, aLive)==(nPage/2)*vdbRecordsPageBytes(&a), "bytes freed");
  nSlabBytesFull = nSlabBytes;
  /* Publish the freed pages' nodes again: the same slabs hold them. */
  for(nid=1; nid<NNID; nid+=3){
    if( ((nid >> VDB_REC_PAGE_SHIFT) % 2)==0 ){
      memset(aCode, (int)(nid % 251), NCODE);
      memcpy(aCode, &nid, sizeof(nid));
      if( vdbRecordsPublish(&a, nid, aCode, 0, 0, &nNew)==0 ) nBad++;
    }
  }
  vdbRecordsSlabs(&a, &nSlabBytes);
  CHECK(nBad==0 && a.nPageAlloc==nPage, "republished: %d failed, %lld pages", nBad, a.nPageAlloc);
  CHECK(nSlabBytes==nSlabBytesFull, "freed pages reused: %lld slab bytes, %lld before",
        nSlabBytes, nSlabBytesFull);
  for(nid=1; nid<NNID; nid+=3){
    const unsigned char *pCode = (const unsigned char*)vdbRecordsCode(&a, nid);
    sqlite3_int64 got = -1;
    if( pCode ) memcpy(&got, pCode, sizeof(got));
    if( pCode==0 || got!=nid || pCode[NCODE-1]!=(unsigned char)(nid % 251) ) nBad++;
  }
  CHECK(nBad==0, "%d records lost their codes", nBad);
  /* Freeing every page frees every slab. */
  for(i=0; i<a.nPage; i++) aLive[i] = 0;
  vdbRecordsKeep(&a, aLive);
  CHECK(vdbRecordsSlabs(&a, &nSlabBytes)==0 && nSlabBytes==0 && a.nPageAlloc==0,
        "%lld slab bytes left", nSlabBytes);
  sqlite3_free(aLive);
  vdbRecordsFree(&a);
}

int main(int argc, char **argv){
  int n = argc>1 ? atoi(argv[1]) : 10000;
  float *aBase, *aExtra, *aQuery;
  if( n<2000 ){
    /* Some tests take a fixed 1,500 or 2,000 of the rows. */
    fprintf(stderr, "usage: %s [ROWS]: ROWS is at least 2000 (default 10000)\n", argv[0]);
    return 2;
  }
  sqlite3_initialize();
  aBase = loadImages("train-images-idx3-ubyte.gz", 0, n);
  aExtra = loadImages("train-images-idx3-ubyte.gz", n, (3*n)/10);
  aQuery = loadImages("t10k-images-idx3-ubyte.gz", 0, NQUERY);
  CHECK(aBase && aExtra && aQuery, "Fashion-MNIST from dataset-fashion-mnist");
  if( aBase && aExtra && aQuery ){
    testLevels();
    testRecordSlabs();
    testInitLimits();
    testDeterminism(aBase);
    testWalkForms(aBase, aQuery);
    testDeleteEverything(aBase);
    testOutliers(aBase);
    testOtherMetrics(aBase, aQuery);
    testCodeDistances();
    testQuantized(n, aBase, aQuery);
    testRepeatedChurn(aBase, aQuery);
    testBuildSearchChurn(n, aBase, aExtra, aQuery);
  }
  free(aBase);
  free(aExtra);
  free(aQuery);
  return tuFinish();
}
