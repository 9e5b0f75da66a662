/*
** HNSW graph algorithm; see vdb_hnsw.h for the invariants.
**
** Paper: Malkov & Yashunin, "Efficient and robust approximate nearest
** neighbor search using Hierarchical Navigable Small World graphs" (2016).
** Algorithm numbers in comments refer to it.
**
** Choices, and why:
**   - Symmetric links. Every edge is stored at both ends, so a DELETE can
**     find and remove every edge to the deleted node without a scan, and
**     repair exactly the nodes that lost a neighbour.
**   - A new node keeps M neighbours chosen by the paper's heuristic
**     (algorithm 4): a candidate is taken only if it is closer to the new
**     node than to any neighbour already taken, which keeps links spread
**     in different directions; pruned candidates fill the remaining slots.
**   - A full neighbour makes room by dropping its farthest link whose other
**     end keeps more than M/2 links; if no link may go, the new edge is not
**     made. Dropping an edge removes both ends, keeping links symmetric.
**   - Deterministic levels from a hash of the node id: the same inserts give
**     the same graph, which makes tests reproducible and lets statement-
**     replicating systems rebuild identical graphs.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "vdb_hnsw.h"
#include "vdb_schema.h"

/* ---- visited set: open addressing over nids, cleared by a generation bump -- */

/* Nodes seen by the current walk. Node ids are allocated densely from 1,
** so ids below VDB_VISITED_DIRECT_MAX get one bit each in a flat bitmap
** (one memory access per test); larger ids, left by heavy churn, fall
** back to a hash set. A bit, not hnswlib's 16-bit generation per id: the
** walk tests every neighbour of every node it expands, at random ids, and
** at 1M nodes the bitmap is 125 KB, which stays in the core's L2 cache,
** where 2 MB of generations did not. A walk clears the words it set (it
** remembers up to VDB_VISITED_TOUCHED_MAX of them; past that it clears
** the whole bitmap). */
#define VDB_VISITED_DIRECT_MAX (1<<24)
#define VDB_VISITED_DIRECT_INITIAL 4096   /* ids; doubled as ids grow */
#define VDB_VISITED_TOUCHED_MAX    4096   /* words a walk remembers setting */
#define VDB_VISITED_HASH_INITIAL   1024   /* slots; doubled past half full */
struct VdbHnswVisited {
  sqlite3_uint64 *aDirect;        /* bit per nid < nDirect */
  sqlite3_int64 nDirect;          /* 0, or a power of two up to VDB_VISITED_DIRECT_MAX */
  unsigned int *aTouched;         /* words of aDirect the walk set bits in */
  int nTouched;                   /* > VDB_VISITED_TOUCHED_MAX: too many to list */
  sqlite3_int64 *aKey;
  unsigned int *aGen;
  unsigned int gen;
  int nSlot;                      /* a power of two */
  int nUsed;
};

static unsigned int vdbHashNid(sqlite3_int64 nid){
  return (unsigned int)(vdbFibHash(nid) >> 32);
}

static void vdbVisitedFree(VdbHnswVisited *v){
  if( v==0 ) return;
  sqlite3_free(v->aDirect);
  sqlite3_free(v->aTouched);
  sqlite3_free(v->aKey);
  sqlite3_free(v->aGen);
  sqlite3_free(v);
}

static int vdbVisitedResize(VdbHnswVisited *v, int nSlot){
  sqlite3_int64 *aOldKey = v->aKey;
  unsigned int *aOldGen = v->aGen;
  int nOld = v->nSlot, i;
  v->aKey = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64)*(sqlite3_uint64)nSlot);
  v->aGen = (unsigned int*)sqlite3_malloc64(sizeof(unsigned int)*(sqlite3_uint64)nSlot);
  if( v->aKey==0 || v->aGen==0 ){
    sqlite3_free(v->aKey);
    sqlite3_free(v->aGen);
    v->aKey = aOldKey;
    v->aGen = aOldGen;
    return SQLITE_NOMEM;
  }
  memset(v->aGen, 0, sizeof(unsigned int)*(size_t)nSlot);
  v->nSlot = nSlot;
  for(i=0; i<nOld; i++){
    if( aOldGen[i]==v->gen ){
      unsigned int h = vdbHashNid(aOldKey[i]) & (unsigned)(nSlot-1);
      while( v->aGen[h]==v->gen ) h = (h+1) & (unsigned)(nSlot-1);
      v->aKey[h] = aOldKey[i];
      v->aGen[h] = v->gen;
    }
  }
  sqlite3_free(aOldKey);
  sqlite3_free(aOldGen);
  return SQLITE_OK;
}

static int vdbVisitedReset(VdbHnswVisited **pp){
  VdbHnswVisited *v = *pp;
  if( v==0 ){
    v = (VdbHnswVisited*)sqlite3_malloc(sizeof(*v));
    if( v==0 ) return SQLITE_NOMEM;
    memset(v, 0, sizeof(*v));
    v->gen = 1;
    v->aTouched = (unsigned int*)sqlite3_malloc(sizeof(unsigned int)*VDB_VISITED_TOUCHED_MAX);
    if( v->aTouched==0 || vdbVisitedResize(v, VDB_VISITED_HASH_INITIAL)!=SQLITE_OK ){
      sqlite3_free(v->aTouched);
      sqlite3_free(v);
      return SQLITE_NOMEM;
    }
    *pp = v;
  }
  v->nUsed = 0;
  if( v->nTouched>VDB_VISITED_TOUCHED_MAX ){
    memset(v->aDirect, 0, sizeof(sqlite3_uint64)*(size_t)(v->nDirect>>6));
  }else{
    int i;
    for(i=0; i<v->nTouched; i++) v->aDirect[v->aTouched[i]] = 0;
  }
  v->nTouched = 0;
  if( ++v->gen==0 ){
    memset(v->aGen, 0, sizeof(unsigned int)*(size_t)v->nSlot);
    v->gen = 1;
  }
  return SQLITE_OK;
}

/* Grow the flat array to cover nid; new entries are 0, which no
** generation equals. */
static int vdbVisitedGrowDirect(VdbHnswVisited *v, sqlite3_int64 nid){
  sqlite3_int64 n = v->nDirect ? v->nDirect : VDB_VISITED_DIRECT_INITIAL;
  sqlite3_uint64 *aNew;
  while( n<=nid ) n *= 2;
  aNew = (sqlite3_uint64*)sqlite3_realloc64(v->aDirect, sizeof(sqlite3_uint64)*(sqlite3_uint64)(n>>6));
  if( aNew==0 ) return SQLITE_NOMEM;
  memset(aNew + (v->nDirect>>6), 0, sizeof(sqlite3_uint64)*(size_t)((n - v->nDirect)>>6));
  v->aDirect = aNew;
  v->nDirect = n;
  return SQLITE_OK;
}

/* Mark nid, which the bitmap covers; 1 if it was not yet marked, else 0. */
static inline int vdbVisitedSetBit(VdbHnswVisited *v, sqlite3_int64 nid){
  sqlite3_uint64 *pWord = &v->aDirect[nid>>6], bit = (sqlite3_uint64)1 << (nid & 63);
  if( *pWord & bit ) return 0;
  if( *pWord==0 ){
    if( v->nTouched<VDB_VISITED_TOUCHED_MAX ) v->aTouched[v->nTouched] = (unsigned int)(nid>>6);
    v->nTouched++;
  }
  *pWord |= bit;
  return 1;
}

/* vdbVisitedAdd for an id the bitmap does not cover yet: grow it, or use
** the hash for ids beyond it. */
static int vdbVisitedAddSlow(VdbHnswVisited *v, sqlite3_int64 nid){
  unsigned int h;
  if( nid>=0 && nid<VDB_VISITED_DIRECT_MAX ){
    if( nid>=v->nDirect && vdbVisitedGrowDirect(v, nid)!=SQLITE_OK ) return -1;
    return vdbVisitedSetBit(v, nid);
  }
  if( (v->nUsed+1)*2 > v->nSlot && vdbVisitedResize(v, v->nSlot*2)!=SQLITE_OK ) return -1;
  h = vdbHashNid(nid) & (unsigned)(v->nSlot-1);
  while( v->aGen[h]==v->gen ){
    if( v->aKey[h]==nid ) return 0;
    h = (h+1) & (unsigned)(v->nSlot-1);
  }
  v->aKey[h] = nid;
  v->aGen[h] = v->gen;
  v->nUsed++;
  return 1;
}

/* 1 if nid was not yet visited (and is now), 0 if it was, <0 on OOM. An
** id the bitmap covers, the walk's usual case (ten thousand a 1M x 128
** insert), is handled inline: nDirect is a power of two no larger than
** VDB_VISITED_DIRECT_MAX, so one unsigned comparison also says that the
** id belongs to the bitmap rather than to the hash. */
static inline int vdbVisitedAdd(VdbHnswVisited *v, sqlite3_int64 nid){
  if( (sqlite3_uint64)nid < (sqlite3_uint64)v->nDirect ) return vdbVisitedSetBit(v, nid);
  return vdbVisitedAddSlow(v, nid);
}

/* Was nid visited by the current walk? */
static int vdbVisitedHas(const VdbHnswVisited *v, sqlite3_int64 nid){
  unsigned int h;
  if( nid>=0 && nid<VDB_VISITED_DIRECT_MAX ){
    return nid<v->nDirect && (v->aDirect[nid>>6] >> (nid & 63) & 1);
  }
  for(h=vdbHashNid(nid) & (unsigned)(v->nSlot-1); v->aGen[h]==v->gen; h=(h+1) & (unsigned)(v->nSlot-1)){
    if( v->aKey[h]==nid ) return 1;
  }
  return 0;
}

/* ---- heaps of (distance, nid), ordered with ties broken by nid ---------- */

#define VDB_HEAP_INITIAL 64               /* hits; doubled when full */

typedef struct VdbHeap {
  VdbHnswHit *a;
  int n, nAlloc;
  int isMax;                      /* max-heap (worst on top) or min-heap; 0 also for
                                  ** a walk's results, a sorted array (nearest first) */
} VdbHeap;

static int vdbHitLess(const VdbHnswHit *x, const VdbHnswHit *y){
  return x->dist < y->dist || (x->dist==y->dist && x->nid < y->nid);
}

/* Should x sit above y in heap h? */
static int vdbHeapAbove(const VdbHeap *h, const VdbHnswHit *x, const VdbHnswHit *y){
  return h->isMax ? vdbHitLess(y, x) : vdbHitLess(x, y);
}

static int vdbHeapPush(VdbHeap *h, VdbHnswHit hit){
  int i;
  if( h->n>=h->nAlloc ){
    int nNew = h->nAlloc ? h->nAlloc*2 : VDB_HEAP_INITIAL;
    VdbHnswHit *a = (VdbHnswHit*)sqlite3_realloc64(h->a, sizeof(VdbHnswHit)*(sqlite3_uint64)nNew);
    if( a==0 ) return SQLITE_NOMEM;
    h->a = a;
    h->nAlloc = nNew;
  }
  i = h->n++;
  while( i>0 ){
    int parent = (i-1)/2;
    if( !vdbHeapAbove(h, &hit, &h->a[parent]) ) break;
    h->a[i] = h->a[parent];
    i = parent;
  }
  h->a[i] = hit;
  return SQLITE_OK;
}

/* Place hit at the root of h's h->n hits (the old root gone) and sift it
** down to where it belongs. */
static void vdbHeapSiftDown(VdbHeap *h, VdbHnswHit hit){
  int i = 0;
  for(;;){
    int c = 2*i+1;
    if( c>=h->n ) break;
    if( c+1<h->n && vdbHeapAbove(h, &h->a[c+1], &h->a[c]) ) c++;
    if( !vdbHeapAbove(h, &h->a[c], &hit) ) break;
    h->a[i] = h->a[c];
    i = c;
  }
  h->a[i] = hit;
}

static VdbHnswHit vdbHeapPop(VdbHeap *h){
  VdbHnswHit top = h->a[0], last = h->a[--h->n];
  if( h->n>0 ) vdbHeapSiftDown(h, last);
  return top;
}

/* Put hit in the top's place and return the top: a pop and a push with
** one sift instead of two, for a full bounded heap whose top hit leaves
** because a better one came (a walk's results, the reserve). hit must not
** sit above the top, so the returned hit is the one a push and a pop
** would have returned. */
static VdbHnswHit vdbHeapReplaceTop(VdbHeap *h, VdbHnswHit hit){
  VdbHnswHit top = h->a[0];
  vdbHeapSiftDown(h, hit);
  return top;
}

/* Sort hits nearest first (ties by nid: a total order, so the result is
** the one qsort gives). Typed, with the comparison inlined: when inserts
** sorted their beam of ef_construction hits once or twice per layer,
** qsort's indirect calls and merge buffer were 6% of a single-threaded
** build. Quicksort on the median of three, insertion sort below 16. */
static void vdbHnswHitSort(VdbHnswHit *a, int n){
  while( n>16 ){
    VdbHnswHit pivot, t;
    int i = 0, j = n-1, mid = n/2;
    if( vdbHitLess(&a[mid], &a[0]) ){ t = a[mid]; a[mid] = a[0]; a[0] = t; }
    if( vdbHitLess(&a[n-1], &a[0]) ){ t = a[n-1]; a[n-1] = a[0]; a[0] = t; }
    if( vdbHitLess(&a[n-1], &a[mid]) ){ t = a[n-1]; a[n-1] = a[mid]; a[mid] = t; }
    pivot = a[mid];
    for(;;){
      while( vdbHitLess(&a[i], &pivot) ) i++;
      while( vdbHitLess(&pivot, &a[j]) ) j--;
      if( i>=j ) break;
      t = a[i]; a[i] = a[j]; a[j] = t;
      i++; j--;
    }
    /* a[0..j] <= pivot <= a[j+1..n-1]: recurse on the smaller side. */
    if( j+1 < n-j-1 ){
      vdbHnswHitSort(a, j+1);
      a += j+1; n -= j+1;
    }else{
      vdbHnswHitSort(a+j+1, n-j-1);
      n = j+1;
    }
  }
  {
    int i, j;
    for(i=1; i<n; i++){
      VdbHnswHit x = a[i];
      for(j=i; j>0 && vdbHitLess(&x, &a[j-1]); j--) a[j] = a[j-1];
      a[j] = x;
    }
  }
}

/* ---- basics --------------------------------------------------------------- */

int vdbHnswInit(VdbHnsw *p, const VdbHnswParams *pParams, const VdbHnswSpace *pSpace,
                const VdbHnswAccess *pAccess){
  memset(p, 0, sizeof(*p));
  if( pParams->m<2 || pParams->m>VDB_HNSW_MAX_M || pParams->efConstruction<1 ) return SQLITE_RANGE;
  p->params = *pParams;
  p->space = *pSpace;
  p->access = *pAccess;
  return SQLITE_OK;
}

void vdbHnswFree(VdbHnsw *p){
  vdbVisitedFree(p->pVisited);
  sqlite3_free(p->pQueryCode);
  sqlite3_free(p->aBeamDone);
  p->pQueryCode = 0;
  p->aBeamDone = 0;
  p->nBeamDone = 0;
  p->pVisited = 0;
}

static int vdbLayerCap(const VdbHnsw *p, int layer){
  return vdbHnswLayerCap(p->params.m, layer);
}

int vdbHnswLevel(const VdbHnswParams *pParams, sqlite3_int64 nid){
  /* splitmix64 of (nid, seed): a well-mixed 64-bit value per node (its
  ** increment is the same golden-ratio constant). */
  sqlite3_uint64 x = (sqlite3_uint64)nid + pParams->seed + VDB_FIB_HASH_MUL;
  double u;
  int level;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  u = ((double)(x >> 11) + 1.0) / 9007199254740992.0;    /* (0, 1] */
  level = (int)floor(-log(u) / log((double)pParams->m));
  return level > VDB_HNSW_MAX_LEVEL ? VDB_HNSW_MAX_LEVEL : level;
}

/* Candidates of a walk over codes measured again with their vectors, per
** result wanted (see vdbRerank). */
#ifndef VDB_RERANK_FACTOR
# define VDB_RERANK_FACTOR 2
#endif

/* ---- spaces: float32 vectors under l2, cosine and dot -------------------- */

/* L2: the squared distance, same order, no square root per step. */
static double vdbWalkL2F32(const VdbHnswSpace *s, const void *a, float aAux, const void *b, float bAux){
  (void)aAux; (void)bAux;
  return (double)s->pK->f32L2Sq((const float*)a, (const float*)b, (size_t)s->dim);
}
static double vdbReportL2(double walkDist){
  return sqrt(walkDist);
}

/* Cosine: 1 - dot times the two stored inverse norms, one pass over the
** vectors where computing the norms each time takes three; the reported
** distance is measured again exactly (they differ in the 7th digit). */
static double vdbWalkCosF32(const VdbHnswSpace *s, const void *a, float aAux, const void *b, float bAux){
  double d;
  if( aAux==0 || bAux==0 ) return INFINITY;
  d = 1.0 - (double)s->pK->f32Dot((const float*)a, (const float*)b, (size_t)s->dim) * aAux * bAux;
  return isnan(d) ? INFINITY : d;
}
/* 1/|v|; 0 for a zero or overflowing vector, which has no cosine distance. */
static float vdbAuxInvNormF32(const VdbHnswSpace *s, const void *a){
  double n = (double)s->pK->f32Dot((const float*)a, (const float*)a, (size_t)s->dim);
  if( !(n>0) || isinf(n) ) return 0;
  return (float)(1.0/sqrt(n));
}

/* Dot: the negative inner product is the metric's own distance. Products
** that overflow float32 can sum to NaN: no distance. */
static double vdbWalkDotF32(const VdbHnswSpace *s, const void *a, float aAux, const void *b, float bAux){
  double d;
  (void)aAux; (void)bAux;
  d = -(double)s->pK->f32Dot((const float*)a, (const float*)b, (size_t)s->dim);
  return isnan(d) ? INFINITY : d;
}
static double vdbReportSame(double walkDist){
  return walkDist;
}

int vdbHnswSpaceInit(VdbHnswSpace *pSpace, VdbElemType eElem, VdbMetric eMetric, int dim,
                     const VdbKernels *pK){
  memset(pSpace, 0, sizeof(*pSpace));
  pSpace->dim = dim;
  pSpace->eElem = eElem;
  pSpace->eMetric = eMetric;
  pSpace->pK = pK;
  pSpace->nVecBytes = (int)vdbVectorByteSize(eElem, dim);
  if( eElem!=VDB_ELEM_F32 ) return SQLITE_ERROR;
  switch( eMetric ){
    case VDB_METRIC_L2:
      pSpace->xWalk = vdbWalkL2F32;
      pSpace->xReport = vdbReportL2;
      return SQLITE_OK;
    case VDB_METRIC_COSINE:
      pSpace->xWalk = vdbWalkCosF32;
      pSpace->xAux = vdbAuxInvNormF32;
      return SQLITE_OK;
    case VDB_METRIC_DOT:
      pSpace->xWalk = vdbWalkDotF32;
      pSpace->xReport = vdbReportSame;
      return SQLITE_OK;
    default:
      return SQLITE_ERROR;
  }
}

/* The walk's distance (counted for the benchmarks). */
static double vdbHnswDist(VdbHnsw *p, const void *a, float aAux, const void *b, float bAux){
  p->nDistance++;
  return p->space.xWalk(&p->space, a, aAux, b, bAux);
}

static double vdbNodeDist(VdbHnsw *p, const VdbHnswNode *x, const VdbHnswNode *y){
  return vdbHnswDist(p, x->pVec, x->aux, y->pVec, y->aux);
}

/* The distance the link choices compare two nodes by (neighbour
** selection, a full node's pruning): their codes' when the space has
** them, else their vectors'. With codes an insert reads no float32
** vector but its own: the walk, the choice and the pruning all compare
** codes, a quarter of the bytes. Measured single-threaded against the
** build that re-ranked each layer's beam of ef_construction candidates
** with their vectors and chose and pruned by vectors (M=16, ef_c=200):
** Fashion-MNIST 60k x 784 28.4 s -> 21.4 s, cosine 200k x 384 95.1 s ->
** 84.2 s; recall@10 at ef_search 10/16/24 within 0.001 (0.9689/0.9867/
** 0.9940 against 0.9687/0.9871/0.9937 on Fashion-MNIST), and on cosine
** 0.9839 against 0.9888 at ef_search 32, 0.9999 against 0.9990 at 100.
** Choosing by codes but re-ranking the beam first (so that each
** candidate's distance to the new node was exact) cost 2.4 s more on
** Fashion-MNIST for no better recall. */
#ifndef VDB_HNSW_LINK_WITH_CODES
# define VDB_HNSW_LINK_WITH_CODES 1
#endif
static double vdbPairDist(VdbHnsw *p, const VdbHnswNode *x, const VdbHnswNode *y){
  if( VDB_HNSW_LINK_WITH_CODES && p->space.xCodePair && x->pCode && y->pCode ){
    p->nDistance++;
    return p->space.xCodePair(&p->space, x->pCode, y->pCode);
  }
  return vdbNodeDist(p, x, y);
}

static int vdbLinkIndex(const VdbHnswNode *pNode, int layer, sqlite3_int64 nid){
  int i;
  for(i=0; i<pNode->anLink[layer]; i++) if( pNode->aaLink[layer][i]==nid ) return i;
  return -1;
}

/* A node's link count and links are written with release stores (plain
** stores on x86): with several threads linking, searches copy them
** without a lock while the write section changes them, and find out from
** xEdit's bracket whether their copy was torn (see xLinksCopy); release
** keeps each store after the bracket's opening. */
static void vdbLinkStoreCount(VdbHnswNode *pNode, int layer, int n){
  __atomic_store_n(&pNode->anLink[layer], n, __ATOMIC_RELEASE);
}
static void vdbLinkStoreAt(VdbHnswNode *pNode, int layer, int i, sqlite3_int64 nid){
  __atomic_store_n(&pNode->aaLink[layer][i], nid, __ATOMIC_RELEASE);
}

static void vdbLinkRemoveAt(VdbHnswNode *pNode, int layer, int i){
  int last = pNode->anLink[layer] - 1;
  vdbLinkStoreCount(pNode, layer, last);
  vdbLinkStoreAt(pNode, layer, i, pNode->aaLink[layer][last]);
  if( layer==0 && pNode->aDist0 ) pNode->aDist0[i] = pNode->aDist0[last];
}

/* The link choices' distance from pNode to its i-th link on this layer,
** pOther: on layer 0 measured once and then kept (aDist0). A full node
** that must make room measures its distance to every neighbour, 48 at
** M=16, for each new link it is offered; kept, each is measured once
** while the node stays cached. This is work in the write section, which
** parallel links take one at a time. Measured: 40,000 cosine rows x 384,
** three interleaved single-threaded builds, 0.92x the time (median);
** Fashion-MNIST on 2 threads 13.4 s against 14.5 s; the same graph. */
static double vdbLinkDist(VdbHnsw *p, VdbHnswNode *pNode, int layer, int i, const VdbHnswNode *pOther){
  if( layer==0 && pNode->aDist0 ){
    if( isnan(pNode->aDist0[i]) ) pNode->aDist0[i] = (float)vdbPairDist(p, pNode, pOther);
    return pNode->aDist0[i];
  }
  return vdbPairDist(p, pNode, pOther);
}

/* Bracket a change to pNode's links (xEdit: other threads may be reading
** them). */
static void vdbEdit(VdbHnsw *p, VdbHnswNode *pNode, int bBegin){
  if( p->access.xEdit ) p->access.xEdit(p->access.pCtx, pNode, bBegin);
}
/* dist: the link choices' distance between the two ends, NaN if unknown. */
static void vdbLinkAppend(VdbHnsw *p, VdbHnswNode *pNode, int layer, sqlite3_int64 nid, double dist){
  int n = pNode->anLink[layer];
  vdbEdit(p, pNode, 1);
  if( layer==0 && pNode->aDist0 ) pNode->aDist0[n] = (float)dist;
  vdbLinkStoreAt(pNode, layer, n, nid);
  vdbLinkStoreCount(pNode, layer, n+1);
  vdbEdit(p, pNode, 0);
}
static void vdbLinkSet(VdbHnsw *p, VdbHnswNode *pNode, int layer, int i, sqlite3_int64 nid, double dist){
  vdbEdit(p, pNode, 1);
  vdbLinkStoreAt(pNode, layer, i, nid);
  if( layer==0 && pNode->aDist0 ) pNode->aDist0[i] = (float)dist;
  vdbEdit(p, pNode, 0);
}
static void vdbLinkDrop(VdbHnsw *p, VdbHnswNode *pNode, int layer, int i){
  vdbEdit(p, pNode, 1);
  vdbLinkRemoveAt(pNode, layer, i);
  vdbEdit(p, pNode, 0);
}

/* ---- search on one layer (algorithm 2) ------------------------------------- */

typedef struct VdbLayerSearch {
  const void *pQuery;             /* a vector, or with isCode the query's code */
  float queryAux;
  int isCode;                     /* walk codes (vdb_quant.h), not vectors */
  int layer;
  int ef;                         /* result width */
  VdbHnswFilter xFilter;          /* which nodes may be results */
  void *pFilterArg;
  int nVisited;
  /* With codes: the best nReserve results the beam let go (or never took),
  ** a max-heap; they are re-ranked with the beam (see vdbRerank). */
  VdbHeap *pReserve;
  int nReserve;
} VdbLayerSearch;

/* What the walk compares for node nid: its code or its vector. */
static int vdbWalkForm(VdbHnsw *p, const VdbLayerSearch *s, sqlite3_int64 nid,
                       const void **ppVec, float *pAux){
  VdbHnswNode *pNode;
  int rc;
  if( s->isCode ){
    *pAux = 0;
    if( p->access.xCode ) return p->access.xCode(p->access.pCtx, nid, ppVec);
  }else if( p->access.xVector ){
    return p->access.xVector(p->access.pCtx, nid, ppVec, pAux);
  }
  rc = p->access.xGet(p->access.pCtx, nid, &pNode);
  if( rc==SQLITE_OK ){
    *ppVec = s->isCode ? pNode->pCode : pNode->pVec;
    *pAux = pNode->aux;
  }
  return rc;
}

/* The walk's distance from the query to a code or vector. */
static double vdbWalkDist(VdbHnsw *p, const VdbLayerSearch *s, const void *pVec, float aux){
  p->nDistance++;
  if( s->isCode ) return p->space.xCodeWalk(&p->space, s->pQuery, pVec);
  return p->space.xWalk(&p->space, s->pQuery, s->queryAux, pVec, aux);
}

/* Keep h among the nReserve best results outside the beam. */
static int vdbReserveOffer(const VdbLayerSearch *s, VdbHnswHit h){
  VdbHeap *r = s->pReserve;
  if( r->n>=s->nReserve ){
    if( vdbHitLess(&h, &r->a[0]) ) vdbHeapReplaceTop(r, h);
    return SQLITE_OK;
  }
  return vdbHeapPush(r, h);
}

/* The links of node nid on the walk's layer that the walk has not visited
** yet, marked visited now, and their distances from the query, into
** aNid[] and aDist[] (room for the layer-0 capacity); *pn of them. nidNext
** (0: none), the node the walk will likely expand next, has its links
** asked for while these are measured: an expansion otherwise starts with
** a cache miss. */
static int vdbExpand(VdbHnsw *p, VdbLayerSearch *s, sqlite3_int64 nid, sqlite3_int64 nidNext,
                     sqlite3_int64 *aNid, double *aDist, int *pn){
  const void *apVec[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
  float aAux[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
  sqlite3_int64 aLinkCopy[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
  const unsigned int *aLink32;
  const sqlite3_int64 *aLink64;
  VdbHnswNode *pNode;
  int i, nLink, n = 0, rc = SQLITE_OK;
  *pn = 0;
  if( nidNext && p->access.xPrefetch ) p->access.xPrefetch(p->access.pCtx, nidNext);
  /* The node's links: on layer 0 from the access layer's compact record
  ** when it has one (32-bit ids next to the codes), else from the node. */
  if( s->layer==0 && p->access.xLinks0
   && p->access.xLinks0(p->access.pCtx, nid, &aLink32, &nLink) ){
    aLink64 = 0;
  }else{
    rc = p->access.xGet(p->access.pCtx, nid, &pNode);
    if( rc!=SQLITE_OK ) return rc;
    if( s->layer>pNode->level ) return SQLITE_OK;
    aLink32 = 0;
    if( p->access.xLinksCopy ){
      nLink = p->access.xLinksCopy(p->access.pCtx, pNode, s->layer, aLinkCopy);
      aLink64 = aLinkCopy;
    }else{
      aLink64 = pNode->aaLink[s->layer];
      nLink = pNode->anLink[s->layer];
    }
  }
  /* First find the unvisited neighbours, asking for the first line of
  ** each one's code as it is found, so that their cache misses overlap;
  ** then resolve them, then compute their distances. */
  for(i=0; i<nLink; i++){
    sqlite3_int64 nidLink = aLink32 ? (sqlite3_int64)aLink32[i] : aLink64[i];
    int isNew = vdbVisitedAdd(p->pVisited, nidLink);
    if( isNew<0 ) return SQLITE_NOMEM;
    if( !isNew ) continue;
    if( s->isCode && p->access.xPrefetchCode ) p->access.xPrefetchCode(p->access.pCtx, nidLink);
    aNid[n++] = nidLink;
  }
  if( s->isCode && p->access.xCodes ){
    rc = p->access.xCodes(p->access.pCtx, aNid, n, apVec);
  }else{
    for(i=0; rc==SQLITE_OK && i<n; i++) rc = vdbWalkForm(p, s, aNid[i], &apVec[i], &aAux[i]);
  }
  if( rc!=SQLITE_OK ) return rc;
  if( s->isCode ){
    /* Codes have no aux value: aAux is the vectors'. */
    p->space.xCodeWalkMany(&p->space, s->pQuery, apVec, n, aDist);
    p->nDistance += n;
  }else{
    /* A few vectors ahead (VDB_PREFETCH_AHEAD), not all at once. */
    for(i=0; i<VDB_PREFETCH_AHEAD && i<n; i++) vdbPrefetchVector(apVec[i], p->space.nVecBytes);
    for(i=0; i<n; i++){
      if( i+VDB_PREFETCH_AHEAD<n ) vdbPrefetchVector(apVec[i+VDB_PREFETCH_AHEAD], p->space.nVecBytes);
      aDist[i] = vdbWalkDist(p, s, apVec[i], aAux[i]);
    }
  }
  *pn = n;
  return SQLITE_OK;
}

/* May node nid be one of the walk's results (no filter: every node)? */
static int vdbWalkKeeps(const VdbLayerSearch *s, sqlite3_int64 nid){
  return s->xFilter==0 || s->xFilter(s->pFilterArg, nid);
}

/* Algorithm 2 as the paper has it: the candidates a min-heap, the results
** the max-heap *pW of at most ef. With a filter the walk passes through
** nodes the filter rejects, so its candidates are more than its results.
** Results end in *pW nearest first. */
static int vdbSearchLayerHeaps(VdbHnsw *p, VdbLayerSearch *s, const VdbHnswHit *aEp, int nEp,
                               VdbHeap *pW){
  VdbHeap cand;
  double aFreshDist[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
  sqlite3_int64 aFreshNid[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
  int i, nFresh, rc = SQLITE_OK;
  memset(&cand, 0, sizeof(cand));
  pW->isMax = 1;
  for(i=0; rc==SQLITE_OK && i<nEp; i++){
    if( vdbVisitedAdd(p->pVisited, aEp[i].nid)<0 ){ rc = SQLITE_NOMEM; break; }
    rc = vdbHeapPush(&cand, aEp[i]);
    if( rc==SQLITE_OK && vdbWalkKeeps(s, aEp[i].nid) ){
      rc = vdbHeapPush(pW, aEp[i]);
      if( rc==SQLITE_OK && pW->n>s->ef ) vdbHeapPop(pW);
    }
  }
  while( rc==SQLITE_OK && cand.n>0 ){
    VdbHnswHit c = vdbHeapPop(&cand);
    if( pW->n>=s->ef && vdbHitLess(&pW->a[0], &c) ) break;
    rc = vdbExpand(p, s, c.nid, cand.n>0 ? cand.a[0].nid : 0, aFreshNid, aFreshDist, &nFresh);
    for(i=0; rc==SQLITE_OK && i<nFresh; i++){
      VdbHnswHit h;
      h.nid = aFreshNid[i];
      h.dist = aFreshDist[i];
      s->nVisited++;
      if( pW->n<s->ef || vdbHitLess(&h, &pW->a[0]) ){
        rc = vdbHeapPush(&cand, h);
        if( p->access.xPrefetchCandidate ) p->access.xPrefetchCandidate(p->access.pCtx, h.nid);
        if( rc==SQLITE_OK && vdbWalkKeeps(s, h.nid) ){
          if( pW->n<s->ef ){
            rc = vdbHeapPush(pW, h);
          }else{
            VdbHnswHit out = vdbHeapReplaceTop(pW, h);
            if( s->pReserve ) rc = vdbReserveOffer(s, out);
          }
        }
      }else if( s->pReserve
             && (s->pReserve->n<s->nReserve || vdbHitLess(&h, &s->pReserve->a[0]))
             && vdbWalkKeeps(s, h.nid) ){
        rc = vdbReserveOffer(s, h);
      }
    }
  }
  sqlite3_free(cand.a);
  if( rc==SQLITE_OK && pW->n>1 ) vdbHnswHitSort(pW->a, pW->n);
  pW->isMax = 0;
  return rc;
}

/* Where hit h belongs among the n sorted hits a[]: how many sit before it.
** (Without branches on the comparisons, each step moving the window by a
** computed half, this search made a one-thread build 2% slower: its
** steps then wait on each other's loads, where the branches let the core
** run ahead.) */
static int vdbBeamPosition(const VdbHnswHit *a, int n, const VdbHnswHit *h){
  int lo = 0, hi = n;
  while( lo<hi ){
    int mid = (lo+hi)/2;
    if( vdbHitLess(&a[mid], h) ) lo = mid+1;
    else hi = mid;
  }
  return lo;
}

/* Put hit h at its place among the beam's n sorted hits (there is room
** for one more), not expanded; returns its position. */
static int vdbBeamInsert(VdbHnswHit *a, unsigned char *aDone, int n, VdbHnswHit h){
  int pos = vdbBeamPosition(a, n, &h);
  memmove(&a[pos+1], &a[pos], sizeof(VdbHnswHit)*(size_t)(n-pos));
  memmove(&aDone[pos+1], &aDone[pos], (size_t)(n-pos));
  a[pos] = h;
  aDone[pos] = 0;
  return pos;
}

/* Algorithm 2 without a filter, on one sorted array: the beam, the ef
** best hits so far nearest first, each flagged once expanded. Every node
** that enters the results is a candidate, and a candidate that left them
** is farther than all of them, where the paper's walk stops; so the
** paper's two heaps (candidates, and results with the farthest on top)
** hold nothing the beam does not, and expanding the beam's nearest
** unexpanded hit until none is left takes the heaps' order and visits the
** same nodes. A fresh neighbour farther than a full beam's last costs one
** comparison (most do); a nearer one a binary search and a move of the
** hits after it, where the heaps paid a push and a sift down, each
** comparison a branch taken at random. DiskANN's search keeps its
** candidates this way too. Results end in *pW nearest first. */
static int vdbSearchLayerBeam(VdbHnsw *p, VdbLayerSearch *s, const VdbHnswHit *aEp, int nEp,
                              VdbHeap *pW){
  double aFreshDist[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
  sqlite3_int64 aFreshNid[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
  VdbHnswHit *a;
  unsigned char *aDone;
  int ef = s->ef, n = 0, iNext = 0, i, nFresh, rc = SQLITE_OK;
  if( pW->nAlloc<ef+1 ){
    a = (VdbHnswHit*)sqlite3_realloc64(pW->a, sizeof(VdbHnswHit)*(sqlite3_uint64)(ef+1));
    if( a==0 ) return SQLITE_NOMEM;
    pW->a = a;
    pW->nAlloc = ef+1;
  }
  if( p->nBeamDone<ef+1 ){
    aDone = (unsigned char*)sqlite3_realloc64(p->aBeamDone, (sqlite3_uint64)(ef+1));
    if( aDone==0 ) return SQLITE_NOMEM;
    p->aBeamDone = aDone;
    p->nBeamDone = ef+1;
  }
  a = pW->a;
  aDone = p->aBeamDone;
  for(i=0; i<nEp; i++){
    if( vdbVisitedAdd(p->pVisited, aEp[i].nid)<0 ) return SQLITE_NOMEM;
    if( n>=ef ){
      if( !vdbHitLess(&aEp[i], &a[n-1]) ) continue;
      n--;
    }
    vdbBeamInsert(a, aDone, n++, aEp[i]);
  }
  while( rc==SQLITE_OK && iNext<n ){
    int iAt = iNext;
    aDone[iAt] = 1;
    while( iNext<n && aDone[iNext] ) iNext++;
    rc = vdbExpand(p, s, a[iAt].nid, iNext<n ? a[iNext].nid : 0, aFreshNid, aFreshDist, &nFresh);
    for(i=0; rc==SQLITE_OK && i<nFresh; i++){
      VdbHnswHit h;
      int pos;
      h.nid = aFreshNid[i];
      h.dist = aFreshDist[i];
      s->nVisited++;
      if( n>=ef && !vdbHitLess(&h, &a[n-1]) ){
        if( s->pReserve && (s->pReserve->n<s->nReserve || vdbHitLess(&h, &s->pReserve->a[0])) ){
          rc = vdbReserveOffer(s, h);
        }
        continue;
      }
      if( p->access.xPrefetchCandidate ) p->access.xPrefetchCandidate(p->access.pCtx, h.nid);
      if( n>=ef ){
        n--;
        if( s->pReserve ) rc = vdbReserveOffer(s, a[n]);
      }
      pos = vdbBeamInsert(a, aDone, n++, h);
      if( pos<iNext ) iNext = pos;
    }
  }
  pW->n = rc==SQLITE_OK ? n : 0;
  pW->isMax = 0;
  return rc;
}

/* Beam search on one layer from the entry hits aEp[0..nEp-1] (put in the
** visited set here). Results end in *pW, at most ef hits, nearest first.
** A walk with a filter, or wider than VDB_BEAM_MAX_EF, keeps the heaps;
** the others the sorted array, which visits the same nodes
** (test_hnsw's testWalkForms compares the two). A walk of no width finds
** nothing (no caller asks for one: ef_construction and a search's beam
** are at least 1). */
static int vdbSearchLayer(VdbHnsw *p, VdbLayerSearch *s, const VdbHnswHit *aEp, int nEp, VdbHeap *pW){
  pW->n = 0;
  if( s->ef<1 ) return SQLITE_OK;
  if( s->xFilter || s->ef>VDB_BEAM_MAX_EF ) return vdbSearchLayerHeaps(p, s, aEp, nEp, pW);
  return vdbSearchLayerBeam(p, s, aEp, nEp, pW);
}

/* Greedy descent (ef = 1) from the entry point down to layer `stop`+1,
** comparing what pTmpl says (query, code or vector); *pEp receives the
** closest node found. Node nidSkip (0: none) is never passed through. */
static int vdbDescend(VdbHnsw *p, const VdbLayerSearch *pTmpl, int stop, sqlite3_int64 nidSkip,
                      VdbHnswHit *pEp){
  VdbHeap w;
  const void *pVec;
  float aux;
  int layer, rc;
  memset(&w, 0, sizeof(w));
  rc = vdbWalkForm(p, pTmpl, p->entryNid, &pVec, &aux);
  if( rc!=SQLITE_OK ) return rc;
  pEp->nid = p->entryNid;
  pEp->dist = vdbWalkDist(p, pTmpl, pVec, aux);
  for(layer=p->entryLevel; rc==SQLITE_OK && layer>stop; layer--){
    VdbLayerSearch s;
    int i;
    memset(&s, 0, sizeof(s));
    s.pQuery = pTmpl->pQuery;
    s.queryAux = pTmpl->queryAux;
    s.isCode = pTmpl->isCode;
    s.layer = layer;
    s.ef = 1;
    rc = vdbVisitedReset(&p->pVisited);
    if( rc==SQLITE_OK && nidSkip && vdbVisitedAdd(p->pVisited, nidSkip)<0 ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK ) rc = vdbSearchLayer(p, &s, pEp, 1, &w);
    for(i=0; rc==SQLITE_OK && i<w.n; i++) *pEp = w.a[i];
  }
  sqlite3_free(w.a);
  return rc;
}

/* ---- links ------------------------------------------------------------------- */

/* Order (nid, ...) pairs by nid. */
static int vdbNidCompare(const void *pA, const void *pB){
  sqlite3_int64 a = *(const sqlite3_int64*)pA, b = *(const sqlite3_int64*)pB;
  return a<b ? -1 : a>b;
}


/* Link a and b on a layer where a has room. When b is full it must drop
** one link, and which one matters: in clustered data the longest links are
** the bridges between clusters that navigation needs. So b drops, farthest
** first, a link that the neighbour-selection heuristic would prune -- one
** whose other end x is closer to another of b's neighbours than to b, so b
** still reaches x in two steps -- provided x keeps more than M/2 links.
** If no link is redundant, the new edge is made only with `force` (a has
** too few links to be reliably reachable), by splitting one of b's links
** b-x into b-a-x. Dropping an edge removes both ends, keeping links
** symmetric; neither a drop nor a split disconnects the layer.
** *pLinked tells whether the edge was made. */
static int vdbConnect(VdbHnsw *p, VdbHnswNode *a, VdbHnswNode *b, int layer, int force, int *pLinked){
  int cap = vdbLayerCap(p, layer), rc = SQLITE_OK;
  *pLinked = 0;
  /* Only a damaged graph leads a search on this layer to a lower node. */
  if( layer>a->level || layer>b->level ) return SQLITE_CORRUPT_VTAB;
  if( a==b || vdbLinkIndex(a, layer, b->nid)>=0 ) return SQLITE_OK;
  if( a->anLink[layer]>=cap ) return SQLITE_OK;
  if( b->anLink[layer]>=cap ){
    VdbHnswNode *apNbr[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
    VdbHnswHit aNbr[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
    sqlite3_int64 aKey[4*VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
    short aRank[4*VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
    int n = b->anLink[layer], i, j, iDrop = -1, nSlot;
    for(i=0; rc==SQLITE_OK && i<n; i++){
      rc = p->access.xGet(p->access.pCtx, b->aaLink[layer][i], &apNbr[i]);
      if( rc==SQLITE_OK ){
        aNbr[i].nid = i;                      /* index into apNbr */
        aNbr[i].dist = vdbLinkDist(p, b, layer, i, apNbr[i]);
      }
    }
    if( rc!=SQLITE_OK ) return rc;
    vdbHnswHitSort(aNbr, n);
    /* Farthest first: the first redundant, droppable link goes. Redundant
    ** means a nearer neighbour y of b is linked to x and closer to x than b
    ** is: b still reaches x through y, and an edge on a cycle can go
    ** without splitting the graph. The y are found among x's links through
    ** a small hash of b's (nid -> rank by distance from b; nids are never
    ** 0), so only distances to common neighbours are computed. */
    nSlot = 16;
    while( nSlot<2*n ) nSlot *= 2;
    memset(aKey, 0, sizeof(sqlite3_int64)*(size_t)nSlot);
    for(i=0; i<n; i++){
      sqlite3_int64 nid = b->aaLink[layer][aNbr[i].nid];
      unsigned int h = vdbHashNid(nid) & (unsigned)(nSlot-1);
      while( aKey[h] ) h = (h+1) & (unsigned)(nSlot-1);
      aKey[h] = nid;
      aRank[h] = (short)i;
    }
    for(i=n-1; iDrop<0 && i>0; i--){
      VdbHnswNode *x = apNbr[aNbr[i].nid];
      if( x->anLink[layer] <= p->params.m/2 ) continue;
      for(j=0; iDrop<0 && j<x->anLink[layer]; j++){
        sqlite3_int64 z = x->aaLink[layer][j];
        unsigned int h;
        for(h=vdbHashNid(z) & (unsigned)(nSlot-1); aKey[h]; h=(h+1) & (unsigned)(nSlot-1)){
          if( aKey[h]!=z ) continue;
          if( aRank[h]<i && vdbLinkDist(p, x, layer, j, apNbr[aNbr[aRank[h]].nid]) < aNbr[i].dist ){
            iDrop = (int)aNbr[i].nid;
          }
          break;
        }
      }
    }
    if( iDrop<0 && force ){
      /* No link may go, but a needs one: split b's link to its neighbour x
      ** nearest to a, so b-x becomes b-a-x and x stays as reachable as it
      ** was. a needs room for x too, unless a already links to x. */
      int iSplit = -1, k;
      double best = 0;
      VdbHnswNode *x;
      for(i=0; i<n; i++){
        double d;
        if( vdbLinkIndex(a, layer, apNbr[i]->nid)<0 && a->anLink[layer]>cap-2 ) continue;
        d = vdbPairDist(p, a, apNbr[i]);
        if( iSplit<0 || d<best ){ iSplit = i; best = d; }
      }
      if( iSplit<0 ) return SQLITE_OK;
      x = apNbr[iSplit];
      k = vdbLinkIndex(x, layer, b->nid);
      if( k<0 ) return SQLITE_CORRUPT_VTAB;     /* a one-sided link */
      vdbLinkSet(p, b, layer, iSplit, a->nid, NAN);
      if( vdbLinkIndex(a, layer, x->nid)<0 ){
        vdbLinkSet(p, x, layer, k, a->nid, best);
        vdbLinkAppend(p, a, layer, x->nid, best);
      }else{
        vdbLinkDrop(p, x, layer, k);
      }
      vdbLinkAppend(p, a, layer, b->nid, NAN);
      *pLinked = 1;
      rc = p->access.xDirty(p->access.pCtx, x);
      if( rc==SQLITE_OK ) rc = p->access.xDirty(p->access.pCtx, a);
      if( rc==SQLITE_OK ) rc = p->access.xDirty(p->access.pCtx, b);
      return rc;
    }
    if( iDrop<0 ) return SQLITE_OK;
    {
      VdbHnswNode *x = apNbr[iDrop];
      int k = vdbLinkIndex(x, layer, b->nid);
      if( k<0 ) return SQLITE_CORRUPT_VTAB;     /* a one-sided link */
      vdbLinkDrop(p, x, layer, k);
      vdbLinkDrop(p, b, layer, iDrop);
      rc = p->access.xDirty(p->access.pCtx, x);
      if( rc!=SQLITE_OK ) return rc;
    }
  }
  vdbLinkAppend(p, a, layer, b->nid, NAN);
  vdbLinkAppend(p, b, layer, a->nid, NAN);
  *pLinked = 1;
  rc = p->access.xDirty(p->access.pCtx, a);
  if( rc==SQLITE_OK ) rc = p->access.xDirty(p->access.pCtx, b);
  return rc;
}

/* Connect pNode to the chosen candidates aHit[0..nHit-1] while it has room;
** if that leaves it with fewer than M/2 links (every candidate was full of
** shorter links, as happens to outliers), connect again with force so no
** node is left unreachable. */
static int vdbConnectAll(VdbHnsw *p, VdbHnswNode *pNode, const VdbHnswHit *aHit, int nHit, int layer){
  int pass, i, rc = SQLITE_OK;
  for(pass=0; pass<2 && rc==SQLITE_OK; pass++){
    if( pass==1 && pNode->anLink[layer] >= p->params.m/2 ) break;
    for(i=0; rc==SQLITE_OK && i<nHit && pNode->anLink[layer]<vdbLayerCap(p, layer); i++){
      VdbHnswNode *pOther;
      int linked;
      if( pass==1 && pNode->anLink[layer] >= p->params.m/2 ) break;
      rc = p->access.xGet(p->access.pCtx, aHit[i].nid, &pOther);
      if( rc==SQLITE_OK ) rc = vdbConnect(p, pNode, pOther, layer, pass, &linked);
    }
  }
  return rc;
}

/* Algorithm 4: from candidates sorted nearest first (their dist is to the
** node being linked, the base), keep those closer to the base than to any
** kept one, then fill up with the rest, up to nKeep.
** Reorders aCand so the chosen ones come first; returns how many. */
static int vdbSelectNeighbors(VdbHnsw *p, VdbHnswHit *aCand, int nCand,
                              int nKeep, int *pnChosen){
  VdbHnswHit *aPruned = 0;
  int nChosen = 0, nPruned = 0, i, j, rc = SQLITE_OK;
  if( nCand<=nKeep ){ *pnChosen = nCand; return SQLITE_OK; }
  aPruned = (VdbHnswHit*)sqlite3_malloc64(sizeof(VdbHnswHit)*(sqlite3_uint64)nCand);
  if( aPruned==0 ) return SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<nCand && nChosen<nKeep; i++){
    VdbHnswNode *pC;
    int good = 1;
    rc = p->access.xGet(p->access.pCtx, aCand[i].nid, &pC);
    for(j=0; rc==SQLITE_OK && good && j<nChosen; j++){
      VdbHnswNode *pS;
      rc = p->access.xGet(p->access.pCtx, aCand[j].nid, &pS);
      if( rc==SQLITE_OK && vdbPairDist(p, pC, pS) < aCand[i].dist ) good = 0;
    }
    if( rc!=SQLITE_OK ) break;
    if( good ) aCand[nChosen++] = aCand[i];
    else aPruned[nPruned++] = aCand[i];
  }
  /* Keep pruned connections: fill the remaining slots nearest first. */
  for(i=0; nChosen<nKeep && i<nPruned; i++) aCand[nChosen++] = aPruned[i];
  sqlite3_free(aPruned);
  *pnChosen = nChosen;
  return rc;
}


/* Whether inserts walk codes too (when the space has them): the beam
** search that finds a new node's neighbours is most of an insert's time. */
#ifndef VDB_HNSW_BUILD_WITH_CODES
# define VDB_HNSW_BUILD_WITH_CODES 1
#endif

static int vdbRerank(VdbHnsw *p, const void *pQuery, float queryAux, VdbHeap *pW);

/* Code pQuery into the scratch buffer and point s at the code. */
static int vdbQueryCode(VdbHnsw *p, const void *pQuery, VdbLayerSearch *s){
  if( p->pQueryCode==0 ){
    p->pQueryCode = sqlite3_malloc(p->space.nQueryCodeBytes);
    if( p->pQueryCode==0 ) return SQLITE_NOMEM;
  }
  p->space.xEncodeQuery(&p->space, pQuery, p->pQueryCode);
  s->pQuery = p->pQueryCode;
  s->isCode = 1;
  return SQLITE_OK;
}

/* ---- insert (algorithm 1) ------------------------------------------------------ */

/* The part of a link that changes the graph, one thread at a time when
** several link at once (xWriteLock). */
static void vdbWriteSection(VdbHnsw *p, int bEnter){
  if( p->access.xWriteLock ) p->access.xWriteLock(p->access.pCtx, bEnter);
}

int vdbHnswInsert(VdbHnsw *p, sqlite3_int64 nid, const void *pVec){
  VdbHnswNode *pNew;
  int rc = p->access.xCreate(p->access.pCtx, nid, vdbHnswLevel(&p->params, nid), pVec, &pNew);
  if( rc==SQLITE_OK ) rc = vdbHnswLink(p, pNew);
  return rc;
}

/* With several threads linking: every node the connects below will touch
** -- each chosen neighbour and, for one that is full and so may drop or
** split one of its links, each of its neighbours -- is one the access
** layer holds, so that the write section makes all of a node's links or
** none (a node linked on upper layers only would lead other links'
** descents to a bottom layer they cannot leave). A neighbour with room
** now has room when its turn comes: the section's earlier connects only
** take links from it, and the one that gives it a link to the new node
** is its last (vdbConnect returns at once for a pair already linked).
** Under the write lock: the lists read do not change. */
static int vdbLinkHold(VdbHnsw *p, const VdbHnswHit *aChosen, const int *anChosen, int top){
  int layer, i, j, rc = SQLITE_OK;
  for(layer=top; rc==SQLITE_OK && layer>=0; layer--){
    for(i=0; rc==SQLITE_OK && i<anChosen[layer]; i++){
      VdbHnswNode *b, *x;
      rc = p->access.xGet(p->access.pCtx, aChosen[layer*p->params.m + i].nid, &b);
      if( rc!=SQLITE_OK || layer>b->level || b->anLink[layer]<vdbLayerCap(p, layer) ) continue;
      for(j=0; rc==SQLITE_OK && j<b->anLink[layer]; j++){
        rc = p->access.xGet(p->access.pCtx, b->aaLink[layer][j], &x);
      }
    }
  }
  return rc;
}

/* Bring what vdbLinkHold and the connects will read -- the chosen
** neighbours, and the neighbours of those that are full, whose pruning
** reads every one of their links -- towards this core's cache, all at
** once so that the misses overlap, before the connects wait on them one
** by one. With several threads linking this is before the write lock is
** taken, so that the section, which one thread runs at a time, finds it
** there instead of waiting on memory with the other threads queued
** behind it; with one thread it took the pruning's share of a build of
** 20,000 x 128 from 10.7% to 9.1% of the time (perf; 8.95 s to 8.59 s).
** Only hints: links are copied (xLinksCopy) where other threads may be
** changing them, and a node missing now is for the connects to report. */
static void vdbLinkWarm(VdbHnsw *p, const VdbHnswHit *aChosen, const int *anChosen, int top){
  sqlite3_int64 aLink[VDB_HNSW_LAYER0_FACTOR*VDB_HNSW_MAX_M];
  const sqlite3_int64 *a;
  int layer, i, j, n;
  if( p->access.xPrefetch==0 ) return;
  for(layer=top; layer>=0; layer--){
    for(i=0; i<anChosen[layer]; i++){
      VdbHnswNode *b;
      if( p->access.xGet(p->access.pCtx, aChosen[layer*p->params.m + i].nid, &b)!=SQLITE_OK ) continue;
      if( layer>b->level ) continue;
      if( p->access.xLinksCopy ){
        n = p->access.xLinksCopy(p->access.pCtx, b, layer, aLink);
        a = aLink;
      }else{
        n = b->anLink[layer];
        a = b->aaLink[layer];
      }
      if( n<vdbLayerCap(p, layer) ) continue;
      for(j=0; j<n; j++) p->access.xPrefetch(p->access.pCtx, a[j]);
    }
  }
}

/* Algorithm 1, in two parts: the searches, layer by layer from the top,
** choose each layer's neighbours without changing the graph; then the
** write section makes the links, every layer's, and moves the entry
** point. A layer's search reads only that layer's links, and a connect
** changes only its own layer's, so this is the graph that connecting
** each layer right after its search gives. With several threads linking
** (a worker's graph) the searches run concurrently, reading the graph as
** other threads change it, and the write section takes the access
** layer's lock; the entry point lives in pHome. The walk starts from the
** entry point as it was when this link began: a node that another thread
** raised above it since is found through the links it made. A node that
** already has links (an earlier link of it failed half way) is kept out
** of its own descent. */
int vdbHnswLink(VdbHnsw *p, VdbHnswNode *pNew){
  VdbHnsw *pHome = p->pHome ? p->pHome : p;
  VdbHnswHit ep;
  VdbHeap w;
  VdbLayerSearch tmpl;
  VdbHnswHit *aEp = 0, *aChosen = 0;
  int anChosen[VDB_HNSW_MAX_LEVEL+1];
  int level = pNew->level, m = p->params.m;
  int layer, top, nEp = 1, rc = SQLITE_OK;
  sqlite3_int64 nidSkip = 0;

  vdbWriteSection(p, 1);
  if( !pHome->hasEntry ){
    pHome->hasEntry = 1;
    pHome->entryNid = pNew->nid;
    pHome->entryLevel = level;
    pHome->entryChanged = 1;
    rc = p->access.xDirty(p->access.pCtx, pNew);
    vdbWriteSection(p, 0);
    return rc;
  }
  if( p!=pHome ){
    p->hasEntry = 1;
    p->entryNid = pHome->entryNid;
    p->entryLevel = pHome->entryLevel;
  }
  for(layer=0; layer<=level; layer++){
    if( pNew->anLink[layer] ) nidSkip = pNew->nid;
  }
  vdbWriteSection(p, 0);
  if( nidSkip==p->entryNid ) nidSkip = 0;
  top = level<p->entryLevel ? level : p->entryLevel;
  memset(&w, 0, sizeof(w));
  memset(&tmpl, 0, sizeof(tmpl));
  memset(anChosen, 0, sizeof(anChosen));
  tmpl.pQuery = pNew->pVec;
  tmpl.queryAux = pNew->aux;
  if( VDB_HNSW_BUILD_WITH_CODES && p->space.nCodeBytes && pNew->pCode ){
    rc = vdbQueryCode(p, pNew->pVec, &tmpl);
  }
  if( rc==SQLITE_OK ) rc = vdbDescend(p, &tmpl, level, nidSkip, &ep);
  aEp = (VdbHnswHit*)sqlite3_malloc64(sizeof(VdbHnswHit) * (sqlite3_uint64)(p->params.efConstruction + 1));
  aChosen = (VdbHnswHit*)sqlite3_malloc64(sizeof(VdbHnswHit) * (sqlite3_uint64)(top + 1) * (sqlite3_uint64)m);
  if( aEp==0 || aChosen==0 ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_OK ) aEp[0] = ep;
  for(layer=top; rc==SQLITE_OK && layer>=0; layer--){
    VdbLayerSearch s;
    memset(&s, 0, sizeof(s));
    s.pQuery = tmpl.pQuery;
    s.queryAux = tmpl.queryAux;
    s.isCode = tmpl.isCode;
    s.layer = layer;
    s.ef = p->params.efConstruction;
    rc = vdbVisitedReset(&p->pVisited);
    /* The new node is linked to nothing yet, but keep it out of results. */
    if( rc==SQLITE_OK && vdbVisitedAdd(p->pVisited, pNew->nid)<0 ) rc = SQLITE_NOMEM;
    if( rc==SQLITE_OK ) rc = vdbSearchLayer(p, &s, aEp, nEp, &w);
    if( rc!=SQLITE_OK ) break;
    /* The whole beam seeds the next layer down. */
    nEp = w.n;
    memcpy(aEp, w.a, sizeof(VdbHnswHit)*(size_t)w.n);
    if( s.isCode && !(VDB_HNSW_LINK_WITH_CODES && p->space.xCodePair) ){
      /* The neighbour choice compares candidates with each other through
      ** their vectors: give it the vectors' distances to the new node too
      ** (with codes, vdbPairDist, the beam's code distances serve). */
      rc = vdbRerank(p, pNew->pVec, pNew->aux, &w);
      if( rc!=SQLITE_OK ) break;
      if( w.n>1 ) vdbHnswHitSort(w.a, w.n);
    }
    rc = vdbSelectNeighbors(p, w.a, w.n, m, &anChosen[layer]);
    if( rc==SQLITE_OK ) memcpy(&aChosen[layer*m], w.a, sizeof(VdbHnswHit)*(size_t)anChosen[layer]);
  }
  sqlite3_free(w.a);
  sqlite3_free(aEp);
  if( rc==SQLITE_OK ){
    vdbLinkWarm(p, aChosen, anChosen, top);
    vdbWriteSection(p, 1);
    if( p->access.xWriteLock ) rc = vdbLinkHold(p, aChosen, anChosen, top);
    for(layer=top; rc==SQLITE_OK && layer>=0; layer--){
      rc = vdbConnectAll(p, pNew, &aChosen[layer*m], anChosen[layer], layer);
    }
    if( rc==SQLITE_OK ) rc = p->access.xDirty(p->access.pCtx, pNew);
    if( rc==SQLITE_OK && level>pHome->entryLevel ){
      pHome->entryNid = pNew->nid;
      pHome->entryLevel = level;
      pHome->entryChanged = 1;
    }
    vdbWriteSection(p, 0);
  }
  sqlite3_free(aChosen);
  return rc;
}

void vdbHnswWorkerInit(VdbHnsw *pWorker, VdbHnsw *pHome, const VdbHnswAccess *pAccess){
  memset(pWorker, 0, sizeof(*pWorker));
  pWorker->params = pHome->params;
  pWorker->space = pHome->space;
  pWorker->access = *pAccess;
  pWorker->pHome = pHome;
}

/* ---- delete ----------------------------------------------------------------------- */

/* Search results for relinking exclude the node and its current
** neighbours, while the walk may still pass through them. */
typedef struct VdbRelinkFilter { VdbHnswNode *pNode; int layer; } VdbRelinkFilter;
static int vdbRelinkKeep(void *pArg, sqlite3_int64 nid){
  VdbRelinkFilter *f = (VdbRelinkFilter*)pArg;
  return nid!=f->pNode->nid && vdbLinkIndex(f->pNode, f->layer, nid)<0;
}

/* Give a node that lost links on a layer new neighbours found the way an
** insert finds them: a beam search for its vector from the entry point. */
static int vdbRelink(VdbHnsw *p, VdbHnswNode *pNode, int layer){
  VdbRelinkFilter filter;
  VdbHnswHit ep;
  VdbHeap w;
  VdbLayerSearch s;
  int rc, nChosen = 0;
  memset(&w, 0, sizeof(w));
  memset(&s, 0, sizeof(s));
  p->nRepairSearch++;
  s.pQuery = pNode->pVec;
  s.queryAux = pNode->aux;
  rc = vdbDescend(p, &s, layer, 0, &ep);
  filter.pNode = pNode;
  filter.layer = layer;
  s.layer = layer;
  s.ef = p->params.efConstruction;
  s.xFilter = vdbRelinkKeep;
  s.pFilterArg = &filter;
  if( rc==SQLITE_OK ) rc = vdbVisitedReset(&p->pVisited);
  if( rc==SQLITE_OK ) rc = vdbSearchLayer(p, &s, &ep, 1, &w);
  if( rc==SQLITE_OK ) rc = vdbSelectNeighbors(p, w.a, w.n, p->params.m, &nChosen);
  if( rc==SQLITE_OK ) rc = vdbConnectAll(p, pNode, w.a, nChosen, layer);
  sqlite3_free(w.a);
  return rc;
}

/* Smallest beam of the walk that checks a group of a deleted node's
** neighbours is still reachable. */
#define VDB_KEEP_CONNECTED_EF 64
/* Nodes the breadth-first walk that joins those groups may visit. */
#define VDB_KEEP_CONNECTED_BFS 512

static int vdbGroupRoot(int *aParent, int i){
  while( aParent[i]!=i ){ aParent[i] = aParent[aParent[i]]; i = aParent[i]; }
  return i;
}

/* Groups are usually joined by short paths that avoid the deleted node.
** A breadth-first walk on layer 0 from the group of aNid[0], of at most
** VDB_KEEP_CONNECTED_BFS nodes, merges every group it meets into it (no
** distances, so cheap); if all merge, the one group left is the one the
** deleted node was reached through, and no walk from the entry point is
** needed. aSorted holds (nid, index) pairs of aNid ordered by nid. */
static int vdbMergeNearby(VdbHnsw *p, const sqlite3_int64 *aNid, int n,
                          const sqlite3_int64 *aSorted, int *aParent, int *pnGroup){
  int nMax = n + VDB_KEEP_CONNECTED_BFS, nQueue = 0, head = 0, i, j, rc;
  sqlite3_int64 *aQueue = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64)*(sqlite3_uint64)nMax);
  if( aQueue==0 ) return SQLITE_NOMEM;
  rc = vdbVisitedReset(&p->pVisited);
  for(i=0; rc==SQLITE_OK && i<n; i++){
    if( vdbGroupRoot(aParent, i)!=vdbGroupRoot(aParent, 0) ) continue;
    if( vdbVisitedAdd(p->pVisited, aNid[i])<0 ){ rc = SQLITE_NOMEM; break; }
    aQueue[nQueue++] = aNid[i];
  }
  while( rc==SQLITE_OK && head<nQueue && *pnGroup>1 ){
    VdbHnswNode *pA;
    rc = p->access.xGet(p->access.pCtx, aQueue[head++], &pA);
    for(j=0; rc==SQLITE_OK && j<pA->anLink[0]; j++){
      sqlite3_int64 b = pA->aaLink[0][j];
      const sqlite3_int64 *pHit;
      int isNew = vdbVisitedAdd(p->pVisited, b);
      if( isNew<0 ){ rc = SQLITE_NOMEM; break; }
      if( !isNew ) continue;
      pHit = (const sqlite3_int64*)bsearch(&b, aSorted, (size_t)n, 2*sizeof(sqlite3_int64), vdbNidCompare);
      if( pHit && vdbGroupRoot(aParent, (int)pHit[1])!=vdbGroupRoot(aParent, 0) ){
        /* Another group: it joins, and its members carry on the walk. */
        int gOther = vdbGroupRoot(aParent, (int)pHit[1]);
        for(i=0; i<n; i++){
          if( vdbGroupRoot(aParent, i)==gOther && aNid[i]!=b
           && vdbVisitedAdd(p->pVisited, aNid[i])>0 && nQueue<nMax ){
            aQueue[nQueue++] = aNid[i];
          }
        }
        aParent[gOther] = vdbGroupRoot(aParent, 0);
        (*pnGroup)--;
      }
      if( nQueue<nMax ) aQueue[nQueue++] = b;
    }
  }
  sqlite3_free(aQueue);
  return rc;
}

/* Link pNode, which no walk from the entry point reaches, to the nodes such
** a walk found, nearest first: with room, by a redundant drop, or failing
** both by splitting a link -- one of theirs, or, when pNode is full, one
** of pNode's. Sets *pLinked once an edge is made. */
static int vdbLinkToReached(VdbHnsw *p, VdbHnswNode *pNode, const VdbHeap *pW, int *pLinked){
  int force, i, rc = SQLITE_OK;
  *pLinked = 0;
  for(force=0; force<2 && rc==SQLITE_OK && !*pLinked; force++){
    for(i=0; rc==SQLITE_OK && !*pLinked && i<pW->n; i++){
      VdbHnswNode *pOther;
      rc = p->access.xGet(p->access.pCtx, pW->a[i].nid, &pOther);
      if( rc==SQLITE_OK ) rc = vdbConnect(p, pNode, pOther, 0, force, pLinked);
      if( rc==SQLITE_OK && !*pLinked ) rc = vdbConnect(p, pOther, pNode, 0, force, pLinked);
    }
  }
  return rc;
}

/* After a delete's repair on layer 0, the former neighbours aNid[0..n-1]
** of the deleted node fall into groups joined by their links. The node was
** reached through one of them, so one group stays connected to the entry
** point; so may the others, through other paths -- or not, when the
** deleted node was their only way in (its neighbours linked each other
** but none got room towards the rest). For each group when there are
** several, a walk on layer 0 from the entry point towards one member
** either visits a member (the group is reachable) or finds reachable nodes
** to link a member to. So no delete leaves a node that layer 0 cannot
** reach from the entry point. */
static int vdbKeepConnected(VdbHnsw *p, const sqlite3_int64 *aNid, int n){
  sqlite3_int64 *aSorted = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64)*2*(sqlite3_uint64)n);
  int *aParent = (int*)sqlite3_malloc64(sizeof(int)*(sqlite3_uint64)n);
  int i, j, g, nGroup = 0, rc = SQLITE_OK;
  if( aSorted==0 || aParent==0 ) rc = SQLITE_NOMEM;
  /* Groups: union-find over the links between members. aSorted holds
  ** (nid, index) pairs ordered by nid. */
  for(i=0; rc==SQLITE_OK && i<n; i++){
    aSorted[2*i] = aNid[i];
    aSorted[2*i+1] = i;
    aParent[i] = i;
  }
  if( rc==SQLITE_OK ) qsort(aSorted, (size_t)n, 2*sizeof(sqlite3_int64), vdbNidCompare);
  for(i=0; rc==SQLITE_OK && i<n; i++){
    VdbHnswNode *pN;
    rc = p->access.xGet(p->access.pCtx, aNid[i], &pN);
    for(j=0; rc==SQLITE_OK && j<pN->anLink[0]; j++){
      sqlite3_int64 *pHit = (sqlite3_int64*)bsearch(&pN->aaLink[0][j], aSorted, (size_t)n,
                                                     2*sizeof(sqlite3_int64), vdbNidCompare);
      if( pHit ) aParent[vdbGroupRoot(aParent, i)] = vdbGroupRoot(aParent, (int)pHit[1]);
    }
  }
  for(i=0; rc==SQLITE_OK && i<n; i++) nGroup += vdbGroupRoot(aParent, i)==i;
  if( rc==SQLITE_OK && nGroup>1 ) rc = vdbMergeNearby(p, aNid, n, aSorted, aParent, &nGroup);
  for(g=0; rc==SQLITE_OK && nGroup>1 && g<n; g++){
    VdbHnswNode *pRep, *pEntry;
    VdbLayerSearch s;
    VdbHnswHit ep;
    VdbHeap w;
    int reached = 0, linked;
    if( vdbGroupRoot(aParent, g)!=g ) continue;
    for(i=0; i<n; i++){
      if( vdbGroupRoot(aParent, i)==g && aNid[i]==p->entryNid ) reached = 1;
    }
    if( reached ) continue;
    /* The walk starts at the entry point itself, on layer 0: a descent
    ** through the upper layers could land inside the group even when no
    ** layer-0 path leads there, and layer 0 is where searches end. */
    memset(&w, 0, sizeof(w));
    memset(&s, 0, sizeof(s));
    rc = p->access.xGet(p->access.pCtx, aNid[g], &pRep);
    if( rc==SQLITE_OK ) rc = p->access.xGet(p->access.pCtx, p->entryNid, &pEntry);
    if( rc==SQLITE_OK ){
      ep.nid = p->entryNid;
      ep.dist = vdbNodeDist(p, pRep, pEntry);
    }
    s.pQuery = rc==SQLITE_OK ? pRep->pVec : 0;
    s.queryAux = rc==SQLITE_OK ? pRep->aux : 0;
    s.layer = 0;
    /* A wide beam: if the group must be linked, some of many reachable
    ** nodes will have room. */
    s.ef = p->params.efConstruction>VDB_KEEP_CONNECTED_EF ? p->params.efConstruction : VDB_KEEP_CONNECTED_EF;
    if( rc==SQLITE_OK ) rc = vdbVisitedReset(&p->pVisited);
    if( rc==SQLITE_OK ) rc = vdbSearchLayer(p, &s, &ep, 1, &w);
    for(i=0; rc==SQLITE_OK && !reached && i<n; i++){
      if( vdbGroupRoot(aParent, i)==g && vdbVisitedHas(p->pVisited, aNid[i]) ) reached = 1;
    }
    if( rc==SQLITE_OK && !reached ){
      /* Any member will do: one with room may take an edge that another,
      ** full again after the repair, cannot. */
      linked = 0;
      for(i=0; rc==SQLITE_OK && !linked && i<n; i++){
        VdbHnswNode *pMember;
        if( vdbGroupRoot(aParent, i)!=g ) continue;
        rc = p->access.xGet(p->access.pCtx, aNid[i], &pMember);
        if( rc==SQLITE_OK ) rc = vdbLinkToReached(p, pMember, &w, &linked);
      }
    }
    sqlite3_free(w.a);
  }
  sqlite3_free(aSorted);
  sqlite3_free(aParent);
  return rc;
}

/* Remove x from every neighbour; re-elect the entry point if it was x;
** then reconnect the former neighbours to each other, nearest first, while
** they have room; a neighbour still left with fewer than M/2 links on a
** layer searches the graph for new ones. */
int vdbHnswDelete(VdbHnsw *p, sqlite3_int64 nid){
  VdbHnswNode *pX;
  sqlite3_int64 *aaNbr[VDB_HNSW_MAX_LEVEL+1];
  int *aaTarget[VDB_HNSW_MAX_LEVEL+1];
  int anNbr[VDB_HNSW_MAX_LEVEL+1];
  int layer, level, rc, i, j;
  rc = p->access.xGet(p->access.pCtx, nid, &pX);
  if( rc!=SQLITE_OK ) return rc;
  level = pX->level;
  memset(aaNbr, 0, sizeof(aaNbr));
  memset(aaTarget, 0, sizeof(aaTarget));
  for(layer=0; rc==SQLITE_OK && layer<=level; layer++){
    anNbr[layer] = pX->anLink[layer];
    aaNbr[layer] = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64)*(sqlite3_uint64)(anNbr[layer]+1));
    aaTarget[layer] = (int*)sqlite3_malloc64(sizeof(int)*(sqlite3_uint64)(anNbr[layer]+1));
    if( aaNbr[layer]==0 || aaTarget[layer]==0 ){ rc = SQLITE_NOMEM; break; }
    memcpy(aaNbr[layer], pX->aaLink[layer], sizeof(sqlite3_int64)*(size_t)anNbr[layer]);
    for(i=0; rc==SQLITE_OK && i<anNbr[layer]; i++){
      VdbHnswNode *pN;
      int k;
      rc = p->access.xGet(p->access.pCtx, aaNbr[layer][i], &pN);
      if( rc!=SQLITE_OK ) break;
      k = vdbLinkIndex(pN, layer, nid);
      if( k<0 ){ rc = SQLITE_CORRUPT_VTAB; break; }   /* a one-sided link */
      /* The repair gives back the link lost, or fills up to M: linking to
      ** every former neighbour with room would swell degrees with short,
      ** redundant edges at each delete, and a churned graph would walk
      ** slower and reach less than a fresh one. */
      aaTarget[layer][i] = pN->anLink[layer]>p->params.m ? pN->anLink[layer] : p->params.m;
      vdbLinkRemoveAt(pN, layer, k);
      rc = p->access.xDirty(p->access.pCtx, pN);
    }
    pX->anLink[layer] = 0;
  }
  /* Re-elect the entry point before any repair search starts from it. */
  if( rc==SQLITE_OK && p->entryNid==nid ){
    sqlite3_int64 top;
    int topLevel;
    rc = p->access.xTopNode(p->access.pCtx, nid, &top, &topLevel);
    if( rc==SQLITE_NOTFOUND ){
      p->hasEntry = 0;
      rc = SQLITE_OK;
    }else if( rc==SQLITE_OK ){
      p->entryNid = top;
      p->entryLevel = topLevel;
    }
    p->entryChanged = 1;
  }
  for(layer=0; rc==SQLITE_OK && layer<=level; layer++){
    int nNbr = anNbr[layer];
    VdbHnswHit *aCand = (VdbHnswHit*)sqlite3_malloc64(sizeof(VdbHnswHit)*(sqlite3_uint64)(nNbr+1));
    if( aCand==0 ){ rc = SQLITE_NOMEM; break; }
    for(i=0; rc==SQLITE_OK && i<nNbr; i++){
      VdbHnswNode *pN;
      int nCand = 0;
      rc = p->access.xGet(p->access.pCtx, aaNbr[layer][i], &pN);
      for(j=0; rc==SQLITE_OK && j<nNbr; j++){
        VdbHnswNode *pO;
        if( j==i ) continue;
        rc = p->access.xGet(p->access.pCtx, aaNbr[layer][j], &pO);
        if( rc==SQLITE_OK && vdbLinkIndex(pN, layer, aaNbr[layer][j])<0 ){
          aCand[nCand].nid = aaNbr[layer][j];
          aCand[nCand].dist = vdbNodeDist(p, pN, pO);
          nCand++;
        }
      }
      if( rc!=SQLITE_OK ) break;
      if( nCand>1 ) vdbHnswHitSort(aCand, nCand);
      for(j=0; rc==SQLITE_OK && j<nCand && pN->anLink[layer]<aaTarget[layer][i]; j++){
        VdbHnswNode *pO;
        int linked;
        rc = p->access.xGet(p->access.pCtx, aCand[j].nid, &pO);
        if( rc==SQLITE_OK ) rc = vdbConnect(p, pN, pO, layer, 0, &linked);
      }
      if( rc==SQLITE_OK && p->hasEntry && pN->anLink[layer] < p->params.m/2 ){
        rc = vdbRelink(p, pN, layer);
      }
    }
    if( rc==SQLITE_OK && layer==0 && nNbr>1 && p->hasEntry ){
      rc = vdbKeepConnected(p, aaNbr[0], nNbr);
    }
    sqlite3_free(aCand);
  }
  for(layer=0; layer<=level; layer++){
    sqlite3_free(aaNbr[layer]);
    sqlite3_free(aaTarget[layer]);
  }
  if( rc==SQLITE_OK ) rc = p->access.xRemove(p->access.pCtx, pX);
  return rc;
}

/* ---- search (algorithm 5) ----------------------------------------------------------- */

/* A walk over codes ends with a beam ordered by approximate distances:
** the best VDB_RERANK_FACTOR*k are measured again with their vectors, so
** the k chosen and the distances reported are the vectors'. Measuring the
** whole beam cost speed at large ef_search (each vector a cold read) for
** no recall. The caller first adds to the beam the best nodes the walk
** measured but left out of it, up to 2k in all: with ef close to k a
** true neighbour the codes ranked a little too far would otherwise be
** lost (Fashion-MNIST at ef_search=10, k=10: recall@10 0.944 with the beam
** alone, against 0.968 walking vectors). */
#define VDB_RERANK_BATCH 32        /* nodes found before any is measured */

/* The vector of node nid, a result: xResultVector, or xGet's. Not the
** xVector fast path: a result must be a node the access layer holds (the
** reserve's nodes were measured but never expanded, and the fast path
** does not load nodes). */
static int vdbHnswResultVector(VdbHnsw *p, sqlite3_int64 nid, const void **ppVec, float *pAux){
  VdbHnswNode *pNode;
  int rc;
  if( p->access.xResultVector ) return p->access.xResultVector(p->access.pCtx, nid, ppVec, pAux);
  rc = p->access.xGet(p->access.pCtx, nid, &pNode);
  if( rc==SQLITE_OK ){
    *ppVec = pNode->pVec;
    *pAux = pNode->aux;
  }
  return rc;
}

static int vdbRerank(VdbHnsw *p, const void *pQuery, float queryAux, VdbHeap *pW){
  const void *apVec[VDB_RERANK_BATCH];
  float aAux[VDB_RERANK_BATCH];
  int i, j, n, rc = SQLITE_OK;
  /* In batches: find the vectors, asking for the head of each, then
  ** measure them with the next vector on its way (a vector's misses are
  ** the cost here; one at a time they did not overlap). */
  for(i=0; rc==SQLITE_OK && i<pW->n; i+=n){
    n = pW->n - i < VDB_RERANK_BATCH ? pW->n - i : VDB_RERANK_BATCH;
    for(j=0; rc==SQLITE_OK && j<n; j++){
      rc = vdbHnswResultVector(p, pW->a[i+j].nid, &apVec[j], &aAux[j]);
      if( rc==SQLITE_OK ) __builtin_prefetch(apVec[j]);
    }
    for(j=0; rc==SQLITE_OK && j<n; j++){
      if( j+1<n ) vdbPrefetchVector(apVec[j+1], p->space.nVecBytes);
      pW->a[i+j].dist = vdbHnswDist(p, pQuery, queryAux, apVec[j], aAux[j]);
    }
  }
  return rc;
}

int vdbHnswSearch(VdbHnsw *p, const void *pQuery, int k, int ef,
                  VdbHnswFilter xFilter, void *pFilterArg,
                  VdbHnswHit **paHit, int *pnHit, int *pnVisited){
  VdbHnswHit ep;
  VdbHeap w, reserve;
  VdbLayerSearch s;
  float queryAux;
  int rc = SQLITE_OK, i, n = 0;
  *paHit = 0;
  *pnHit = 0;
  *pnVisited = 0;
  if( !p->hasEntry || k<=0 ) return SQLITE_OK;
  memset(&w, 0, sizeof(w));
  memset(&s, 0, sizeof(s));
  memset(&reserve, 0, sizeof(reserve));
  queryAux = vdbHnswAux(&p->space, pQuery);
  s.pQuery = pQuery;
  s.queryAux = queryAux;
  if( p->space.nCodeBytes ) rc = vdbQueryCode(p, pQuery, &s);
  if( rc==SQLITE_OK ) rc = vdbDescend(p, &s, 0, 0, &ep);
  s.layer = 0;
  /* A walk over vectors needs a beam of k to return k. A walk over codes
  ** returns the best of its beam and its reserve (below), 2k hits in all,
  ** so its beam may be narrower than k: ef_search below k trades recall
  ** for speed as it does above (Fashion-MNIST, k=10: recall@10 0.968 at
  ** ef_search 10, where hnswlib has 0.934). */
  s.ef = (s.isCode && ef>0) || ef>k ? ef : k;
  s.xFilter = xFilter;
  s.pFilterArg = pFilterArg;
  if( s.isCode && s.ef<VDB_RERANK_FACTOR*k ){
    /* With a wider beam the reserve could never reach the best 2k. */
    reserve.isMax = 1;
    s.pReserve = &reserve;
    s.nReserve = VDB_RERANK_FACTOR*k - s.ef;
  }
  if( rc==SQLITE_OK ) rc = vdbVisitedReset(&p->pVisited);
  if( rc==SQLITE_OK ) rc = vdbSearchLayer(p, &s, &ep, 1, &w);
  /* The reserve joins the beam (nearest first, so a valid min-heap for
  ** the pushes), and the whole is sorted again. */
  for(i=0; rc==SQLITE_OK && i<reserve.n; i++) rc = vdbHeapPush(&w, reserve.a[i]);
  if( rc==SQLITE_OK && reserve.n>0 ) vdbHnswHitSort(w.a, w.n);
  sqlite3_free(reserve.a);
  if( rc==SQLITE_OK && s.isCode ){
    int nRerank = VDB_RERANK_FACTOR*k;
    if( w.n>nRerank ) w.n = nRerank;
    rc = vdbRerank(p, pQuery, queryAux, &w);
    if( rc==SQLITE_OK && w.n>1 ) vdbHnswHitSort(w.a, w.n);
  }
  if( rc==SQLITE_OK ){
    int resort = 0;
    for(i=0; rc==SQLITE_OK && i<w.n && n<k; i++){
      if( p->space.xReport==0 || isinf(w.a[i].dist) ){
        /* Measure again: the walk's distance is not the metric's own, or
        ** is +Inf, which stands for "no distance" in the walk but may be
        ** a real float32 overflow. */
        const void *pVec;
        float aux;
        double d;
        rc = vdbHnswResultVector(p, w.a[i].nid, &pVec, &aux);
        if( rc!=SQLITE_OK ) break;
        if( !vdbRawDistance(p->space.pK, p->space.eElem, p->space.eMetric, p->space.dim,
                            pQuery, pVec, &d) ) continue;
        if( p->space.xReport==0 ){
          w.a[i].dist = d;
          resort = 1;
        }
      }
      if( p->space.xReport ) w.a[i].dist = p->space.xReport(w.a[i].dist);
      w.a[n++] = w.a[i];
    }
    if( n>1 && resort ) vdbHnswHitSort(w.a, n);
  }
  if( rc==SQLITE_OK ){
    *paHit = w.a;
    *pnHit = n;
    *pnVisited = s.nVisited;
  }else{
    sqlite3_free(w.a);
  }
  return rc;
}

/* ---- integrity ------------------------------------------------------------------------ */

/* Record the first broken invariant. */
#define VDB_CHECK_FAIL(...) do{ \
  sqlite3_free(*pzErr); *pzErr = sqlite3_mprintf(__VA_ARGS__); rc = SQLITE_CORRUPT; \
}while(0)

int vdbHnswCheck(VdbHnsw *p, const sqlite3_int64 *aNid, int nNid, char **pzErr){
  int i, j, layer, rc = SQLITE_OK, topLevel = -1, nReached = 0;
  sqlite3_int64 *aQueue = 0;
  if( nNid==0 ){
    if( p->hasEntry ) VDB_CHECK_FAIL("entry point %lld in an empty graph", p->entryNid);
    return rc;
  }
  if( !p->hasEntry ){
    VDB_CHECK_FAIL("no entry point for %d nodes", nNid);
    return rc;
  }
  for(i=0; rc==SQLITE_OK && i<nNid; i++){
    VdbHnswNode *pA;
    rc = p->access.xGet(p->access.pCtx, aNid[i], &pA);
    if( rc!=SQLITE_OK ) return rc;
    if( pA->level>topLevel ) topLevel = pA->level;
    for(layer=0; rc==SQLITE_OK && layer<=VDB_HNSW_MAX_LEVEL; layer++){
      if( layer>pA->level ){
        if( pA->anLink[layer] ) VDB_CHECK_FAIL("node %lld has links on layer %d, above its level", pA->nid, layer);
        continue;
      }
      if( pA->anLink[layer]>vdbLayerCap(p, layer) ){
        VDB_CHECK_FAIL("node %lld has more links than allowed on layer %d", pA->nid, layer);
      }
      for(j=0; rc==SQLITE_OK && j<pA->anLink[layer]; j++){
        sqlite3_int64 b = pA->aaLink[layer][j];
        VdbHnswNode *pB;
        int r;
        if( b==pA->nid ){ VDB_CHECK_FAIL("node %lld links to itself on layer %d", b, layer); break; }
        if( vdbLinkIndex(pA, layer, b)!=j ){ VDB_CHECK_FAIL("node %lld links twice to %lld on layer %d", pA->nid, b, layer); break; }
        r = p->access.xGet(p->access.pCtx, b, &pB);
        if( r==SQLITE_NOTFOUND ){ VDB_CHECK_FAIL("node %lld links to missing node %lld on layer %d", pA->nid, b, layer); break; }
        if( r!=SQLITE_OK ) return r;
        if( layer>pB->level || vdbLinkIndex(pB, layer, pA->nid)<0 ){
          VDB_CHECK_FAIL("link %lld -> %lld on layer %d is not reciprocal", pA->nid, b, layer);
        }
      }
    }
  }
  if( rc==SQLITE_OK && p->entryLevel!=topLevel ){
    VDB_CHECK_FAIL("entry point %lld is on level %d, not the top level %d", p->entryNid, p->entryLevel, topLevel);
  }
  /* Every node is reachable from the entry point through layer 0. */
  if( rc==SQLITE_OK ){
    aQueue = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64)*(sqlite3_uint64)nNid);
    rc = aQueue ? vdbVisitedReset(&p->pVisited) : SQLITE_NOMEM;
  }
  if( rc==SQLITE_OK ){
    int head = 0;
    aQueue[nReached++] = p->entryNid;
    vdbVisitedAdd(p->pVisited, p->entryNid);
    while( rc==SQLITE_OK && head<nReached ){
      VdbHnswNode *pA;
      rc = p->access.xGet(p->access.pCtx, aQueue[head++], &pA);
      for(j=0; rc==SQLITE_OK && j<pA->anLink[0]; j++){
        int isNew = vdbVisitedAdd(p->pVisited, pA->aaLink[0][j]);
        if( isNew<0 ) rc = SQLITE_NOMEM;
        else if( isNew && nReached<nNid ) aQueue[nReached++] = pA->aaLink[0][j];
      }
    }
    if( rc==SQLITE_OK && nReached<nNid ){
      VDB_CHECK_FAIL("only %d of %d nodes are reachable from the entry point", nReached, nNid);
    }
  }
  sqlite3_free(aQueue);
  return rc;
}

int vdbHnswCheckKept(VdbHnsw *p, sqlite3_int64 nid, char **pzErr){
  VdbHnswNode *pA, *pB;
  int j, rc = p->access.xGet(p->access.pCtx, nid, &pA);
  for(j=0; rc==SQLITE_OK && pA->aDist0 && j<pA->anLink[0]; j++){
    double want, got = pA->aDist0[j];
    sqlite3_int64 b = pA->aaLink[0][j];
    if( isnan(got) ) continue;
    rc = p->access.xGet(p->access.pCtx, b, &pB);
    if( rc!=SQLITE_OK ) break;
    /* Up to the order of a sum: x-y may have been measured as y-x. */
    want = (float)vdbPairDist(p, pA, pB);
    if( !(got==want || fabs(got - want) <= 1e-5*fabs(want)) ){
      VDB_CHECK_FAIL("node %lld keeps distance %g to node %lld, which is %g", pA->nid, got, b, want);
    }
  }
  return rc;
}
