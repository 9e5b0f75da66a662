/*
** HNSW (hierarchical navigable small world) graph algorithm.
**
** The algorithm owns no storage. It works on nodes that a VdbHnswAccess
** hands out -- an in-memory map in the unit tests, the shadow-table cache
** in the virtual table -- and tells the access layer which nodes it
** changed, so that layer can persist them inside the user's transaction.
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

typedef struct VdbHnswNode {
  sqlite3_int64 nid;
  int level;
  const float *pVec;              /* the node's vector, dim floats */
  float invNorm;                  /* cosine only: vdbHnswInvNorm(pVec), set by the access layer */
  int anLink[VDB_HNSW_MAX_LEVEL+1];            /* links per layer */
  sqlite3_int64 *aaLink[VDB_HNSW_MAX_LEVEL+1]; /* capacity: vdbHnswLayerCap() */
} VdbHnswNode;

/* Node access. Pointers returned stay valid until the current operation
** (vdbHnswInsert, vdbHnswDelete, vdbHnswSearch) returns. */
typedef struct VdbHnswAccess {
  void *pCtx;
  /* The node with this nid; SQLITE_NOTFOUND if there is none. */
  int (*xGet)(void *pCtx, sqlite3_int64 nid, VdbHnswNode **ppNode);
  /* Optional fast path for the search: just the vector of node nid and
  ** its invNorm, valid like xGet's nodes; NULL to use xGet. */
  int (*xVector)(void *pCtx, sqlite3_int64 nid, const float **ppVec, float *pInvNorm);
  /* Optional hint: the search will soon read node nid's links, so start
  ** bringing them towards the CPU cache. NULL: no hint. */
  void (*xPrefetch)(void *pCtx, sqlite3_int64 nid);
  /* A new node with no links; pVec is copied. */
  int (*xCreate)(void *pCtx, sqlite3_int64 nid, int level, const float *pVec, VdbHnswNode **ppNode);
  /* pNode's links changed. */
  int (*xDirty)(void *pCtx, VdbHnswNode *pNode);
  /* Remove a node (its links are already gone from its neighbours). */
  int (*xRemove)(void *pCtx, VdbHnswNode *pNode);
  /* Any node of the highest level other than nid, for re-electing the
  ** entry point; SQLITE_NOTFOUND when the graph holds no other node. */
  int (*xTopNode)(void *pCtx, sqlite3_int64 nidExcluded, sqlite3_int64 *pNid, int *pLevel);
} VdbHnswAccess;

typedef struct VdbHnswParams {
  int dim;
  VdbMetric eMetric;              /* l2, cosine or dot */
  int m;                          /* links per node above layer 0 */
  int efConstruction;
  sqlite3_uint64 seed;            /* level assignment */
} VdbHnswParams;

typedef struct VdbHnswVisited VdbHnswVisited;

typedef struct VdbHnsw {
  VdbHnswParams params;
  const VdbKernels *pK;
  VdbHnswAccess access;
  int hasEntry;
  sqlite3_int64 entryNid;
  int entryLevel;
  int entryChanged;               /* set when the entry point moved; the owner persists it */
  VdbHnswVisited *pVisited;       /* scratch, reused across operations */
  sqlite3_uint64 nDistance;       /* distance evaluations, for benchmarks */
} VdbHnsw;

typedef struct VdbHnswHit {
  double dist;
  sqlite3_int64 nid;
} VdbHnswHit;

/* Keep or skip a node in search results (the walk still passes through
** skipped nodes). Returns non-zero to keep. */
typedef int (*VdbHnswFilter)(void *pArg, sqlite3_int64 nid);

void vdbHnswInit(VdbHnsw *p, const VdbHnswParams *pParams, const VdbKernels *pK,
                 const VdbHnswAccess *pAccess);
void vdbHnswFree(VdbHnsw *p);

/* The level a node id gets: floor(-ln(u) / ln(M)) for u uniform in (0,1]
** derived from a hash of (nid, seed), capped at VDB_HNSW_MAX_LEVEL. */
int vdbHnswLevel(const VdbHnswParams *pParams, sqlite3_int64 nid);

/* 1/|v| for a node's invNorm (cosine); 0 for a zero or overflowing vector,
** which has no cosine distance. */
float vdbHnswInvNorm(const VdbKernels *pK, const float *pVec, int dim);

int vdbHnswInsert(VdbHnsw *p, sqlite3_int64 nid, const float *pVec);
int vdbHnswDelete(VdbHnsw *p, sqlite3_int64 nid);

/* The k nearest nodes to pQuery that pass xFilter (all if NULL), found by
** a beam of width max(ef, k); sorted by distance, ties by nid. *paHit is
** sqlite3_malloc'd. *pnVisited counts nodes whose distance was computed. */
int vdbHnswSearch(VdbHnsw *p, const float *pQuery, int k, int ef,
                  VdbHnswFilter xFilter, void *pFilterArg,
                  VdbHnswHit **paHit, int *pnHit, int *pnVisited);

/* Check the invariants over the nodes listed in aNid (every node of the
** graph). Returns SQLITE_OK, or SQLITE_CORRUPT with a message. */
int vdbHnswCheck(VdbHnsw *p, const sqlite3_int64 *aNid, int nNid, char **pzErr);

#endif
