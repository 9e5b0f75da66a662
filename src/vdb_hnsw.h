/*
** HNSW (hierarchical navigable small world) graph algorithm.
**
** The algorithm owns no storage and never looks inside a vector. It works
** on nodes that a VdbHnswAccess hands out -- an in-memory map in the unit
** tests, the hnsw index kind's node cache (vdb_index_hnsw.c) in the table
** -- measures them through a VdbHnswSpace, and tells the access layer
** which nodes it changed, so that layer can persist them inside the
** user's transaction.
**
** Invariants the algorithm keeps (and vdbHnswCheck verifies):
**   - links are symmetric: b is in a's layer-l list iff a is in b's;
**     so deleting a node removes every edge that mentions it;
**   - a node has at most vdbHnswLayerCap() links per layer, none to itself,
**     no duplicates, and only on layers up to its level;
**   - the entry point is a node of the highest level present;
**   - node ids (nid) are never reused, so no stale edge can alias a new node.
** Levels are a deterministic function of (nid, seed): the same inserts
** build the same graph.
*/
#ifndef VDB_HNSW_H
#define VDB_HNSW_H
#include "vdb_vector.h"

/* Fibonacci hashing (Knuth 6.4): multiplying by 2^64/phi spreads
** consecutive node ids over the high bits, which the hash tables keep. */
#define VDB_FIB_HASH_MUL 0x9E3779B97F4A7C15ull
static inline sqlite3_uint64 vdbFibHash(sqlite3_int64 x){
  return (sqlite3_uint64)x * VDB_FIB_HASH_MUL;
}

#define VDB_HNSW_MAX_LEVEL 15     /* levels 0..15; P(level > 15) < 1e-18 at M=16 */

/* Links a node may hold on a layer: the bottom layer, where every search
** ends, gets VDB_HNSW_LAYER0_FACTOR times M. hnswlib allows 2M out-links
** but any number of in-links; with symmetric links both count against
** one cap, and nodes that bridge clusters need the room. Measured on a
** 1M x 128 clustered set: recall@10 at ef=64 0.909 with 2M, 0.954 with
** 3M, at the same QPS and build time (Redis's vector sets also let
** layer 0 grow to 3M). */
#ifndef VDB_HNSW_LAYER0_FACTOR
# define VDB_HNSW_LAYER0_FACTOR 3
#endif
static inline int vdbHnswLayerCap(int m, int layer){
  return layer==0 ? VDB_HNSW_LAYER0_FACTOR*m : m;
}

/* The vectors the graph compares, and how. The algorithm never looks
** inside a vector: it measures two of them with xWalk, which needs for
** each one a value xAux computes once (the access layer keeps it with the
** node), and reports a result's distance with xReport or, where the walk's
** distance is not the metric's own, by measuring again with xExact. The
** element type, metric and kernel level are chosen once per index
** (vdbHnswSpaceInit), so a quantized code is a new space, not a new walk. */
typedef struct VdbHnswSpace VdbHnswSpace;
struct VdbHnswSpace {
  int dim;
  VdbElemType eElem;
  VdbMetric eMetric;
  const VdbKernels *pK;
  int nVecBytes;                  /* bytes of one vector, for prefetching */
  /* A distance with the metric's order, cheaper than the metric's own (L2:
  ** squared; cosine: a dot product scaled by stored inverse norms); +Inf
  ** for a pair without a distance (a zero vector under cosine). */
  double (*xWalk)(const VdbHnswSpace*, const void *a, float aAux, const void *b, float bAux);
  /* The per-vector value xWalk takes (cosine: 1/|v|); NULL: always 0. */
  float (*xAux)(const VdbHnswSpace*, const void *a);
  /* The metric's distance from a walk distance; NULL: use xExact. */
  double (*xReport)(double walkDist);
  /* Compact codes (vdb_quant.h): when nCodeBytes is non-zero a search
  ** walks codes, not vectors, and measures its final candidates again
  ** with their vectors. xEncode codes a stored vector (nCodeBytes),
  ** xEncodeQuery a query (nQueryCodeBytes); xCodeWalk approximates xWalk
  ** between a query's code and a vector's code. */
  int nCodeBytes;
  int nQueryCodeBytes;
  void (*xEncode)(const VdbHnswSpace*, const void *pVec, void *pCode);
  void (*xEncodeQuery)(const VdbHnswSpace*, const void *pQuery, void *pQueryCode);
  double (*xCodeWalk)(const VdbHnswSpace*, const void *pQueryCode, const void *pCode);
  /* xWalk between two vectors approximated from their codes (xEncode's). */
  double (*xCodePair)(const VdbHnswSpace*, const void *pCodeA, const void *pCodeB);
  /* xCodeWalk from one query's code to n codes, into aDist[0..n-1], asking
  ** for each code's lines VDB_PREFETCH_AHEAD codes before measuring it as
  ** the walk does (vdbPrefetchVector): an expansion's distances in one
  ** call, not a chain of three calls each. Set whenever xCodeWalk is. */
  void (*xCodeWalkMany)(const VdbHnswSpace*, const void *pQueryCode, const void *const *apCode,
                        int n, double *aDist);
};

/* Bring the start of a vector towards the cache before its distance is
** computed: the walk's cost is mostly waiting for memory. These say how
** much of a vector or code to prefetch, and how many neighbours ahead of
** the one being measured. One ahead left the walk waiting on memory: with
** codes in compact records, 3 ahead measured 1.12x / 1.23x / 1.31x the
** QPS of 1 ahead at ef_search 10 / 16 / 64 on Fashion-MNIST (2, 4 and 6
** ahead, or 320 bytes instead of 512, were within noise of 3).
** Prefetching every neighbour's whole vector at once filled the CPU's
** miss buffers (a third of the search's time at 200,000 x 384, 15-20%
** slower). */
#ifndef VDB_PREFETCH_MAX_BYTES
# define VDB_PREFETCH_MAX_BYTES 512
#endif
/* The widest walk on one layer that keeps its beam as one sorted array
** (vdb_hnsw.c, vdbSearchLayerBeam); a wider one, or one with a filter,
** keeps the paper's two heaps. An insertion into the array moves the
** hits after its place, on average half the beam, so its upkeep grows
** with the square of the width where the heaps' grows with the width
** times its logarithm. Measured on Fashion-MNIST (bench/ab.py, the heaps
** against the array at every width, 3 rounds of 300 queries): the array
** 1.04x to 1.06x as fast at ef_search 200 to 2048, 0.94x at 4096. */
#ifndef VDB_BEAM_MAX_EF
# define VDB_BEAM_MAX_EF 2048
#endif

#ifndef VDB_PREFETCH_AHEAD
# define VDB_PREFETCH_AHEAD 3
#endif
/* How much of a fresh neighbour's code record the walk asks for when it
** finds the neighbour (VdbHnswAccess.xPrefetchCode; why: vdb_index_hnsw.c,
** vdbSharedAccessPrefetchCode). */
#ifndef VDB_PREFETCH_CODE_BYTES
# define VDB_PREFETCH_CODE_BYTES 256
#endif
static inline void vdbPrefetchVector(const void *pVec, int nByte){
  const char *z = (const char*)pVec;
  int i;
  for(i=0; i<nByte && i<VDB_PREFETCH_MAX_BYTES; i+=64) __builtin_prefetch(z+i);
}

/* SQLITE_OK, or SQLITE_ERROR for an element type or metric the graph
** cannot index (float32 with l2, cosine or dot). */
int vdbHnswSpaceInit(VdbHnswSpace *pSpace, VdbElemType eElem, VdbMetric eMetric, int dim,
                     const VdbKernels *pK);
/* The per-vector value for xWalk. */
static inline float vdbHnswAux(const VdbHnswSpace *pSpace, const void *pVec){
  return pSpace->xAux ? pSpace->xAux(pSpace, pVec) : 0;
}

typedef struct VdbHnswNode {
  sqlite3_int64 nid;
  int level;
  /* The access layer's count of changes to the links, odd while one is
  ** under way (xEdit, xLinksCopy); 0 in a new node. In the node's first
  ** line, which a search reads anyway for anLink. */
  unsigned int linkSeq;
  const void *pVec;               /* the node's vector, in the space's form */
  float aux;                      /* vdbHnswAux(pVec), set by the access layer */
  const void *pCode;              /* its code when the space has codes (else NULL) */
  int anLink[VDB_HNSW_MAX_LEVEL+1];            /* links per layer */
  sqlite3_int64 *aaLink[VDB_HNSW_MAX_LEVEL+1]; /* capacity: vdbHnswLayerCap() */
  /* Optional, from the access layer: room for vdbHnswLayerCap(m, 0)
  ** floats, the distance (the link choices', vdbPairDist) to each layer-0
  ** link, NaN where not yet measured. The algorithm keeps it parallel to
  ** aaLink[0]; the access layer fills it with NaN when it (re)reads the
  ** links. NULL: measure every time. */
  float *aDist0;
} VdbHnswNode;

/* Node access. Pointers returned stay valid until the current operation
** (vdbHnswInsert, vdbHnswDelete, vdbHnswSearch) returns. */
typedef struct VdbHnswAccess {
  void *pCtx;
  /* The node with this nid; SQLITE_NOTFOUND if there is none. */
  int (*xGet)(void *pCtx, sqlite3_int64 nid, VdbHnswNode **ppNode);
  /* Optional fast path for the search: just the vector of node nid and
  ** its aux value, valid like xGet's nodes; NULL to use xGet. */
  int (*xVector)(void *pCtx, sqlite3_int64 nid, const void **ppVec, float *pAux);
  /* Optional fast path for a search that walks codes: node nid's code,
  ** valid like xGet's nodes; NULL to use xGet's pCode. */
  int (*xCode)(void *pCtx, sqlite3_int64 nid, const void **ppCode);
  /* Optional: xCode for n nodes at once (an expansion's new neighbours),
  ** into apCode[0..n-1]. NULL: xCode (or xGet) one at a time. */
  int (*xCodes)(void *pCtx, const sqlite3_int64 *aNid, int n, const void **apCode);
  /* Optional fast path for the search on layer 0: node nid's layer-0
  ** links as 32-bit node ids, valid like xGet's nodes. Returns 0 when it
  ** cannot answer (use xGet). NULL: always use xGet. */
  int (*xLinks0)(void *pCtx, sqlite3_int64 nid, const unsigned int **paLink, int *pnLink);
  /* Optional hint: the search will soon read node nid's code; bring its
  ** first line towards the CPU cache. NULL: no hint. */
  void (*xPrefetchCode)(void *pCtx, sqlite3_int64 nid);
  /* Optional hint: the search will soon read node nid's links, so start
  ** bringing them towards the CPU cache. NULL: no hint. */
  void (*xPrefetch)(void *pCtx, sqlite3_int64 nid);
  /* Optional hint: node nid became a candidate of a walk, which may
  ** expand it (xPrefetch, then xGet or xLinks0) a few steps later: start
  ** bringing what xPrefetch must read before it can hint. NULL: none. */
  void (*xPrefetchCandidate)(void *pCtx, sqlite3_int64 nid);
  /* Optional, for a walk over codes: node nid, which the walk measured,
  ** is to be measured again with its vector (a result): hold it as xGet
  ** does and give its vector and aux value, valid like xGet's nodes. An
  ** access layer whose nodes may lack their vector until then (the
  ** shared copy reads a vector to code it, but keeps it only for
  ** results) answers here. NULL: xGet's pVec. */
  int (*xResultVector)(void *pCtx, sqlite3_int64 nid, const void **ppVec, float *pAux);
  /* A new node with no links; pVec is copied. */
  int (*xCreate)(void *pCtx, sqlite3_int64 nid, int level, const void *pVec, VdbHnswNode **ppNode);
  /* pNode's links changed. */
  int (*xDirty)(void *pCtx, VdbHnswNode *pNode);
  /* Remove a node (its links are already gone from its neighbours). */
  int (*xRemove)(void *pCtx, VdbHnswNode *pNode);
  /* Any node of the highest level other than nid, for re-electing the
  ** entry point; SQLITE_NOTFOUND when the graph holds no other node. */
  int (*xTopNode)(void *pCtx, sqlite3_int64 nidExcluded, sqlite3_int64 *pNid, int *pLevel);
  /* Optional, for linking new nodes from several threads at once
  ** (vdbHnswLink with a worker's VdbHnsw, vdbHnswWorkerInit); NULL when
  ** one thread works on the graph. Searches run concurrently; the parts
  ** of a link that change links or the entry point run between
  ** xWriteLock(pCtx, 1) and xWriteLock(pCtx, 0), one thread at a time.
  ** Such a thread brackets each change to a node's links with
  ** xEdit(pCtx, pNode, 1) and xEdit(pCtx, pNode, 0) (and stores the count
  ** and links with atomic stores), and a search copies a node's links
  ** with xLinksCopy (returns how many), which gives a list as it was
  ** between two changes, never one torn by a change. */
  void (*xWriteLock)(void *pCtx, int bLock);
  void (*xEdit)(void *pCtx, VdbHnswNode *pNode, int bBegin);
  int (*xLinksCopy)(void *pCtx, const VdbHnswNode *pNode, int layer, sqlite3_int64 *aOut);
} VdbHnswAccess;

/* Largest M: the walk and the linking keep a node's links in fixed
** arrays of vdbHnswLayerCap(VDB_HNSW_MAX_M, 0) entries. */
#define VDB_HNSW_MAX_M 128

typedef struct VdbHnswParams {
  int m;                          /* links per node above layer 0, 2..VDB_HNSW_MAX_M */
  int efConstruction;
  sqlite3_uint64 seed;            /* level assignment */
} VdbHnswParams;

typedef struct VdbHnswVisited VdbHnswVisited;

typedef struct VdbHnsw VdbHnsw;
struct VdbHnsw {
  VdbHnswParams params;
  VdbHnswSpace space;
  VdbHnswAccess access;
  int hasEntry;
  sqlite3_int64 entryNid;
  int entryLevel;
  int entryChanged;               /* set when the entry point moved; the owner persists it */
  VdbHnswVisited *pVisited;       /* scratch, reused across operations */
  void *pQueryCode;               /* scratch: the query's code (space.nQueryCodeBytes) */
  unsigned char *aBeamDone;       /* scratch: the beam's expanded flags (vdbSearchLayer) */
  int nBeamDone;                  /* their room */
  sqlite3_uint64 nDistance;       /* distance evaluations, for benchmarks */
  sqlite3_uint64 nRepairSearch;   /* deletes' repairs that had to search the graph */
  /* A worker's graph (vdbHnswWorkerInit): the graph whose entry point it
  ** reads and moves, under the access layer's write lock. NULL: its own. */
  VdbHnsw *pHome;
};

typedef struct VdbHnswHit {
  double dist;
  sqlite3_int64 nid;
} VdbHnswHit;

/* Keep or skip a node in search results (the walk still passes through
** skipped nodes). Returns non-zero to keep. */
typedef int (*VdbHnswFilter)(void *pArg, sqlite3_int64 nid);

/* SQLITE_OK, or SQLITE_RANGE for an m outside 2..VDB_HNSW_MAX_M or an
** efConstruction below 1 (p is then unusable, but vdbHnswFree is safe). */
int vdbHnswInit(VdbHnsw *p, const VdbHnswParams *pParams, const VdbHnswSpace *pSpace,
                const VdbHnswAccess *pAccess);
void vdbHnswFree(VdbHnsw *p);

/* The level a node id gets: floor(-ln(u) / ln(M)) for u uniform in (0,1]
** derived from a hash of (nid, seed), capped at VDB_HNSW_MAX_LEVEL. */
int vdbHnswLevel(const VdbHnswParams *pParams, sqlite3_int64 nid);

/* Create node nid for pVec (xCreate) and link it (vdbHnswLink). */
int vdbHnswInsert(VdbHnsw *p, sqlite3_int64 nid, const void *pVec);
/* Link a node that xCreate made, at level vdbHnswLevel(nid), into the
** graph. A link that fails leaves the graph's invariants intact and the
** node reachable or not; linking it again later is safe. */
int vdbHnswLink(VdbHnsw *p, VdbHnswNode *pNew);
/* A graph for one worker thread of a parallel link: pHome's parameters
** and space, its own scratch, pAccess (with xWriteLock, xEdit and
** xLinksCopy), and pHome's entry point. Free with vdbHnswFree. */
void vdbHnswWorkerInit(VdbHnsw *pWorker, VdbHnsw *pHome, const VdbHnswAccess *pAccess);
int vdbHnswDelete(VdbHnsw *p, sqlite3_int64 nid);

/* The k nearest nodes to pQuery that pass xFilter (all if NULL), found by
** a beam of width max(ef, k); sorted by distance, ties by nid. *paHit is
** sqlite3_malloc'd. *pnVisited counts nodes whose distance was computed.
** When the space has codes (and then the access layer must give every
** node its pCode) the beam walks them, and the best 2k candidates (the
** beam's and the best hits it let go) are measured again with vectors
** before the k are chosen; the distances returned are always the
** vectors'. A walk over codes takes a beam of ef even below k. */
int vdbHnswSearch(VdbHnsw *p, const void *pQuery, int k, int ef,
                  VdbHnswFilter xFilter, void *pFilterArg,
                  VdbHnswHit **paHit, int *pnHit, int *pnVisited);

/* Check the invariants over the nodes listed in aNid (every node of the
** graph). Returns SQLITE_OK, or SQLITE_CORRUPT with a message. */
int vdbHnswCheck(VdbHnsw *p, const sqlite3_int64 *aNid, int nNid, char **pzErr);
/* Check node nid's kept layer-0 distances (VdbHnswNode.aDist0) against
** its links: SQLITE_OK, or SQLITE_CORRUPT with a message. */
int vdbHnswCheckKept(VdbHnsw *p, sqlite3_int64 nid, char **pzErr);

#endif
