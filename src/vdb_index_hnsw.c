/*
** The "hnsw" index kind: an HNSW graph (the algorithm is vdb_hnsw.c) kept
** in the shadow table T_hnswNN (layout and T_info keys: vdb_format.h),
** with a per-connection node cache.
**
** The cache maps nid to decoded nodes. Coherence:
**   - changes are written back at xFlush (the transaction's xSync and
**     every xSavepoint), and early when the cache exceeds its budget
**     inside a write, so a bulk load writes each node once;
**   - xDiscard (xRollback, xRollbackTo) drops the cache: the shadow
**     tables, which SQLite's journal restored, are the truth;
**   - each flush that changed the graph appends a row to the change log
**     T_hnswlogNN (format 2): the nodes it wrote, and for nodes created or
**     removed the chunk whose vectors changed;
**   - xSync at the start of each statement, when another connection
**     committed (PRAGMA data_version, polled by the store), reads the log
**     rows after the last seq this connection knows and drops just those
**     nodes and chunks; a gap in the log, a "reload everything" row or a
**     format 1 table (no log) drops the whole cache.
** Every row read back is validated; anything malformed is
** SQLITE_CORRUPT_VTAB, with the finding on the store's error channel.
*/
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <stddef.h>
#include "vdb_index_hnsw.h"
#include "vdb_quant.h"

extern const VdbIndexKind vdbIndexHnsw;

/* The kind's parameters, in the order of VdbIndexDef.aParam. Defaults
** follow hnswlib's M and ef_construction and, unlike hnswlib's ef=10, a
** search breadth that reaches high recall. */
enum { VDB_HNSW_P_M, VDB_HNSW_P_EFC, VDB_HNSW_P_EF, VDB_HNSW_P_CACHE_MB, VDB_HNSW_P_QUANT,
       VDB_HNSW_P_THREADS, VDB_HNSW_NPARAM };
#define VDB_HNSW_MAX_EF 4096
#define VDB_HNSW_MAX_CACHE_MB 1048576   /* 1 TiB */
#define VDB_HNSW_MAX_THREADS 64
static const VdbIndexParam vdbHnswParams[VDB_HNSW_NPARAM] = {
  { "m", 16, 2, VDB_HNSW_MAX_M, VDB_PARAM_DECLARED,
    "links per node (3m on the bottom layer)", 0 },
  { "ef_construction", 200, 1, VDB_HNSW_MAX_EF, VDB_PARAM_DECLARED,
    "beam width while inserting, at least m", 0 },
  { "ef_search", 64, 1, VDB_HNSW_MAX_EF, VDB_PARAM_DECLARED|VDB_PARAM_STORED,
    "beam width while searching (0 in a query: exact search)", 0 },
  { "cache_mb", 256, 1, VDB_HNSW_MAX_CACHE_MB, VDB_PARAM_STORED,
    "graph cache budget per index (the shared copy, and each private cache), MiB", 0 },
  { "quantizer", VDB_QUANT_INT8, VDB_QUANT_NONE, VDB_QUANT_INT8, VDB_PARAM_DECLARED,
    "what the search walks: int8 codes re-ranked with the vectors, or none (the vectors)",
    vdbQuantNames },
  { "threads", 0, 0, VDB_HNSW_MAX_THREADS, VDB_PARAM_DECLARED|VDB_PARAM_STORED,
    "threads that link a bulk insert (0: one per core; 1: one, and the same inserts give the same graph)", 0 },
};

typedef struct VdbNodeEntry {
  sqlite3_int64 nid;                /* 0: empty (nids start at 1) */
  struct VdbCNode *pNode;
} VdbNodeEntry;

/* Node ids below this get an entry in the flat nid table. */
#define VDB_NID_TABLE_MAX (1<<24)
/* First sizes of the growing tables; each doubles when it must. */
#define VDB_NID_TABLE_INITIAL  4096     /* nid table entries */
#define VDB_NODE_HASH_INITIAL  2048     /* node hash slots (kept at most half full) */
#define VDB_CHUNK_HASH_INITIAL 64       /* chunk buffer slots (at most half full) */
#define VDB_ID_LIST_INITIAL    1024     /* rowids or nids gathered for a search or check */

/* What the flat nid table knows of one node id. The two halves live
** apart: the node goes when it is evicted, while its vector stays usable
** until chunk buffers are freed (its code, when the walk uses codes, is
** found by nid in VdbHnswIndex.codes). Together, a walk that scored a neighbour
** (reading pVec) finds the same line in cache when it expands it (pNode). */
typedef struct VdbNidEntry {
  struct VdbCNode *pNode;          /* the cached node; NULL: not cached */
  const void *pVec;                /* its vector in a chunk buffer; NULL: not known */
  float aux;                       /* vdbHnswAux(pVec) */
} VdbNidEntry;

typedef struct VdbHnswIndex VdbHnswIndex;
/* Private nodes' memory: see vdbPoolAlloc. */
#define VDB_POOL_GRAIN 64                   /* bytes; sizes are rounded up to it */
#define VDB_POOL_CLASSES 64                 /* node sizes up to 4 KiB; larger ones are malloc'd */
#define VDB_POOL_SLAB_MIN (256*1024)
#define VDB_POOL_SLAB_MAX (32*1024*1024)
typedef struct VdbNodePool {
  void **apSlab;                    /* the allocations pieces are cut from */
  int nSlab, nSlabAlloc;
  sqlite3_int64 nSlabBytes;         /* their bytes */
  unsigned char *pNext, *pEnd;      /* the newest slab's uncut part */
  void *apFree[VDB_POOL_CLASSES];   /* freed pieces, per size class: a list through their first word */
  sqlite3_int64 nLive;              /* pieces handed out and not released */
} VdbNodePool;

struct VdbHnswIndex {
  VdbIndex base;
  VdbStore *pStore;                 /* base.pStore */
  int nVecBytes;                    /* bytes of one vector */
  int nCodeBytes;                   /* bytes of one node's code (vdb_quant.h); 0: none */
  int efSearch;                     /* the table's default breadth */
  VdbHnsw graph;
  char zSuffix[16];                 /* "hnswNN" */
  char zLog[16];                    /* "hnswlogNN" */
  /* nid -> node, open addressing with linear probing: a lookup reads only
  ** this table (one cache line, usually), not the nodes it passes. */
  VdbNodeEntry *aHash;
  int nHash;                        /* power of two, at most half full */
  int hashShift;                    /* 64 - log2(nHash) */
  int nNode;
  int clockHand;                    /* eviction sweep position in aHash */
  VdbCNode *pDirty;
  /* nid -> node and vector, for nids below nByNid: the nodes are the same
  ** as aHash's, which stays for the clock sweep and for larger nids, but
  ** found in one read instead of a hashed probe; the vectors let the
  ** search score a neighbour without touching its node. */
  VdbNidEntry *aByNid;
  sqlite3_int64 nByNid;
  VdbChunkTable chunks;             /* chunk_id -> vectors */
  /* The private nodes' codes, by nid (vdb_hnsw_records.c, without links):
  ** a walk that scores a neighbour finds its code through one small page
  ** table instead of reading its nid table entry first and then its node,
  ** one dependent cache miss fewer per expansion. A node id's vector
  ** never changes while they live (a ROLLBACK, which can hand a node id
  ** to another vector, discards them), so a code outlives its node's
  ** eviction and is not computed again when the node comes back. Only
  ** nids below VDB_NID_TABLE_MAX; a node above keeps its code itself. */
  VdbRecords codes;
  VdbNodePool pool;                 /* the private nodes' memory (vdbPoolAlloc) */
  void *pCodeScratch;               /* a code on its way to the shared copy or the records */
  unsigned int chunkEpoch;          /* bumped whenever a chunk buffer is freed */
  sqlite3_int64 cacheBytes, budgetBytes;
  int infoLoaded;
  int inFlush;                      /* flushing: the writes call xSavepoint again */
  int nActive;                      /* operations under way (they nest) */
  int discardPending;               /* a discard asked for while nActive>0 */
  sqlite3_int64 nextNid;
  int nextNidChanged;
  /* The row a node being created belongs to (set around vdbHnswInsert). */
  sqlite3_int64 pendingRowid;
  VdbSlot pendingSlot;
  sqlite3_stmt *pLoad, *pSave, *pErase, *pByRowid, *pTop, *pTopAny, *pMoveRowid;
  /* Chunk reads within one operation share a blob handle (a cold query
  ** reads a chunk for most nodes it meets, and sqlite3_blob_open was a
  ** fifth of that); closed when the operation ends (vdbLeave). */
  sqlite3_blob *pChunkBlob;
  unsigned char *aVecScratch;       /* a vector read only to code a node or copy it (vdbVectorScratchRead) */
  /* The change log (vdb_format.h); hasLog is 0 for a format 1 table. */
  int hasLog;
  int varintLinks;                  /* format 3: links BLOBs are varint lists */
  sqlite3_int64 logSeq;             /* the last log row this cache reflects */
  sqlite3_int64 *aMoved;            /* nodes whose rowid changed since the last flush */
  int nMoved, nMovedAlloc;
  /* The nodes the current write operation changed (vdbWriteEnd). */
  unsigned int opCount;             /* write operations begun; never 0 while one runs */
  sqlite3_int64 *aTouched;
  int nTouched, nTouchedAlloc;
  sqlite3_uint64 logPrint;          /* vdbLogPrint of row logSeq */
  sqlite3_stmt *pLogMax, *pLogAfter, *pLogAdd, *pLogPrune, *pLogRow;
  sqlite3_int64 nHits;              /* node or vector lookups the cache answered */
  sqlite3_int64 nLoaded;            /* nodes read from the table (the misses) */
  sqlite3_int64 nDiscards;          /* times the whole cache was dropped */
  sqlite3_int64 nFullReloads;       /* ... because another connection committed */
  sqlite3_int64 nRefreshes;         /* other commits answered from the log */
  sqlite3_int64 nRefreshedNodes;    /* nodes those dropped */
  /* The process-wide copy (vdb_index_hnsw.h); NULL: this index walks its
  ** private cache only (an in-memory or temporary database, a format 1
  ** table, a file that cannot be identified). */
  VdbHnswShared *pShared;
  int sharedLooked;                 /* vdbSharedAttach ran */
  int txnDirty;                     /* this transaction changed the graph */
  /* While it does, nodes it has not changed may be copied from the shared
  ** copy when that is at the snapshot the transaction began from (a write
  ** transaction sees no other commit): cheaper than reading rows and whole
  ** chunks into a cold private cache. A node the transaction wrote and the
  ** private cache then evicted would come back stale, so the first such
  ** eviction (or a rowid move, which changes a node without a write) ends
  ** the copying for the rest of the transaction. */
  sqlite3_int64 txnBaseSeq;
  sqlite3_uint64 txnBasePrint;
  unsigned int txnCount;            /* transactions ended, stamps nodes written */
  int txnNoCopy;
  VdbHnswAccess privateAccess, sharedAccess;
  /* Inserts waiting to be linked (threads > 1; see vdbLinkPending). */
  int nThreads;                     /* the threads setting; 0: one per core */
  sqlite3_int64 *aPending;          /* their nids, ascending */
  int nPending, nPendingAlloc;
  struct VdbLinkJob *pJob;          /* a round linking in the background (vdbLinkStart) */
  sqlite3_int64 nJobCover;          /* while it runs, inserts may take nids below this */
  sqlite3_int64 nLinkJobs;          /* parallel links run */
  sqlite3_int64 nLinkRounds;        /* their rounds (vdbLinkRoundFinish) */
  sqlite3_int64 nLinkedByThreads;   /* nodes they linked */
  sqlite3_int64 nLinkBackground;    /* rounds started in the background (vdbLinkStart) */
  sqlite3_int64 nLinkCancelled;     /* ... of which a ROLLBACK or a close cancelled */
  sqlite3_int64 nSharedHits, nSharedMisses;   /* this walk's, added to the copy's after it */
};

#define VDB_HNSW_SEED 0x5eedf00d12345678ull
/* Room for "hnswNN_" and the longest key, "entry_level". */
#define VDB_HNSW_INFO_KEY_MAX 32

static int vdbHnswFlush(VdbIndex*);
static void vdbHnswDiscard(VdbIndex*);
static int vdbLinkPending(VdbHnswIndex *p);
static int vdbLinkJoin(VdbHnswIndex *p);
static int vdbLinkJoinAs(VdbHnswIndex *p, int bCancel);
static int vdbEnterJoined(VdbHnswIndex *p);
static int vdbLeave(VdbHnswIndex *p, int rc);

/* ---- helpers ------------------------------------------------------------------ */

/* Say what is wrong with the stored graph, after the name of its shadow
** table, on the store's error channel; returns SQLITE_CORRUPT_VTAB. */
static int vdbGraphCorrupt(VdbHnswIndex *p, const char *zFmt, ...){
  va_list ap;
  char *zWhat;
  int rc;
  va_start(ap, zFmt);
  zWhat = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( zWhat==0 ) return SQLITE_NOMEM;
  rc = vdbStoreCorrupt(p->pStore, "%s_%s: %s", p->pStore->zName, p->zSuffix, zWhat);
  sqlite3_free(zWhat);
  return rc;
}

static int vdbCap(const VdbHnswIndex *p, int layer){
  return vdbHnswLayerCap(p->graph.params.m, layer);
}

/* Bytes of the links blob of a node of this level (formats 1 and 2). */
static int vdbLinksBytes(const VdbHnswIndex *p, int level){
  int l, n = 0;
  for(l=0; l<=level; l++) n += 2 + 8*vdbCap(p, l);
  return n;
}

static unsigned int vdbBucket(const VdbHnswIndex *p, sqlite3_int64 nid){
  return (unsigned int)(vdbFibHash(nid) >> p->hashShift);
}

static VdbCNode *vdbLookup(VdbHnswIndex *p, sqlite3_int64 nid){
  unsigned int h, mask = (unsigned)(p->nHash-1);
  if( nid>=0 && nid<p->nByNid ) return p->aByNid[nid].pNode;
  if( p->nHash==0 ) return 0;
  for(h=vdbBucket(p, nid); p->aHash[h].nid; h=(h+1)&mask){
    if( p->aHash[h].nid==nid ) return p->aHash[h].pNode;
  }
  return 0;
}

static void vdbSlotPut(VdbHnswIndex *p, VdbCNode *c){
  unsigned int h, mask = (unsigned)(p->nHash-1);
  for(h=vdbBucket(p, c->node.nid); p->aHash[h].nid; h=(h+1)&mask){}
  p->aHash[h].nid = c->node.nid;
  p->aHash[h].pNode = c;
}

/* Chunk buffers went: no remembered vector pointer may be used. */
static void vdbForgetVectors(VdbHnswIndex *p){
  sqlite3_int64 i;
  for(i=0; i<p->nByNid; i++){
    p->aByNid[i].pVec = 0;
  }
}

/* Grow the flat table to cover nid, if nid is small enough. Nodes already
** cached with nids in the new range come over from the hash, so the table
** stays authoritative below its size. Returns non-zero if nid is covered;
** a failed growth only leaves the slow paths to answer for nid. */
static int vdbNidTableCover(VdbHnswIndex *p, sqlite3_int64 nid){
  sqlite3_int64 n, nOld = p->nByNid;
  VdbNidEntry *aNew;
  int i;
  if( nid<0 || nid>=VDB_NID_TABLE_MAX ) return 0;
  if( nid<nOld ) return 1;
  n = nOld ? nOld : VDB_NID_TABLE_INITIAL;
  while( n<=nid ) n *= 2;
  aNew = (VdbNidEntry*)sqlite3_realloc64(p->aByNid, sizeof(VdbNidEntry)*(sqlite3_uint64)n);
  if( aNew==0 ) return 0;
  /* Read at every node a walk expands, anywhere in the table. */
  vdbAdviseHuge(aNew, sizeof(VdbNidEntry)*(size_t)n);
  vdbPrefault(aNew + nOld, sizeof(VdbNidEntry)*(size_t)(n - nOld));
  memset(aNew + nOld, 0, sizeof(VdbNidEntry)*(size_t)(n - nOld));
  for(i=0; i<p->nHash; i++){
    sqlite3_int64 x = p->aHash[i].nid;
    if( x>=nOld && x<n ) aNew[x].pNode = p->aHash[i].pNode;
  }
  p->aByNid = aNew;
  p->nByNid = n;
  return 1;
}

/* Remember where nid's vector is (or forget it, pVec NULL). */
static void vdbRememberVector(VdbHnswIndex *p, sqlite3_int64 nid, const void *pVec, float aux){
  if( pVec==0 ? (nid<0 || nid>=p->nByNid) : !vdbNidTableCover(p, nid) ) return;
  p->aByNid[nid].pVec = pVec;
  p->aByNid[nid].aux = aux;
}

/* Resize to nSlot entries (a power of two) and re-place every node. */
static int vdbHashResize(VdbHnswIndex *p, int nSlot){
  VdbNodeEntry *aOld = p->aHash;
  int nOld = p->nHash, i, bits = 0;
  VdbNodeEntry *aNew = (VdbNodeEntry*)sqlite3_malloc64(sizeof(VdbNodeEntry)*(sqlite3_uint64)nSlot);
  if( aNew==0 ) return SQLITE_NOMEM;
  memset(aNew, 0, sizeof(VdbNodeEntry)*(size_t)nSlot);
  while( (1<<bits)<nSlot ) bits++;
  p->aHash = aNew;
  p->nHash = nSlot;
  p->hashShift = 64 - bits;
  for(i=0; i<nOld; i++){
    if( aOld[i].nid ) vdbSlotPut(p, aOld[i].pNode);
  }
  sqlite3_free(aOld);
  return SQLITE_OK;
}

static int vdbHashInsert(VdbHnswIndex *p, VdbCNode *c){
  if( (p->nNode+1)*2 > p->nHash ){
    int rc = vdbHashResize(p, p->nHash ? p->nHash*2 : VDB_NODE_HASH_INITIAL);
    if( rc!=SQLITE_OK ) return rc;
  }
  vdbSlotPut(p, c);
  if( vdbNidTableCover(p, c->node.nid) ) p->aByNid[c->node.nid].pNode = c;
  p->nNode++;
  p->cacheBytes += (sqlite3_int64)c->nByte;
  return SQLITE_OK;
}

/* Remove c, shifting later entries of its probe run back so lookups
** never stop early at the hole. */
static void vdbHashRemove(VdbHnswIndex *p, VdbCNode *c){
  unsigned int mask = (unsigned)(p->nHash-1), h, j;
  for(h=vdbBucket(p, c->node.nid); p->aHash[h].nid && p->aHash[h].pNode!=c; h=(h+1)&mask){}
  if( p->aHash[h].nid==0 ) return;
  if( c->node.nid<p->nByNid ){
    p->aByNid[c->node.nid].pNode = 0;
  }
  p->aHash[h].nid = 0;
  for(j=(h+1)&mask; p->aHash[j].nid; j=(j+1)&mask){
    unsigned int home = vdbBucket(p, p->aHash[j].nid);
    /* Move entry j into the hole if its home is not in (h, j]. */
    if( ((j - home) & mask) >= ((j - h) & mask) ){
      p->aHash[h] = p->aHash[j];
      p->aHash[j].nid = 0;
      h = j;
    }
  }
  p->nNode--;
  p->cacheBytes -= (sqlite3_int64)c->nByte;
}

/* Does private node nid keep its code in its own allocation (a node id
** too large for the code records), rather than in p->codes? */
static int vdbCodeInNode(const VdbHnswIndex *p, sqlite3_int64 nid){
  return p->nCodeBytes>0 && (nid<1 || nid>=VDB_NID_TABLE_MAX);
}

/* Bytes of a node's code, rounded so the links after it stay aligned. */
static size_t vdbCodeRoom(const VdbHnswIndex *p){
  return ((size_t)p->nCodeBytes + 7) & ~(size_t)7;
}

/* ---- private nodes' memory ----------------------------------------------------
** A walk or a link reads a private node (its head and its layer-0 links)
** at every node it expands, anywhere in the cache. From the allocator's
** heap, with 4 KiB pages, nearly each of those reads also missed the TLB:
** a 2-thread build of 100,000 x 128 with glibc's heap on huge pages
** (GLIBC_TUNABLES=glibc.malloc.hugetlb=1) took 29.4 s against 31.2 s
** (median of 3 alternating runs). So private nodes are cut from slabs
** that ask for transparent huge pages (vdbAdviseHuge), sized like the
** records' slabs (doubling from VDB_POOL_SLAB_MIN to VDB_POOL_SLAB_MAX).
** A node's size is rounded up to VDB_POOL_GRAIN; a freed node goes to its
** size's free list, and the next node of that size reuses it (nearly all
** nodes have one of a few sizes: one per level). The memory of evicted
** nodes stays with the connection for the nodes that replace them, as the
** allocator's heap kept it too; the slabs are freed when the whole cache
** is dropped (vdbDiscardNow: a ROLLBACK, another connection's commit
** answered by a full reload) and with the index. Only the connection's
** own thread allocates and frees nodes (the link threads never do).
** Nodes larger than the largest class (a level above about 10 with a
** large M) are malloc'd. */
/* A piece of nByte, at most VDB_POOL_GRAIN*VDB_POOL_CLASSES; NULL when
** memory ran out. */
static void *vdbPoolAlloc(VdbNodePool *pool, size_t nByte){
  size_t nRound = (nByte + VDB_POOL_GRAIN-1) & ~(size_t)(VDB_POOL_GRAIN-1);
  int iClass = (int)(nRound/VDB_POOL_GRAIN) - 1;
  void *pPiece;
  if( (pPiece = pool->apFree[iClass])!=0 ){
    pool->apFree[iClass] = *(void**)pPiece;
    pool->nLive++;
    return pPiece;
  }
  if( pool->pNext==0 || (size_t)(pool->pEnd - pool->pNext)<nRound ){
    sqlite3_int64 nSlab = pool->nSlabBytes<VDB_POOL_SLAB_MIN ? VDB_POOL_SLAB_MIN : pool->nSlabBytes;
    unsigned char *pSlab;
    if( nSlab>VDB_POOL_SLAB_MAX ) nSlab = VDB_POOL_SLAB_MAX;
    if( pool->nSlab>=pool->nSlabAlloc ){
      int nNew = pool->nSlabAlloc ? 2*pool->nSlabAlloc : 16;
      void **aNew = (void**)sqlite3_realloc64(pool->apSlab, sizeof(void*)*(sqlite3_uint64)nNew);
      if( aNew==0 ) return 0;
      pool->apSlab = aNew;
      pool->nSlabAlloc = nNew;
    }
    pSlab = (unsigned char*)sqlite3_malloc64((sqlite3_uint64)nSlab);
    if( pSlab==0 ) return 0;
    vdbAdviseHuge(pSlab, (size_t)nSlab);
    pool->apSlab[pool->nSlab++] = pSlab;
    pool->nSlabBytes += nSlab;
    /* Pieces start on a cache line, as a node's lines are prefetched. */
    pool->pNext = (unsigned char*)(((uintptr_t)pSlab + VDB_POOL_GRAIN-1) & ~(uintptr_t)(VDB_POOL_GRAIN-1));
    pool->pEnd = pSlab + nSlab;
  }
  pPiece = pool->pNext;
  pool->pNext += nRound;
  pool->nLive++;
  return pPiece;
}

static void vdbPoolRelease(VdbNodePool *pool, void *pPiece, size_t nByte){
  int iClass = (int)((nByte + VDB_POOL_GRAIN-1)/VDB_POOL_GRAIN) - 1;
  *(void**)pPiece = pool->apFree[iClass];
  pool->apFree[iClass] = pPiece;
  pool->nLive--;
}

static void vdbPoolFree(VdbNodePool *pool){
  int i;
  for(i=0; i<pool->nSlab; i++) sqlite3_free(pool->apSlab[i]);
  sqlite3_free(pool->apSlab);
  memset(pool, 0, sizeof(*pool));
}

/* Free a node made by vdbNewCNode. */
static void vdbFreeCNode(VdbHnswIndex *p, VdbCNode *c){
  if( c==0 ) return;
  if( c->isPooled ) vdbPoolRelease(&p->pool, c, c->nByte);
  else sqlite3_free(c);
}

/* A node in one allocation: the struct, its code (only a private node,
** withCode set, whose nid vdbCodeInNode names; filled in by vdbNodeEncode
** once its vector is known), then room for its level's links and,
** withCode set, its layer-0 link distances. Other private nodes have
** their code in p->codes, the shared copy's in their walk record
** (vdb_hnsw_records.c). */
static VdbCNode *vdbNewCNode(VdbHnswIndex *p, sqlite3_int64 nid, int level, int withCode){
  size_t nLinks = 0, nByte;
  VdbCNode *c;
  sqlite3_int64 *pLink;
  int l, nDist = withCode ? vdbCap(p, 0) : 0, isPooled;
  for(l=0; l<=level; l++) nLinks += (size_t)vdbCap(p, l);
  size_t nCodeRoom = (withCode && vdbCodeInNode(p, nid)) ? vdbCodeRoom(p) : 0;
  nByte = sizeof(VdbCNode) + nCodeRoom + nLinks*sizeof(sqlite3_int64) + (size_t)nDist*sizeof(float);
  /* Private nodes from the pool; the shared copy's (withCode 0) are
  ** malloc'd, as the copy frees them. */
  isPooled = withCode && nByte<=VDB_POOL_GRAIN*VDB_POOL_CLASSES;
  c = isPooled ? (VdbCNode*)vdbPoolAlloc(&p->pool, nByte) : (VdbCNode*)sqlite3_malloc64(nByte);
  if( c==0 ) return 0;
  memset(c, 0, sizeof(VdbCNode));
  c->isPooled = (unsigned char)isPooled;
  c->nByte = nByte;
  c->node.nid = nid;
  c->node.level = level;
  pLink = (sqlite3_int64*)((char*)(c+1) + nCodeRoom);
  for(l=0; l<=level; l++){
    c->node.aaLink[l] = pLink;
    pLink += vdbCap(p, l);
  }
  if( nDist ){
    /* A private node keeps its layer-0 link distances (VdbHnswNode.aDist0)
    ** for the links the cache changes; none is known yet. */
    c->node.aDist0 = (float*)pLink;
    for(l=0; l<nDist; l++) c->node.aDist0[l] = NAN;
  }
  return c;
}

/* ---- chunks of vectors ---------------------------------------------------------- */

static unsigned int vdbChunkBucket(sqlite3_int64 chunkId, int nSlot){
  return (unsigned int)(vdbFibHash(chunkId) >> 32) & (unsigned)(nSlot-1);
}

VdbChunkBuf *vdbChunkTableFind(const VdbChunkTable *t, sqlite3_int64 chunkId){
  unsigned int h;
  if( t->nSlot==0 ) return 0;
  for(h=vdbChunkBucket(chunkId, t->nSlot); t->a[h].chunkId; h=(h+1)&(unsigned)(t->nSlot-1)){
    if( t->a[h].chunkId==chunkId ) return &t->a[h];
  }
  return 0;
}

int vdbChunkTableRehash(VdbChunkTable *t, int nSlot){
  VdbChunkBuf *aOld = t->a;
  int nOld = t->nSlot, i;
  VdbChunkBuf *aNew = (VdbChunkBuf*)sqlite3_malloc64(sizeof(VdbChunkBuf)*(sqlite3_uint64)nSlot);
  if( aNew==0 ) return SQLITE_NOMEM;
  memset(aNew, 0, sizeof(VdbChunkBuf)*(size_t)nSlot);
  for(i=0; i<nOld; i++){
    if( aOld[i].chunkId && aOld[i].aVec ){
      unsigned int h = vdbChunkBucket(aOld[i].chunkId, nSlot);
      while( aNew[h].chunkId ) h = (h+1)&(unsigned)(nSlot-1);
      aNew[h] = aOld[i];
    }
  }
  sqlite3_free(aOld);
  t->a = aNew;
  t->nSlot = nSlot;
  return SQLITE_OK;
}

int vdbChunkTableAdd(VdbChunkTable *t, sqlite3_int64 chunkId, unsigned char *aVec, VdbChunkBuf **ppBuf){
  unsigned int h;
  if( (t->n+1)*2 > t->nSlot ){
    int rc = vdbChunkTableRehash(t, t->nSlot ? t->nSlot*2 : VDB_CHUNK_HASH_INITIAL);
    if( rc!=SQLITE_OK ) return rc;
  }
  for(h=vdbChunkBucket(chunkId, t->nSlot); t->a[h].chunkId; h=(h+1)&(unsigned)(t->nSlot-1)){}
  t->a[h].chunkId = chunkId;
  t->a[h].aVec = aVec;
  t->a[h].isReferenced = 1;
  t->n++;
  *ppBuf = &t->a[h];
  return SQLITE_OK;
}

void vdbChunkTableClear(VdbChunkTable *t){
  int i;
  for(i=0; i<t->nSlot; i++){
    sqlite3_free(t->a[i].aVec);
    t->a[i].aVec = 0;
    t->a[i].chunkId = 0;
  }
  t->n = 0;
}

static VdbChunkBuf *vdbChunkFind(VdbHnswIndex *p, sqlite3_int64 chunkId){
  return vdbChunkTableFind(&p->chunks, chunkId);
}

/* Bytes of one chunk's vectors. */
static sqlite3_int64 vdbChunkBytes(const VdbHnswIndex *p){
  return (sqlite3_int64)p->nVecBytes*p->pStore->pDef->chunkSize;
}

/* Where slot `offset`'s vector is in a chunk buffer. */
static unsigned char *vdbChunkVector(const VdbHnswIndex *p, unsigned char *aChunk, int offset){
  return aChunk + (size_t)offset*(size_t)p->nVecBytes;
}

/* The scratch buffer of one code, allocated on first use; NULL: no memory. */
static void *vdbCodeScratch(VdbHnswIndex *p){
  if( p->pCodeScratch==0 ) p->pCodeScratch = sqlite3_malloc(p->nCodeBytes);
  return p->pCodeScratch;
}

/* Give private node c the code pCode: into its own allocation or its
** record in p->codes (vdbCodeInNode). A record that holds the nid's code
** already keeps it, as it is the same. */
static int vdbCodeStore(VdbHnswIndex *p, VdbCNode *c, const void *pCode){
  sqlite3_int64 nid = c->node.nid, nNew = 0;
  const void *pKept;
  if( vdbCodeInNode(p, nid) ){
    memcpy((void*)(c+1), pCode, (size_t)p->nCodeBytes);
    c->node.pCode = (const void*)(c+1);
    return SQLITE_OK;
  }
  if( vdbRecordsCover(&p->codes, nid+1)!=SQLITE_OK ) return SQLITE_NOMEM;
  pKept = vdbRecordsPublish(&p->codes, nid, pCode, 0, 0, &nNew);
  p->cacheBytes += nNew;
  if( pKept==0 ) return SQLITE_NOMEM;
  /* Atomic: linking threads may mark the same page (vdbCodeKept). */
  __atomic_store_n(&p->codes.aUsed[nid >> VDB_REC_PAGE_SHIFT], 1, __ATOMIC_RELAXED);
  c->node.pCode = pKept;
  return SQLITE_OK;
}

/* Node nid's code from the records, marking its page used; NULL if the
** records do not hold it. Parallel links call it from several threads:
** the mark is an atomic store (all of them store 1). */
static const void *vdbCodeKept(const VdbHnswIndex *p, sqlite3_int64 nid){
  const void *pCode = vdbRecordsCode(&p->codes, nid);
  /* Stored only when it changes: a store to a line the other linking
  ** threads read takes it from their caches, at every code a walk reads. */
  if( pCode ){
    unsigned char *pUsed = &p->codes.aUsed[nid >> VDB_REC_PAGE_SHIFT];
    if( !__atomic_load_n(pUsed, __ATOMIC_RELAXED) ) __atomic_store_n(pUsed, 1, __ATOMIC_RELAXED);
  }
  return pCode;
}

/* Code the node's vector, once: a node's vector never changes (a new
** vector is a new node), so a code its record still holds is used as it
** is. Coding only the nodes a walk reaches, not whole chunks, keeps a cold
** query cheap (coding every vector of each chunk read made Fashion-MNIST's
** first query 4x slower). */
static int vdbNodeEncode(VdbHnswIndex *p, VdbCNode *c){
  const void *pKept;
  if( p->nCodeBytes==0 || c->node.pCode ) return SQLITE_OK;
  if( !vdbCodeInNode(p, c->node.nid) && (pKept = vdbCodeKept(p, c->node.nid))!=0 ){
    c->node.pCode = pKept;
    return SQLITE_OK;
  }
  if( vdbCodeScratch(p)==0 ) return SQLITE_NOMEM;
  p->graph.space.xEncode(&p->graph.space, c->node.pVec, p->pCodeScratch);
  return vdbCodeStore(p, c, p->pCodeScratch);
}

/* Over budget after evicting nodes: free the pages of codes not used
** since the clock hand last passed (CLOCK with one pass, as for chunks),
** and clear the others' marks; with bAll, free every page. A cached node
** whose code goes loses it and gets it again, with its vector, when next
** used (a node whose chunkEpoch is stale is attached anew,
** vdbAttachVector). Runs between operations only, like every eviction. */
static void vdbCodesEvict(VdbHnswIndex *p, int bAll){
  sqlite3_int64 i, nid;
  if( p->codes.nPageAlloc==0 ) return;
  if( bAll ) memset(p->codes.aUsed, 0, (size_t)p->codes.nPage);
  for(i=0; i<p->codes.nPage; i++){
    if( p->codes.apPage[i]==0 || p->codes.aUsed[i] ) continue;
    for(nid=i<<VDB_REC_PAGE_SHIFT; nid<(i+1)<<VDB_REC_PAGE_SHIFT; nid++){
      VdbCNode *c = vdbLookup(p, nid);
      if( c && !vdbCodeInNode(p, nid) ){
        c->node.pCode = 0;
        c->chunkEpoch = 0;
        vdbRememberVector(p, nid, 0, 0);     /* see vdbNidReady */
      }
    }
  }
  p->cacheBytes -= vdbRecordsKeep(&p->codes, p->codes.aUsed);
  memset(p->codes.aUsed, 0, (size_t)p->codes.nPage);
}

/* A chunk's vectors, read into a new buffer. */
static int vdbChunkRead(VdbHnswIndex *p, sqlite3_int64 chunkId, unsigned char **paVec){
  unsigned char *aVec = (unsigned char*)sqlite3_malloc64((sqlite3_uint64)vdbChunkBytes(p));
  int rc;
  *paVec = 0;
  if( aVec==0 ) return SQLITE_NOMEM;
  vdbPrefault(aVec, (size_t)vdbChunkBytes(p));
  rc = vdbStoreReadChunk(p->pStore, p->base.iVec, chunkId, aVec, &p->pChunkBlob);
  if( rc!=SQLITE_OK ){
    sqlite3_free(aVec);
    return rc;
  }
  *paVec = aVec;
  return SQLITE_OK;
}

/* Read a chunk's vectors into the cache. */
static int vdbChunkLoad(VdbHnswIndex *p, sqlite3_int64 chunkId, VdbChunkBuf **ppBuf){
  unsigned char *aVec;
  int rc = vdbChunkRead(p, chunkId, &aVec);
  if( rc==SQLITE_OK ) rc = vdbChunkTableAdd(&p->chunks, chunkId, aVec, ppBuf);
  if( rc!=SQLITE_OK ){
    sqlite3_free(aVec);
    return rc;
  }
  p->cacheBytes += vdbChunkBytes(p);
  return SQLITE_OK;
}

/* Free every chunk buffer; every node's pVec becomes stale. */
static void vdbChunkFreeAll(VdbHnswIndex *p){
  p->cacheBytes -= p->chunks.n*vdbChunkBytes(p);
  vdbChunkTableClear(&p->chunks);
  p->chunkEpoch++;
  vdbForgetVectors(p);
}

/* Some chunk buffers were freed (their aVec is NULL): no vector pointer
** taken before may be used, and the table loses their entries. */
static void vdbChunksDropped(VdbHnswIndex *p){
  p->chunkEpoch++;
  vdbForgetVectors(p);
  /* Same size: cannot fail for want of room, but may for memory; if it
  ** does, drop every chunk rather than keep tombstones. */
  if( vdbChunkTableRehash(&p->chunks, p->chunks.nSlot)!=SQLITE_OK ) vdbChunkFreeAll(p);
}

/* Over budget after evicting nodes: free the chunks not used since the
** last sweep (CLOCK with one pass), and clear the others' marks. */
static void vdbChunkEvict(VdbHnswIndex *p){
  int i, nFreed = 0;
  for(i=0; i<p->chunks.nSlot; i++){
    VdbChunkBuf *b = &p->chunks.a[i];
    if( b->chunkId==0 ) continue;
    if( b->isReferenced ){
      b->isReferenced = 0;
    }else{
      sqlite3_free(b->aVec);
      b->aVec = 0;
      nFreed++;
    }
  }
  if( nFreed ){
    p->chunks.n -= nFreed;
    p->cacheBytes -= nFreed*vdbChunkBytes(p);
    vdbChunksDropped(p);
  }
}

/* Point the node's pVec at its vector in its chunk, reading the chunk if
** it is not cached. */
static int vdbAttachVector(VdbHnswIndex *p, VdbCNode *c){
  VdbChunkBuf *b = vdbChunkFind(p, c->slot.chunkId);
  int rc;
  if( b==0 ){
    rc = vdbChunkLoad(p, c->slot.chunkId, &b);
    if( rc!=SQLITE_OK ) return rc;
  }
  b->isReferenced = 1;
  c->node.pVec = vdbChunkVector(p, b->aVec, c->slot.offset);
  c->node.aux = vdbHnswAux(&p->graph.space, c->node.pVec);
  /* Attached only with its code: a node of the current epoch has both. */
  rc = vdbNodeEncode(p, c);
  if( rc==SQLITE_OK ) c->chunkEpoch = p->chunkEpoch;
  return rc;
}

/* Prepare once a statement whose zFmt names a table as "%w"."%w_%s":
** the graph's own (vdbPrepare) or its change log (vdbPrepareLog). */
static int vdbPrepareOn(VdbHnswIndex *p, sqlite3_stmt **pp, const char *zFmt, const char *zSuffix){
  VdbStore *s = p->pStore;
  if( *pp ) return SQLITE_OK;
  return vdbStorePrepare(s, sqlite3_mprintf(zFmt, s->zDb, s->zName, zSuffix), pp);
}
static int vdbPrepare(VdbHnswIndex *p, sqlite3_stmt **pp, const char *zFmt){
  return vdbPrepareOn(p, pp, zFmt, p->zSuffix);
}
static int vdbPrepareLog(VdbHnswIndex *p, sqlite3_stmt **pp, const char *zFmt){
  return vdbPrepareOn(p, pp, zFmt, p->zLog);
}

/* ---- T_info ----------------------------------------------------------------------- */

/* The graph's keys in T_info are its table suffix, '_', then the key. */
static void vdbInfoKey(const VdbHnswIndex *p, const char *zKey, char *zFull, int nFull){
  sqlite3_snprintf(nFull, zFull, "%s_%s", p->zSuffix, zKey);
}

static int vdbInfoGet(VdbHnswIndex *p, const char *zKey, sqlite3_int64 *pVal, int *pFound){
  sqlite3_value *pVal0 = 0;
  char zFull[VDB_HNSW_INFO_KEY_MAX];
  int rc;
  vdbInfoKey(p, zKey, zFull, sizeof(zFull));
  rc = vdbStoreInfoGet(p->pStore, zFull, &pVal0);
  *pFound = pVal0!=0;
  if( rc==SQLITE_OK && pVal0 ){
    if( sqlite3_value_type(pVal0)!=SQLITE_INTEGER ){
      rc = vdbGraphCorrupt(p, "%s_info key %s is not an integer", p->pStore->zName, zFull);
    }
    *pVal = sqlite3_value_int64(pVal0);
  }
  sqlite3_value_free(pVal0);
  return rc;
}

static int vdbInfoSet(VdbHnswIndex *p, const char *zKey, sqlite3_int64 val, int isDelete){
  char zFull[VDB_HNSW_INFO_KEY_MAX];
  vdbInfoKey(p, zKey, zFull, sizeof(zFull));
  return isDelete ? vdbStoreInfoDelete(p->pStore, zFull) : vdbStoreInfoSet(p->pStore, zFull, val);
}

/* ---- the change log --------------------------------------------------------------- */

/* The log's last seq, 0 when it is empty. */
static int vdbLogMax(VdbHnswIndex *p, sqlite3_int64 *pSeq){
  int rc = vdbPrepareLog(p, &p->pLogMax, "SELECT max(seq) FROM \"%w\".\"%w_%s\"");
  if( rc!=SQLITE_OK ) return rc;
  *pSeq = 0;
  if( sqlite3_step(p->pLogMax)==SQLITE_ROW ) *pSeq = sqlite3_column_int64(p->pLogMax, 0);
  return sqlite3_reset(p->pLogMax);
}

/* A fingerprint of a log row's changes (FNV-1a); every row a flush writes
** starts with a random entry, so two rows' prints differ even when they
** list the same nodes. A cache remembers the print of the last row it
** applied: if that row later holds something else (the file was restored
** from a backup and written again), the log cannot describe the change. */
static sqlite3_uint64 vdbLogPrint(const unsigned char *a, int n){
  sqlite3_uint64 h = 0xcbf29ce484222325ull;
  int i;
  if( a==0 ) return n ? 1 : 2;      /* NULL ("reload everything"), or empty */
  for(i=0; i<n; i++) h = (h ^ a[i]) * 0x100000001b3ull;
  return h;
}

/* The print of log row seq; 0 when there is no such row. */
static int vdbLogRowPrint(VdbHnswIndex *p, sqlite3_int64 seq, sqlite3_uint64 *pPrint){
  int rc = vdbPrepareLog(p, &p->pLogRow, "SELECT changes FROM \"%w\".\"%w_%s\" WHERE seq=?1");
  if( rc!=SQLITE_OK ) return rc;
  *pPrint = 0;
  sqlite3_bind_int64(p->pLogRow, 1, seq);
  if( sqlite3_step(p->pLogRow)==SQLITE_ROW ){
    const unsigned char *a = (const unsigned char*)sqlite3_column_blob(p->pLogRow, 0);
    *pPrint = vdbLogPrint(a, a ? sqlite3_column_bytes(p->pLogRow, 0) : 1);
  }
  return sqlite3_reset(p->pLogRow);
}

/* What the next log row will name: a node id and the chunk whose vectors
** changed with it, or 0. */
typedef struct VdbLogBuf {
  unsigned char *a;
  int nEntry, nAlloc;
} VdbLogBuf;

/* Bytes of one log entry: node id, chunk id, slot offset (vdb_format.h). */
#define VDB_LOG_ENTRY 24

static int vdbLogBufAdd(VdbLogBuf *b, sqlite3_int64 nid, const VdbSlot *pSlot){
  if( b->nEntry>VDB_HNSW_LOG_MAX_ENTRIES ) return SQLITE_OK;   /* "reload everything" */
  if( b->nEntry>=b->nAlloc ){
    int nNew = b->nAlloc ? b->nAlloc*2 : 64;
    unsigned char *a = (unsigned char*)sqlite3_realloc64(b->a, (sqlite3_uint64)nNew*VDB_LOG_ENTRY);
    if( a==0 ) return SQLITE_NOMEM;
    b->a = a;
    b->nAlloc = nNew;
  }
  vdbPutLe64(b->a + VDB_LOG_ENTRY*(size_t)b->nEntry, nid);
  vdbPutLe64(b->a + VDB_LOG_ENTRY*(size_t)b->nEntry + 8, pSlot ? pSlot->chunkId : 0);
  vdbPutLe64(b->a + VDB_LOG_ENTRY*(size_t)b->nEntry + 16, pSlot ? pSlot->offset : 0);
  b->nEntry++;
  return SQLITE_OK;
}

/* Append the log row for the flush about to write the dirty nodes and the
** moved ones, and drop the row that falls out of the kept window. Written
** before the nodes: a flush that fails halfway has logged what it wrote
** (and more, which is harmless), and the next flush logs the rest. */
static int vdbLogFlush(VdbHnswIndex *p){
  VdbLogBuf buf;
  VdbCNode *c;
  sqlite3_int64 seq = 0;
  int i, rc = SQLITE_OK;
  if( !p->hasLog || (p->pDirty==0 && p->nMoved==0) ) return SQLITE_OK;
  memset(&buf, 0, sizeof(buf));
  {
    /* The row's random entry (node id 0: readers skip it). */
    VdbSlot nonce;
    sqlite3_randomness(sizeof(nonce.offset), &nonce.offset);
    nonce.chunkId = 0;
    rc = vdbLogBufAdd(&buf, 0, &nonce);
  }
  for(c=p->pDirty; rc==SQLITE_OK && c; c=c->pDirtyNext){
    rc = vdbLogBufAdd(&buf, c->node.nid, (c->isNew || c->isRemoved) ? &c->slot : 0);
  }
  for(i=0; rc==SQLITE_OK && i<p->nMoved; i++) rc = vdbLogBufAdd(&buf, p->aMoved[i], 0);
  if( rc==SQLITE_OK ) rc = vdbLogMax(p, &seq);
  if( rc==SQLITE_OK ){
    rc = vdbPrepareLog(p, &p->pLogAdd, "INSERT INTO \"%w\".\"%w_%s\"(seq, changes) VALUES (?1, ?2)");
  }
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(p->pLogAdd, 1, seq+1);
    if( buf.nEntry>VDB_HNSW_LOG_MAX_ENTRIES ){
      sqlite3_bind_null(p->pLogAdd, 2);
      p->logPrint = vdbLogPrint(0, 1);
    }else{
      sqlite3_bind_blob(p->pLogAdd, 2, buf.a, VDB_LOG_ENTRY*buf.nEntry, SQLITE_STATIC);
      p->logPrint = vdbLogPrint(buf.a, VDB_LOG_ENTRY*buf.nEntry);
    }
    rc = vdbStepReset(p->pLogAdd);
    sqlite3_clear_bindings(p->pLogAdd);
  }
  /* One row in, one out: single-row statements only (vdbStoreInfoDelete
  ** says why). */
  if( rc==SQLITE_OK && seq+1>VDB_HNSW_LOG_KEEP ){
    rc = vdbPrepareLog(p, &p->pLogPrune, "DELETE FROM \"%w\".\"%w_%s\" WHERE seq=?1");
    if( rc==SQLITE_OK ){
      sqlite3_bind_int64(p->pLogPrune, 1, seq+1-VDB_HNSW_LOG_KEEP);
      rc = vdbStepReset(p->pLogPrune);
    }
  }
  if( rc==SQLITE_OK ){
    p->logSeq = seq+1;
    p->nMoved = 0;
  }
  sqlite3_free(buf.a);
  return rc;
}

/* Drop a clean cached node that another connection changed. */
static void vdbDropNode(VdbHnswIndex *p, sqlite3_int64 nid){
  VdbCNode *c = vdbLookup(p, nid);
  if( c && !c->isDirty ){
    vdbHashRemove(p, c);
    vdbFreeCNode(p, c);
  }
  vdbRememberVector(p, nid, 0, 0);
}

/* A slot's vector changed: read it into the cached chunk, if that chunk
** is cached. Patching in place keeps every pointer into the chunk valid;
** freeing it would retire every cached vector pointer (vdbChunksDropped)
** and cost the next queries their fast path, at each commit. Returns 1
** when the chunk had to be freed instead (it is gone: its last row was
** deleted), and the caller then calls vdbChunksDropped. */
static int vdbPatchChunk(VdbHnswIndex *p, const VdbSlot *pSlot){
  VdbChunkBuf *b = vdbChunkFind(p, pSlot->chunkId);
  if( b==0 || b->aVec==0 ) return 0;
  if( pSlot->offset>=0 && pSlot->offset<p->pStore->pDef->chunkSize
   && vdbStoreReadVector(p->pStore, p->base.iVec, pSlot,
                         vdbChunkVector(p, b->aVec, pSlot->offset))==SQLITE_OK ){
    return 0;
  }
  sqlite3_free(b->aVec);
  b->aVec = 0;
  p->chunks.n--;
  p->cacheBytes -= vdbChunkBytes(p);
  return 1;
}

/* Another connection committed: drop what the log rows after logSeq name.
** *pFull is set when the log cannot answer (a gap, or a row saying
** "reload everything"); the caller then drops the whole cache. */
static int vdbLogApply(VdbHnswIndex *p, int *pFull){
  sqlite3_int64 expect = p->logSeq+1;
  sqlite3_uint64 print = 0;
  int rc, nDropped = 0;
  *pFull = 0;
  /* The last row applied must still be what it was (a restore rewrites
  ** history). */
  rc = vdbLogRowPrint(p, p->logSeq, &print);
  if( rc!=SQLITE_OK ) return rc;
  if( print!=p->logPrint ){
    *pFull = 1;
    return SQLITE_OK;
  }
  rc = vdbPrepareLog(p, &p->pLogAfter, "SELECT seq, changes FROM \"%w\".\"%w_%s\" WHERE seq>?1 ORDER BY seq");
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(p->pLogAfter, 1, p->logSeq);
  while( !*pFull && sqlite3_step(p->pLogAfter)==SQLITE_ROW ){
    const unsigned char *a = (const unsigned char*)sqlite3_column_blob(p->pLogAfter, 1);
    int i, n = sqlite3_column_bytes(p->pLogAfter, 1);
    if( sqlite3_column_int64(p->pLogAfter, 0)!=expect++
     || sqlite3_column_type(p->pLogAfter, 1)!=SQLITE_BLOB || n%VDB_LOG_ENTRY ){
      *pFull = 1;
      break;
    }
    for(i=0; i<n; i+=VDB_LOG_ENTRY){
      VdbSlot slot;
      slot.chunkId = vdbGetLe64(a+i+8);
      slot.offset = (int)vdbGetLe64(a+i+16);
      if( vdbGetLe64(a+i)==0 ) continue;       /* the row's random entry */
      vdbDropNode(p, vdbGetLe64(a+i));
      if( slot.chunkId ) nDropped += vdbPatchChunk(p, &slot);
      p->nRefreshedNodes++;
    }
  }
  rc = sqlite3_reset(p->pLogAfter);
  if( nDropped ) vdbChunksDropped(p);
  return rc;
}

/* Entry point and next nid, read once per cache lifetime. */
static int vdbLoadInfo(VdbHnswIndex *p){
  sqlite3_int64 entry = 0, level = 0, next = 1;
  int hasEntry = 0, hasLevel = 0, hasNext = 0, rc;
  if( p->infoLoaded ) return SQLITE_OK;
  rc = vdbInfoGet(p, "entry", &entry, &hasEntry);
  if( rc==SQLITE_OK ) rc = vdbInfoGet(p, "entry_level", &level, &hasLevel);
  if( rc==SQLITE_OK ) rc = vdbInfoGet(p, "next_nid", &next, &hasNext);
  if( rc!=SQLITE_OK ) return rc;
  if( hasEntry!=hasLevel || level<0 || level>VDB_HNSW_MAX_LEVEL || next<1 || (hasEntry && entry>=next) ){
    return vdbGraphCorrupt(p, "its entry point in %s_info is invalid (entry %lld, level %lld, next node id %lld)",
                           p->pStore->zName, hasEntry ? entry : 0, level, next);
  }
  p->graph.hasEntry = hasEntry;
  p->graph.entryNid = entry;
  p->graph.entryLevel = (int)level;
  p->graph.entryChanged = 0;
  p->nextNid = next;
  p->nextNidChanged = 0;
  if( p->hasLog ){
    rc = vdbLogMax(p, &p->logSeq);
    if( rc==SQLITE_OK ) rc = vdbLogRowPrint(p, p->logSeq, &p->logPrint);
    if( rc!=SQLITE_OK ) return rc;
  }
  p->infoLoaded = 1;
  return SQLITE_OK;
}

/* ---- loading and saving nodes ------------------------------------------------------- */

/* Append id to a growing list (*pa, *pn used of *pnAlloc). */
static int vdbIdListAdd(sqlite3_int64 **pa, int *pn, int *pnAlloc, sqlite3_int64 id){
  if( *pn>=*pnAlloc ){
    int nNew = *pnAlloc ? *pnAlloc*2 : 64;
    sqlite3_int64 *a = (sqlite3_int64*)sqlite3_realloc64(*pa, sizeof(sqlite3_int64)*(sqlite3_uint64)nNew);
    if( a==0 ) return SQLITE_NOMEM;
    *pa = a;
    *pnAlloc = nNew;
  }
  (*pa)[(*pn)++] = id;
  return SQLITE_OK;
}

/* Sort n ids ascending: a node's links (at most 3m, mostly in order
** already), so by insertion. aDist (NULL: none) is moved along with the
** ids: a node's kept layer-0 link distances (VdbHnswNode.aDist0). */
static void vdbSortIds(sqlite3_int64 *a, float *aDist, int n){
  int i, j;
  for(i=1; i<n; i++){
    sqlite3_int64 x = a[i];
    float d = aDist ? aDist[i] : 0;
    for(j=i; j>0 && a[j-1]>x; j--){
      a[j] = a[j-1];
      if( aDist ) aDist[j] = aDist[j-1];
    }
    a[j] = x;
    if( aDist ) aDist[j] = d;
  }
}

/* qsort/bsearch order of 64-bit ids (node ids, rowids). */
static int vdbCompareInt64(const void *a, const void *b){
  sqlite3_int64 x = *(const sqlite3_int64*)a, y = *(const sqlite3_int64*)b;
  return x<y ? -1 : x>y;
}

/* Decode a links BLOB (vdb_format.h) of a node of this level into c's
** link arrays, checking every count and id. */
static int vdbDecodeLinks(VdbHnswIndex *p, VdbCNode *c, const unsigned char *a, int nByte){
  sqlite3_int64 nid = c->node.nid;
  int level = c->node.level, l, i, off = 0;
  if( !p->varintLinks ){
    if( nByte!=vdbLinksBytes(p, level) ){
      return vdbGraphCorrupt(p, "node %lld has %d bytes of links, not %d", nid, nByte, vdbLinksBytes(p, level));
    }
    for(l=0; l<=level; l++){
      int n = a[off] | (a[off+1]<<8);
      if( n>vdbCap(p, l) ){
        return vdbGraphCorrupt(p, "node %lld has %d links on layer %d, more than %d", nid, n, l, vdbCap(p, l));
      }
      c->node.anLink[l] = n;
      for(i=0; i<n; i++){
        sqlite3_int64 x = vdbGetLe64(a + off + 2 + 8*i);
        if( x<1 || x==nid ) return vdbGraphCorrupt(p, "node %lld links to node id %lld", nid, x);
        c->node.aaLink[l][i] = x;
      }
      off += 2 + 8*vdbCap(p, l);
    }
    return SQLITE_OK;
  }
  /* (a is NULL when nByte is 0: then not even a count is read.) */
  for(l=0; l<=level && off<nByte; l++){
    sqlite3_uint64 n, x = 0, step;
    int k = vdbGetVarint(a + off, nByte - off, &n);
    if( k==0 ) break;
    off += k;
    if( n>(sqlite3_uint64)vdbCap(p, l) ){
      return vdbGraphCorrupt(p, "node %lld has %llu links on layer %d, more than %d", nid, n, l, vdbCap(p, l));
    }
    c->node.anLink[l] = (int)n;
    for(i=0; i<(int)n; i++){
      k = vdbGetVarint(a + off, nByte - off, &step);
      if( k==0 ) break;
      off += k;
      /* Ascending and below 2^63: each step at least 1, the sum in range. */
      if( (i>0 && step==0) || step>=((sqlite3_uint64)1<<63) - x ){
        return vdbGraphCorrupt(p, "node %lld has links out of order or out of range on layer %d", nid, l);
      }
      x += step;
      if( x<1 || (sqlite3_int64)x==nid ) return vdbGraphCorrupt(p, "node %lld links to node id %llu", nid, x);
      c->node.aaLink[l][i] = (sqlite3_int64)x;
    }
    if( i<(int)n ) break;
  }
  if( l<=level || off!=nByte ){
    return vdbGraphCorrupt(p, "node %lld has %d bytes of links, not a link list for level %d", nid, nByte, level);
  }
  return SQLITE_OK;
}

/* Encode c's links as a links BLOB (vdb_format.h) into a new buffer. */
static int vdbEncodeLinks(VdbHnswIndex *p, const VdbCNode *c, unsigned char **paOut, int *pnOut){
  int level = c->node.level, l, i, nByte = 0;
  unsigned char *a;
  *paOut = 0;
  if( !p->varintLinks ){
    nByte = vdbLinksBytes(p, level);
  }else{
    for(l=0; l<=level; l++) nByte += VDB_VARINT_MAX*(1 + c->node.anLink[l]);
  }
  a = (unsigned char*)sqlite3_malloc(nByte>0 ? nByte : 1);
  if( a==0 ) return SQLITE_NOMEM;
  if( !p->varintLinks ){
    unsigned char *z = a;
    memset(a, 0, (size_t)nByte);
    for(l=0; l<=level; l++){
      z[0] = (unsigned char)(c->node.anLink[l] & 0xff);
      z[1] = (unsigned char)(c->node.anLink[l] >> 8);
      for(i=0; i<c->node.anLink[l]; i++) vdbPutLe64(z + 2 + 8*i, c->node.aaLink[l][i]);
      z += 2 + 8*vdbCap(p, l);
    }
  }else{
    sqlite3_int64 aSorted[3*VDB_HNSW_MAX_M];
    int off = 0;
    for(l=0; l<=level; l++){
      int n = c->node.anLink[l];
      sqlite3_int64 prev = 0;
      memcpy(aSorted, c->node.aaLink[l], sizeof(sqlite3_int64)*(size_t)n);
      vdbSortIds(aSorted, 0, n);
      off += vdbPutVarint(a + off, (sqlite3_uint64)n);
      for(i=0; i<n; i++){
        off += vdbPutVarint(a + off, (sqlite3_uint64)(aSorted[i] - prev));
        prev = aSorted[i];
      }
    }
    nByte = off;
  }
  *paOut = a;
  *pnOut = nByte;
  return SQLITE_OK;
}

/* Read node nid's row into a new node (its vector not attached, room for
** its code if withCode); the caller owns it. SQLITE_NOTFOUND when there
** is no such row. */
static int vdbReadNode(VdbHnswIndex *p, sqlite3_int64 nid, int withCode, VdbCNode **ppNode){
  VdbCNode *c = 0;
  int rc, level;
  *ppNode = 0;
  /* nids start at 1; 0 marks an empty slot of the node hash, where a node
  ** would be lost (and leaked). Only a damaged table names another. */
  if( nid<1 ) return vdbGraphCorrupt(p, "a link names node id %lld", nid);
  rc = vdbPrepare(p, &p->pLoad,
      "SELECT rowid, chunk_id, chunk_offset, level, links FROM \"%w\".\"%w_%s\" WHERE nid=?1");
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(p->pLoad, 1, nid);
  rc = sqlite3_step(p->pLoad);
  if( rc!=SQLITE_ROW ){
    int rc2 = sqlite3_reset(p->pLoad);
    return rc==SQLITE_DONE ? (rc2==SQLITE_OK ? SQLITE_NOTFOUND : rc2) : rc2;
  }
  rc = SQLITE_OK;
  level = sqlite3_column_int(p->pLoad, 3);
  if( level<0 || level>VDB_HNSW_MAX_LEVEL ){
    rc = vdbGraphCorrupt(p, "node %lld has level %d", nid, level);
  }else if( sqlite3_column_int64(p->pLoad, 2)<0
         || sqlite3_column_int64(p->pLoad, 2)>=p->pStore->pDef->chunkSize ){
    rc = vdbGraphCorrupt(p, "node %lld has chunk offset %lld", nid, sqlite3_column_int64(p->pLoad, 2));
  }else if( (c = vdbNewCNode(p, nid, level, withCode))==0 ){
    rc = SQLITE_NOMEM;
  }else{
    const unsigned char *aLinks = (const unsigned char*)sqlite3_column_blob(p->pLoad, 4);
    int nLinks = sqlite3_column_bytes(p->pLoad, 4);
    if( aLinks==0 && sqlite3_errcode(p->pStore->db)==SQLITE_NOMEM ){
      rc = SQLITE_NOMEM;
    }else{
      c->rowid = sqlite3_column_int64(p->pLoad, 0);
      c->slot.chunkId = sqlite3_column_int64(p->pLoad, 1);
      c->slot.offset = sqlite3_column_int(p->pLoad, 2);
      rc = vdbDecodeLinks(p, c, aLinks, nLinks);
    }
  }
  sqlite3_reset(p->pLoad);
  if( rc!=SQLITE_OK ){
    vdbFreeCNode(p, c);
    return rc;
  }
  *ppNode = c;
  return SQLITE_OK;
}

/* Read node nid into the private cache. */
static int vdbLoadNode(VdbHnswIndex *p, sqlite3_int64 nid, VdbCNode **ppNode){
  VdbCNode *c = 0;
  int rc = vdbReadNode(p, nid, 1, &c);
  if( rc==SQLITE_OK ) rc = vdbHashInsert(p, c);
  if( rc!=SQLITE_OK ){
    vdbFreeCNode(p, c);
    *ppNode = 0;
    return rc;
  }
  p->nLoaded++;
  *ppNode = c;
  return SQLITE_OK;
}

static int vdbSaveNode(VdbHnswIndex *p, VdbCNode *c){
  unsigned char *a = 0;
  int nByte = 0;
  int rc = vdbEncodeLinks(p, c, &a, &nByte);
  if( rc!=SQLITE_OK ) return rc;
  /* Delete, then insert: see vdbStoreInfoDelete for why not INSERT OR REPLACE. */
  rc = vdbPrepare(p, &p->pErase, "DELETE FROM \"%w\".\"%w_%s\" WHERE nid=?1");
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(p->pErase, 1, c->node.nid);
    rc = vdbStepReset(p->pErase);
  }
  if( rc==SQLITE_OK ){
    rc = vdbPrepare(p, &p->pSave,
        "INSERT INTO \"%w\".\"%w_%s\"(nid, rowid, chunk_id, chunk_offset, level, links)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  }
  if( rc==SQLITE_OK ){
    sqlite3_bind_int64(p->pSave, 1, c->node.nid);
    sqlite3_bind_int64(p->pSave, 2, c->rowid);
    sqlite3_bind_int64(p->pSave, 3, c->slot.chunkId);
    sqlite3_bind_int(p->pSave, 4, c->slot.offset);
    sqlite3_bind_int(p->pSave, 5, c->node.level);
    sqlite3_bind_blob(p->pSave, 6, a, nByte, SQLITE_STATIC);
    rc = vdbStepReset(p->pSave);
  }
  sqlite3_free(a);
  return rc;
}

/* Merge two lists sorted by nid (pDirtyNext). */
static VdbCNode *vdbMergeDirty(VdbCNode *a, VdbCNode *b){
  VdbCNode head, *pTail = &head;
  while( a && b ){
    if( a->node.nid < b->node.nid ){
      pTail->pDirtyNext = a;
      a = a->pDirtyNext;
    }else{
      pTail->pDirtyNext = b;
      b = b->pDirtyNext;
    }
    pTail = pTail->pDirtyNext;
  }
  pTail->pDirtyNext = a ? a : b;
  return head.pDirtyNext;
}

/* The dirty list in ascending nid order (a merge sort of the list). The
** order rows reach the table decides how full its pages are: new nodes
** written highest nid first (the list is built by prepending) each split
** a page in the middle and left the table's leaves half empty (52% unused
** bytes at 200k rows); in nid order they append, and pages fill. */
static VdbCNode *vdbSortDirty(VdbCNode *pList){
  VdbCNode *aBin[64], *c;
  int i, nBin = 0;
  memset(aBin, 0, sizeof(aBin));
  /* aBin[i] holds a sorted run of 2^i nodes or nothing (SQLite's pcache
  ** sort does the same): merge each node up through the full bins. */
  while( pList ){
    c = pList;
    pList = c->pDirtyNext;
    c->pDirtyNext = 0;
    for(i=0; aBin[i]; i++){          /* bin 63 would take 2^63 nodes */
      c = vdbMergeDirty(aBin[i], c);
      aBin[i] = 0;
    }
    aBin[i] = c;
    if( i>=nBin ) nBin = i+1;
  }
  c = 0;
  for(i=0; i<nBin; i++) c = vdbMergeDirty(aBin[i], c);   /* either may be NULL */
  return c;
}

static int vdbFlushOp(VdbHnswIndex *p){
  int rc = SQLITE_OK;
  /* The statements below can make SQLite open a statement savepoint, which
  ** calls xSavepoint, which flushes: that inner call has nothing to add. */
  VdbCNode *c;
  if( p->inFlush ) return SQLITE_OK;
  rc = vdbLinkPending(p);
  if( rc!=SQLITE_OK ) return rc;
  p->inFlush = 1;
  p->pDirty = vdbSortDirty(p->pDirty);
  rc = vdbLogFlush(p);
  /* Removed nodes first: a row whose vector changed has a removed node and
  ** a new one with the same rowid, which is unique in the table. */
  for(c=p->pDirty; rc==SQLITE_OK && c; c=c->pDirtyNext){
    if( !c->isRemoved ) continue;
    rc = vdbPrepare(p, &p->pErase, "DELETE FROM \"%w\".\"%w_%s\" WHERE nid=?1");
    if( rc==SQLITE_OK ){
      sqlite3_bind_int64(p->pErase, 1, c->node.nid);
      rc = vdbStepReset(p->pErase);
    }
  }
  while( rc==SQLITE_OK && p->pDirty ){
    c = p->pDirty;
    if( !c->isRemoved ) rc = vdbSaveNode(p, c);
    if( rc!=SQLITE_OK ) break;
    p->pDirty = c->pDirtyNext;
    c->isDirty = 0;
    c->isNew = 0;
    c->pDirtyNext = 0;
    if( c->isRemoved ){
      vdbHashRemove(p, c);
      vdbFreeCNode(p, c);
    }
  }
  if( rc==SQLITE_OK && p->graph.entryChanged ){
    if( p->graph.hasEntry ){
      rc = vdbInfoSet(p, "entry", p->graph.entryNid, 0);
      if( rc==SQLITE_OK ) rc = vdbInfoSet(p, "entry_level", p->graph.entryLevel, 0);
    }else{
      rc = vdbInfoSet(p, "entry", 0, 1);
      if( rc==SQLITE_OK ) rc = vdbInfoSet(p, "entry_level", 0, 1);
    }
    if( rc==SQLITE_OK ) p->graph.entryChanged = 0;
  }
  if( rc==SQLITE_OK && p->nextNidChanged ){
    rc = vdbInfoSet(p, "next_nid", p->nextNid, 0);
    if( rc==SQLITE_OK ) p->nextNidChanged = 0;
  }
  p->inFlush = 0;
  return rc;
}

/* Bytes of the lookup tables: the flat nid table, the node hash, the
** chunk table. They count against cache_mb like the nodes and chunks, but
** cannot be evicted entry by entry (the nid table spans every id up to the
** largest one cached). */
static sqlite3_int64 vdbTableBytes(const VdbHnswIndex *p){
  return p->nByNid*(sqlite3_int64)sizeof(VdbNidEntry) + (sqlite3_int64)p->nHash*(sqlite3_int64)sizeof(VdbNodeEntry)
       + (sqlite3_int64)p->chunks.nSlot*(sqlite3_int64)sizeof(VdbChunkBuf) + vdbRecordsTableBytes(&p->codes);
}

/* What nodes and chunks may take: the budget less the tables, but never
** less than a quarter of it, so that a budget the tables nearly fill
** does not empty the cache after every query. */
static sqlite3_int64 vdbContentBudget(const VdbHnswIndex *p){
  sqlite3_int64 n = p->budgetBytes - vdbTableBytes(p);
  return n > p->budgetBytes/4 ? n : p->budgetBytes/4;
}

/* Over budget: evict clean nodes not used since the clock hand last passed
** (CLOCK), down to 3/4 of the budget, so the hot upper layers and recent
** neighbourhoods stay. Dirty nodes stay until flushed. Runs between
** operations only, so no walk holds a pointer to what it frees. */
static void vdbEvictClean(VdbHnswIndex *p){
  sqlite3_int64 budget = vdbContentBudget(p);
  sqlite3_int64 target = budget - budget/4;
  int nStep = 0;
  if( p->cacheBytes<=budget ) return;
  /* Chunks first: a chunk evicted costs one sequential read to get back,
  ** a node a B-tree lookup each. */
  vdbChunkEvict(p);
  while( p->cacheBytes>target && p->nHash>0 && nStep < 3*p->nHash ){
    int i = p->clockHand;
    VdbCNode *c = p->aHash[i].pNode;
    nStep++;
    if( p->aHash[i].nid==0 || c->isDirty ){
      p->clockHand = (i+1) & (p->nHash-1);
    }else if( c->isReferenced ){
      c->isReferenced = 0;
      p->clockHand = (i+1) & (p->nHash-1);
    }else{
      if( p->txnDirty && c->txnStamp==p->txnCount ) p->txnNoCopy = 1;
      /* Removal may shift a later entry into slot i: look at it next. */
      vdbHashRemove(p, c);
      vdbFreeCNode(p, c);
    }
  }
  if( p->cacheBytes>target ) vdbCodesEvict(p, 0);
  if( p->cacheBytes>target ) vdbChunkFreeAll(p);
  if( p->cacheBytes>target ) vdbCodesEvict(p, 1);
}

/* After a write: stay within the budget by flushing, then evicting. */
static int vdbAfterWrite(VdbHnswIndex *p){
  int rc = SQLITE_OK;
  if( p->cacheBytes>vdbContentBudget(p) ){
    rc = vdbHnswFlush(&p->base);
    if( rc==SQLITE_OK ) vdbEvictClean(p);
  }
  return rc;
}

static void vdbDiscardNow(VdbHnswIndex *p){
  int i;
  vdbLinkJoinAs(p, 1);                /* no thread may walk what is freed */
  vdbChunkFreeAll(p);
  for(i=0; i<p->nHash; i++){
    if( p->aHash[i].nid ) vdbFreeCNode(p, p->aHash[i].pNode);
    p->aHash[i].nid = 0;
    p->aHash[i].pNode = 0;
  }
  /* Every node is gone: the pool's memory goes back too. */
  if( p->pool.nLive==0 ) vdbPoolFree(&p->pool);
  if( p->aByNid ) memset(p->aByNid, 0, sizeof(VdbNidEntry)*(size_t)p->nByNid);
  /* A rolled-back node id may come back with another vector. */
  vdbRecordsClear(&p->codes);
  if( p->codes.aUsed ) memset(p->codes.aUsed, 0, (size_t)p->codes.nPage);
  p->nNode = 0;
  p->cacheBytes = 0;
  p->pDirty = 0;
  p->nMoved = 0;
  p->nPending = 0;
  p->infoLoaded = 0;
  p->graph.hasEntry = 0;
  p->graph.entryChanged = 0;
  p->nextNidChanged = 0;
  p->nDiscards++;
}

/* ---- the access layer the algorithm sees ------------------------------------------- */

static int vdbCopyFromShared(VdbHnswIndex *p, sqlite3_int64 nid, VdbCNode **ppNode);
static void vdbWriteBegin(VdbHnswIndex *p);
static void vdbWriteEnd(VdbHnswIndex *p);
static void vdbWriteEndThreads(VdbHnswIndex *p, int nThread);
static int vdbSharedAttach(VdbHnswIndex *p);
static void vdbSharedCatchUp(VdbHnswIndex *p);

/* A cached node ready for use as it is: in the flat nid table, not
** removed, its vector and code attached in this chunk epoch. The entry's
** remembered vector stands for the last three: it is set only from an
** attached node, and removal, a new chunk epoch and a code eviction
** forget it. So the check reads the entry alone, not also the node's
** flags (two dependent misses per node a walk expands or prefetches, 19%
** of a 2-thread build's time). A node attached but not remembered is not
** ready: the private cache's slow path (vdbAccessGet) or the parallel
** link's next round reads and remembers it. */
static VdbCNode *vdbNidReady(const VdbHnswIndex *p, sqlite3_int64 nid){
  const VdbNidEntry *e;
  if( nid<=0 || nid>=p->nByNid ) return 0;
  e = &p->aByNid[nid];
  return e->pVec ? e->pNode : 0;
}

static int vdbAccessGet(void *pCtx, sqlite3_int64 nid, VdbHnswNode **ppNode){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  VdbCNode *c = vdbNidReady(p, nid);
  int rc = SQLITE_OK;
  /* The CLOCK mark is written only when it changes. */
  if( c ){
    p->nHits++;
    if( !c->isReferenced ) c->isReferenced = 1;
    *ppNode = &c->node;
    return SQLITE_OK;
  }
  c = vdbLookup(p, nid);
  if( c ) p->nHits++;
  if( c==0 ){
    rc = vdbCopyFromShared(p, nid, &c);
    if( rc==SQLITE_NOTFOUND ) rc = vdbLoadNode(p, nid, &c);
    /* An edge to a node that is not there: the graph is damaged. */
    if( rc==SQLITE_NOTFOUND ){
      rc = vdbGraphCorrupt(p, "a link leads to node %lld, which has no row", nid);
    }
  }else if( c->isRemoved ){
    /* Deleting a node unlinks it everywhere: an edge still leading to it
    ** was one-sided in the stored graph. */
    rc = vdbGraphCorrupt(p, "a one-sided link leads to deleted node %lld", nid);
  }
  if( rc==SQLITE_OK && c->chunkEpoch!=p->chunkEpoch ) rc = vdbAttachVector(p, c);
  if( rc==SQLITE_OK ){
    c->isReferenced = 1;
    *ppNode = &c->node;
  }
  return rc;
}

/* The search's fast path: a cached node's vector from its hash entry. */
static int vdbAccessVector(void *pCtx, sqlite3_int64 nid, const void **ppVec, float *pAux){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  VdbHnswNode *pNode;
  int rc;
  if( nid>=0 && nid<p->nByNid && p->aByNid[nid].pVec ){
    p->nHits++;
    *ppVec = p->aByNid[nid].pVec;
    *pAux = p->aByNid[nid].aux;
    return SQLITE_OK;
  }
  rc = vdbAccessGet(pCtx, nid, &pNode);
  if( rc==SQLITE_OK ){
    *ppVec = pNode->pVec;
    *pAux = pNode->aux;
    vdbRememberVector(p, nid, pNode->pVec, pNode->aux);
  }
  return rc;
}

/* The search's fast path when it walks codes. */
static int vdbAccessCode(void *pCtx, sqlite3_int64 nid, const void **ppCode){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  VdbHnswNode *pNode;
  const void *pKept = vdbCodeKept(p, nid);
  int rc;
  if( pKept ){
    p->nHits++;
    *ppCode = pKept;
    return SQLITE_OK;
  }
  rc = vdbAccessGet(pCtx, nid, &pNode);
  if( rc==SQLITE_OK ){
    *ppCode = pNode->pCode;
    vdbRememberVector(p, nid, pNode->pVec, pNode->aux);
  }
  return rc;
}

/* xCodes: the records' codes inline, each node they lack through
** vdbAccessCode (which asks the records again, and then the cache). */
static int vdbAccessCodes(void *pCtx, const sqlite3_int64 *aNid, int n, const void **apCode){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<n; i++){
    if( (apCode[i] = vdbCodeKept(p, aNid[i]))!=0 ) p->nHits++;
    else rc = vdbAccessCode(pCtx, aNid[i], &apCode[i]);
  }
  return rc;
}

/* Touch the lines of a cached node that an expansion on layer 0 reads:
** the head of the node (level, link counts, up to the layer-0 link
** pointer) and its layer-0 links, which follow the
** struct in the node's allocation (vdbNewCNode; a node that keeps its
** code has them further on, and gets the wrong lines: a hint only), not
** the upper layers' pointers and the bookkeeping between: the walk keeps
** many lines in flight, and a 2-thread build of 1M x 128 spent a fifth of
** its time in prefetches waiting for a free line buffer. Without reading
** the node: taking aaLink[0] from it waited for the node's line before
** the links could be asked for, in the prefetch meant to hide that wait. */
static void vdbPrefetchLines(const char *z, size_t nByte){
  uintptr_t a = (uintptr_t)z & ~(uintptr_t)63, e = (uintptr_t)z + nByte;
  for(; a<e; a+=64) __builtin_prefetch((const void*)a);
}
static void vdbPrefetchNode(const VdbHnswIndex *p, const VdbCNode *c){
  const char *z = (const char*)c;
  vdbPrefetchLines(z, offsetof(VdbHnswNode, aaLink) + sizeof(c->node.aaLink[0]));
  vdbPrefetchLines(z + sizeof(VdbCNode), (size_t)vdbCap(p, 0)*sizeof(sqlite3_int64));
}

/* A node joined a walk's candidates: its nid table entry, which the
** expansion's prefetch (vdbNidReady) must read before it can ask for the
** node's lines, is asked for now. */
static void vdbAccessPrefetchEntry(void *pCtx, sqlite3_int64 nid){
  const VdbHnswIndex *p = (const VdbHnswIndex*)pCtx;
  if( nid>0 && nid<p->nByNid ) __builtin_prefetch(&p->aByNid[nid]);
}

/* The first line of node nid's code record, or if it has none the nid
** table entry that leads to the node. */
static void vdbAccessPrefetchCode(void *pCtx, sqlite3_int64 nid){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  const void *pRec = vdbRecordsAddress(&p->codes, nid);
  if( pRec ){
    __builtin_prefetch(pRec);
  }else if( nid>=0 && nid<p->nByNid ){
    __builtin_prefetch(&p->aByNid[nid]);
  }
}

static void vdbAccessPrefetch(void *pCtx, sqlite3_int64 nid){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  VdbCNode *c = vdbLookup(p, nid);
  if( c ) vdbPrefetchNode(p, c);
}

static int vdbAccessCreate(void *pCtx, sqlite3_int64 nid, int level, const void *pVec, VdbHnswNode **ppNode){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  VdbCNode *c = vdbNewCNode(p, nid, level, 1);
  int rc;
  VdbChunkBuf *b;
  if( c==0 ) return SQLITE_NOMEM;
  c->rowid = p->pendingRowid;
  c->slot = p->pendingSlot;
  c->isNew = 1;
  /* The vector is already in its chunk BLOB; a cached copy of the chunk
  ** predates it. */
  b = vdbChunkFind(p, c->slot.chunkId);
  if( b ){
    memcpy(vdbChunkVector(p, b->aVec, c->slot.offset), pVec, (size_t)p->nVecBytes);
  }
  rc = vdbAttachVector(p, c);
  if( rc==SQLITE_OK ) rc = vdbHashInsert(p, c);
  if( rc!=SQLITE_OK ){ vdbFreeCNode(p, c); return rc; }
  *ppNode = &c->node;
  return SQLITE_OK;
}

/* c is to be written at the next flush, and kept cached until then. */
static void vdbMarkDirty(VdbHnswIndex *p, VdbCNode *c){
  c->txnStamp = p->txnCount;
  if( !c->isDirty ){
    c->isDirty = 1;
    c->pDirtyNext = p->pDirty;
    p->pDirty = c;
  }
}

static int vdbAccessDirty(void *pCtx, VdbHnswNode *pNode){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  VdbCNode *c = (VdbCNode*)pNode;
  c->txnStamp = p->txnCount;
  if( c->opStamp!=p->opCount ){
    if( vdbIdListAdd(&p->aTouched, &p->nTouched, &p->nTouchedAlloc, c->node.nid)!=SQLITE_OK ){
      return SQLITE_NOMEM;
    }
    c->opStamp = p->opCount;
  }
  vdbMarkDirty(p, c);
  return SQLITE_OK;
}

static int vdbAccessRemove(void *pCtx, VdbHnswNode *pNode){
  vdbRememberVector((VdbHnswIndex*)pCtx, pNode->nid, 0, 0);
  ((VdbCNode*)pNode)->isRemoved = 1;
  return vdbAccessDirty(pCtx, pNode);
}

/* The node to become the entry point: the highest level's lowest nid,
** other than nidExcluded. Two lookups, so that the level index may be
** partial (format 3, vdb_format.h): the nodes above layer 0 through it,
** and if there are none, the lowest nid through the table's key. */
static int vdbAccessTopNode(void *pCtx, sqlite3_int64 nidExcluded, sqlite3_int64 *pNid, int *pLevel){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  int rc = vdbHnswFlush(&p->base);       /* the table must show every node's level */
  int iTry, found = 0;
  for(iTry=0; rc==SQLITE_OK && !found && iTry<2; iTry++){
    sqlite3_stmt **ppStmt = iTry==0 ? &p->pTop : &p->pTopAny;
    rc = vdbPrepare(p, ppStmt, iTry==0
        ? "SELECT nid, level FROM \"%w\".\"%w_%s\" WHERE level>0 AND nid!=?1 ORDER BY level DESC, nid LIMIT 1"
        : "SELECT nid, level FROM \"%w\".\"%w_%s\" WHERE nid!=?1 ORDER BY nid LIMIT 1");
    if( rc==SQLITE_OK ){
      sqlite3_bind_int64(*ppStmt, 1, nidExcluded);
      if( sqlite3_step(*ppStmt)==SQLITE_ROW ){
        *pNid = sqlite3_column_int64(*ppStmt, 0);
        *pLevel = sqlite3_column_int(*ppStmt, 1);
        found = 1;
      }
      /* A step that failed (out of memory, I/O) is that error, not "no
      ** other node": that would drop the entry point of a live graph. */
      rc = sqlite3_reset(*ppStmt);
    }
  }
  if( rc==SQLITE_OK && !found ) rc = SQLITE_NOTFOUND;
  if( rc==SQLITE_OK && (*pLevel<0 || *pLevel>VDB_HNSW_MAX_LEVEL) ){
    rc = vdbGraphCorrupt(p, "node %lld has level %d", *pNid, *pLevel);
  }
  return rc;
}

/* ---- linking a bulk insert with several threads ---------------------------------
** With threads > 1 (the "threads" parameter; 0 means one per core) an
** insert creates its node at once -- the row and its vector are written,
** the node is cached and dirty -- and leaves its linking for later, so
** that many can be linked at once by several threads: when VDB_LINK_BATCH
** are waiting, and before anything reads or writes the graph otherwise
** (a search, a delete, a flush at xSavepoint or xSync). A query inside
** the transaction therefore sees every row it inserted.
**
** The threads never touch SQLite: they walk the private cache only. A
** node whose link needs a node (or a vector) the cache does not hold is
** left for the next round, and the missing node noted; between rounds
** the calling thread reads the noted nodes, so each round reaches further
** into a table the cache did not hold (a bulk load into a new table needs
** one round). When a round links nothing, or after VDB_LINK_MAX_ROUNDS,
** the calling thread links what is left, one node at a time, reading
** what it must. Each layer's search and neighbour choice run
** concurrently; the changes to links and to the entry point take a write
** lock, one thread at a time, and every change to a node's links is
** bracketed by the node's change count (VdbHnswNode.linkSeq), which a
** search reads before and after copying them, copying again if a change
** came between (a sequence lock: hnswlib takes a mutex per node instead,
** and so did we, at two atomic read-modify-writes per node a search
** expands).
**
** Nothing is written to the table until the batch is linked and flushed,
** inside the user's transaction, so a ROLLBACK, a failed statement or a
** crash during a parallel link leaves nothing of it; a link that fails
** leaves its node waiting, in a graph whose invariants hold, and the next
** attempt links it again. Which thread links which node depends on timing,
** so the graph does too: threads=1 links each row as it is inserted, and
** the same inserts then build the same graph. */

#define VDB_LINK_BATCH      1024        /* waiting nodes that start a link */
#define VDB_LINK_PER_THREAD 16          /* waiting nodes per thread, at least */
#define VDB_LINK_MAX_ROUNDS 64
#define VDB_LINK_MAX_MISSES 1024        /* noted per thread and round */

typedef struct VdbLinkJob VdbLinkJob;
typedef struct VdbLinkWorker {
  VdbLinkJob *pJob;
  VdbHnsw graph;                    /* this thread's scratch; entry point in the index's */
  int rc;
  sqlite3_int64 *aMiss;             /* nodes it needed and the cache lacked (VDB_LINK_MAX_MISSES) */
  int nMiss;
  pthread_t thread;
} VdbLinkWorker;

struct VdbLinkJob {
  VdbHnswIndex *p;
  int nThread;                      /* threads that link: this one and nThread-1 started */
  int nStarted;                     /* of those, running the round under way */
  /* The round's waiting nodes: p->aPending's first nNid, or aBatch's
  ** copy of them while a round runs in the background (the inserts
  ** meanwhile append to p->aPending, which may move it). */
  sqlite3_int64 *aNid;
  int nNid;
  sqlite3_int64 *aBatch;
  int nNext;                        /* the next waiting node to take (atomic) */
  int stop;                         /* take no more: a thread failed, or a cancel (atomic) */
  unsigned char *aDone;             /* per waiting node: linked */
  int nDoneAlloc;
  sqlite3_int64 *aMiss;             /* nThread*VDB_LINK_MAX_MISSES, shared out to the workers */
  VdbLinkWorker aWorker[VDB_HNSW_MAX_THREADS];
  pthread_mutex_t writeLock;
};

/* Cores online, counted once. */
static int vdbCoreCount(void){
  static int nCore = 0;
  int n = __atomic_load_n(&nCore, __ATOMIC_RELAXED);
  if( n==0 ){
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c<1 ? 1 : c>VDB_HNSW_MAX_THREADS ? VDB_HNSW_MAX_THREADS : (int)c;
    __atomic_store_n(&nCore, n, __ATOMIC_RELAXED);
  }
  return n;
}

/* The threads an index links with: its setting (at most
** VDB_HNSW_MAX_THREADS, as is the core count), where SQLite's allocator
** may be called from several threads at once. */
static int vdbLinkThreads(const VdbHnswIndex *p){
  int n = p->nThreads>0 ? p->nThreads : vdbCoreCount();
  return sqlite3_threadsafe() ? n : 1;
}

/* The access callbacks' pCtx is the thread's VdbLinkWorker. */
static VdbLinkJob *vdbLinkJobOf(void *pCtx){
  return ((VdbLinkWorker*)pCtx)->pJob;
}

static int vdbLinkGet(void *pCtx, sqlite3_int64 nid, VdbHnswNode **ppNode){
  VdbLinkWorker *w = (VdbLinkWorker*)pCtx;
  VdbCNode *c = vdbNidReady(w->pJob->p, nid);
  if( c==0 ){
    /* A miss: this node waits for the next round, which will find nid. */
    if( w->nMiss<VDB_LINK_MAX_MISSES ) w->aMiss[w->nMiss++] = nid;
    return SQLITE_NOTFOUND;
  }
  *ppNode = &c->node;
  return SQLITE_OK;
}

static int vdbLinkVector(void *pCtx, sqlite3_int64 nid, const void **ppVec, float *pAux){
  const VdbHnswIndex *p = vdbLinkJobOf(pCtx)->p;
  VdbHnswNode *pNode;
  int rc;
  if( nid>0 && nid<p->nByNid && p->aByNid[nid].pVec ){
    *ppVec = p->aByNid[nid].pVec;
    *pAux = p->aByNid[nid].aux;
    return SQLITE_OK;
  }
  rc = vdbLinkGet(pCtx, nid, &pNode);
  if( rc==SQLITE_OK ){
    *ppVec = pNode->pVec;
    *pAux = pNode->aux;
  }
  return rc;
}

static int vdbLinkCode(void *pCtx, sqlite3_int64 nid, const void **ppCode){
  const VdbHnswIndex *p = vdbLinkJobOf(pCtx)->p;
  VdbHnswNode *pNode;
  const void *pKept = vdbCodeKept(p, nid);
  int rc;
  if( pKept ){
    *ppCode = pKept;
    return SQLITE_OK;
  }
  rc = vdbLinkGet(pCtx, nid, &pNode);
  if( rc==SQLITE_OK ) *ppCode = pNode->pCode;
  return rc;
}

static int vdbLinkCodes(void *pCtx, const sqlite3_int64 *aNid, int n, const void **apCode){
  const VdbHnswIndex *p = vdbLinkJobOf(pCtx)->p;
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<n; i++){
    if( (apCode[i] = vdbCodeKept(p, aNid[i]))==0 ) rc = vdbLinkCode(pCtx, aNid[i], &apCode[i]);
  }
  return rc;
}

static void vdbLinkPrefetch(void *pCtx, sqlite3_int64 nid){
  VdbLinkJob *j = vdbLinkJobOf(pCtx);
  VdbCNode *c = vdbNidReady(j->p, nid);
  if( c ) vdbPrefetchNode(j->p, c);
}

static void vdbLinkPrefetchCandidate(void *pCtx, sqlite3_int64 nid){
  vdbAccessPrefetchEntry(vdbLinkJobOf(pCtx)->p, nid);
}

static void vdbLinkPrefetchCode(void *pCtx, sqlite3_int64 nid){
  vdbAccessPrefetchCode(vdbLinkJobOf(pCtx)->p, nid);
}

/* Under the write lock: the private cache's own bookkeeping. */
static int vdbLinkDirty(void *pCtx, VdbHnswNode *pNode){
  return vdbAccessDirty(vdbLinkJobOf(pCtx)->p, pNode);
}

/* The write lock is held for one insert's link changes, tens of
** microseconds. A waiter put to sleep by the mutex took 70 us on average
** to get it (a 2-thread build of 100,000 x 128: 12,000 waits, 0.8 s), so
** it first spins, trying the lock every VDB_LINK_SPIN_PAUSES pauses, up
** to VDB_LINK_SPIN_TRIES times (a pause takes from a few to about 140
** cycles, by CPU: tens to a couple of hundred microseconds in all), and
** only then sleeps: with
** more threads than cores a spinning waiter holds a core the holder may
** need. */
#define VDB_LINK_SPIN_TRIES  100
#define VDB_LINK_SPIN_PAUSES 32
static void vdbCpuRelax(void){
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
static void vdbLinkLock(VdbLinkJob *j){
  int nTry, i;
  for(nTry=0; nTry<VDB_LINK_SPIN_TRIES; nTry++){
    if( pthread_mutex_trylock(&j->writeLock)==0 ) return;
    for(i=0; i<VDB_LINK_SPIN_PAUSES; i++) vdbCpuRelax();
  }
  pthread_mutex_lock(&j->writeLock);
}
static void vdbLinkWriteLock(void *pCtx, int bLock){
  VdbLinkJob *j = vdbLinkJobOf(pCtx);
  if( bLock ) vdbLinkLock(j);
  else pthread_mutex_unlock(&j->writeLock);
}

/* Under the write lock: the node's change count goes odd before its
** links change and even again, with release, once they have. Only the
** write section changes links, one thread at a time, so the count has
** one writer. The link stores are release stores (vdbLinkStoreAt), so
** none is seen before the odd count. (Fences would say the same, but
** ThreadSanitizer cannot follow them.) The count lives in the node, not
** in a table of counts by nid: a search reads the node's first line
** anyway, while a table's lines, changed by every other thread's links,
** moved between the cores at each node expanded. */
static void vdbLinkEdit(void *pCtx, VdbHnswNode *pNode, int bBegin){
  unsigned int v = __atomic_load_n(&pNode->linkSeq, __ATOMIC_RELAXED);
  (void)pCtx;
  __atomic_store_n(&pNode->linkSeq, v+1, bBegin ? __ATOMIC_RELAXED : __ATOMIC_RELEASE);
}

/* The node's links on a layer as they were between two changes: copied
** with acquire loads (plain loads on x86), which keep the second read of
** the node's change count after them, and copied again if the count was odd
** or moved meanwhile. A count beyond the layer's capacity can only be a
** torn read and is retried the same way. A change takes nanoseconds, but
** its thread may lose its core (more threads than cores): after a few
** tries the reader yields. */
static int vdbLinkCopy(void *pCtx, const VdbHnswNode *pNode, int layer, sqlite3_int64 *aOut){
  VdbLinkJob *j = vdbLinkJobOf(pCtx);
  const unsigned int *pSeq = &pNode->linkSeq;
  const int cap = vdbCap(j->p, layer);
  int nTry;
  for(nTry=1; ; nTry++){
    unsigned int v = __atomic_load_n(pSeq, __ATOMIC_ACQUIRE);
    int n, i;
    if( (nTry & 63)==0 ) sched_yield();
    if( v & 1 ) continue;                      /* a change is under way */
    n = __atomic_load_n(&pNode->anLink[layer], __ATOMIC_ACQUIRE);
    if( n>cap ) n = cap;
    for(i=0; i<n; i++) aOut[i] = __atomic_load_n(&pNode->aaLink[layer][i], __ATOMIC_ACQUIRE);
    if( __atomic_load_n(pSeq, __ATOMIC_RELAXED)==v ) return n;
  }
}

static void *vdbLinkWorkerMain(void *pArg){
  VdbLinkWorker *w = (VdbLinkWorker*)pArg;
  VdbLinkJob *j = w->pJob;
  while( !__atomic_load_n(&j->stop, __ATOMIC_ACQUIRE) && w->nMiss<VDB_LINK_MAX_MISSES ){
    int i = __atomic_fetch_add(&j->nNext, 1, __ATOMIC_RELAXED);
    VdbHnswNode *pNode;
    int rc;
    if( i>=j->nNid ) break;
    rc = vdbLinkGet(w, j->aNid[i], &pNode);
    if( rc==SQLITE_OK ) rc = vdbHnswLink(&w->graph, pNode);
    if( rc==SQLITE_OK ){
      j->aDone[i] = 1;
    }else if( rc!=SQLITE_NOTFOUND ){
      w->rc = rc;
      __atomic_store_n(&j->stop, 1, __ATOMIC_RELEASE);
    }
  }
  return 0;
}

/* The threads that link n waiting nodes: the setting, but none with fewer
** than VDB_LINK_PER_THREAD nodes to take. */
static int vdbLinkThreadsFor(const VdbHnswIndex *p, int n){
  int nThread = vdbLinkThreads(p);
  return nThread > n/VDB_LINK_PER_THREAD ? n/VDB_LINK_PER_THREAD : nThread;
}

static void vdbLinkJobFree(VdbLinkJob *j){
  int i;
  if( j==0 ) return;
  for(i=0; i<j->nThread; i++){
    j->p->graph.nDistance += j->aWorker[i].graph.nDistance;
    vdbHnswFree(&j->aWorker[i].graph);
  }
  pthread_mutex_destroy(&j->writeLock);
  sqlite3_free(j->aDone);
  sqlite3_free(j->aBatch);
  sqlite3_free(j->aMiss);
  sqlite3_free(j);
}

/* A job for nThread threads (2 or more); NULL when memory ran out. */
static VdbLinkJob *vdbLinkJobNew(VdbHnswIndex *p, int nThread){
  VdbLinkJob *j = (VdbLinkJob*)sqlite3_malloc(sizeof(*j));
  int i;
  if( j==0 ) return 0;
  memset(j, 0, sizeof(*j));
  j->aMiss = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64)*(sqlite3_uint64)nThread*VDB_LINK_MAX_MISSES);
  if( j->aMiss==0 ){
    sqlite3_free(j);
    return 0;
  }
  j->p = p;
  j->nThread = nThread;
  pthread_mutex_init(&j->writeLock, 0);
  for(i=0; i<nThread; i++){
    VdbHnswAccess access;
    memset(&access, 0, sizeof(access));
    access.pCtx = &j->aWorker[i];
    access.xGet = vdbLinkGet;
    access.xVector = vdbLinkVector;
    access.xCode = vdbLinkCode;
    access.xCodes = vdbLinkCodes;
    access.xPrefetch = vdbLinkPrefetch;
    access.xPrefetchCode = vdbLinkPrefetchCode;
    access.xPrefetchCandidate = vdbLinkPrefetchCandidate;
    access.xDirty = vdbLinkDirty;
    access.xWriteLock = vdbLinkWriteLock;
    access.xEdit = vdbLinkEdit;
    access.xLinksCopy = vdbLinkCopy;
    j->aWorker[i].pJob = j;
    j->aWorker[i].aMiss = j->aMiss + (size_t)i*VDB_LINK_MAX_MISSES;
    vdbHnswWorkerInit(&j->aWorker[i].graph, &p->graph, &access);
  }
  return j;
}

/* Before a round: this thread reads what the last round missed, and the
** waiting nodes aNid[0..n-1] themselves, into the cache, and notes where
** their vectors are for the threads (vdbNidReady). */
static int vdbLinkReadMisses(VdbLinkJob *j, const sqlite3_int64 *aNid, int n){
  VdbHnswIndex *p = j->p;
  int i, k, rc = SQLITE_OK;
  for(k=0; rc==SQLITE_OK && k<=j->nThread; k++){
    const sqlite3_int64 *a = k<j->nThread ? j->aWorker[k].aMiss : aNid;
    int nA = k<j->nThread ? j->aWorker[k].nMiss : n;
    for(i=0; rc==SQLITE_OK && i<nA; i++){
      VdbHnswNode *pNode;
      rc = vdbAccessGet(p, a[i], &pNode);
      if( rc==SQLITE_OK ) vdbRememberVector(p, a[i], pNode->pVec, pNode->aux);
    }
  }
  return rc;
}

/* Start a round over aNid[0..nNid-1]: nThread-1 threads begin taking
** nodes; vdbLinkRoundFinish has this thread take its share and waits for
** them. A thread that cannot be started leaves its share to the others. */
static int vdbLinkRoundStart(VdbLinkJob *j, sqlite3_int64 *aNid, int nNid){
  int i;
  if( nNid>j->nDoneAlloc ){
    unsigned char *aNew = (unsigned char*)sqlite3_realloc(j->aDone, nNid);
    if( aNew==0 ) return SQLITE_NOMEM;
    j->aDone = aNew;
    j->nDoneAlloc = nNid;
  }
  memset(j->aDone, 0, (size_t)nNid);
  j->aNid = aNid;
  j->nNid = nNid;
  j->nNext = 0;
  j->stop = 0;
  for(i=0; i<j->nThread; i++){
    j->aWorker[i].rc = SQLITE_OK;
    j->aWorker[i].nMiss = 0;
  }
  j->nStarted = 1;
  for(i=1; i<j->nThread; i++){
    if( pthread_create(&j->aWorker[i].thread, 0, vdbLinkWorkerMain, &j->aWorker[i])!=0 ) break;
    j->nStarted++;
  }
  return SQLITE_OK;
}

/* End the round: this thread links its share (none after a cancel), the
** others are waited for, and the nodes linked leave the list they came
** from, aList[0..*pnList-1], whose first j->nNid were the round's (any
** after them keep their order). Returns an error a thread met; a miss is
** not one. */
static int vdbLinkRoundFinish(VdbLinkJob *j, sqlite3_int64 *aList, int *pnList, int *pnLinked){
  VdbHnswIndex *p = j->p;
  int i, n, rc = SQLITE_OK;
  vdbLinkWorkerMain(&j->aWorker[0]);
  for(i=1; i<j->nStarted; i++) pthread_join(j->aWorker[i].thread, 0);
  for(i=0; i<j->nStarted && rc==SQLITE_OK; i++) rc = j->aWorker[i].rc;
  j->nStarted = 0;
  for(i=n=0; i<j->nNid; i++){
    if( !j->aDone[i] ) aList[n++] = aList[i];
  }
  *pnLinked = j->nNid - n;
  memmove(aList + n, aList + j->nNid, sizeof(sqlite3_int64)*(size_t)(*pnList - j->nNid));
  *pnList -= *pnLinked;
  p->nLinkedByThreads += *pnLinked;
  p->nLinkRounds++;
  return rc;
}

/* Link aList[0..*pnList-1] now: with nThread threads in rounds while the
** cache allows, then one by one, in nid order, on this thread, reading
** what the threads could not reach. What is left (after an error) stays
** at the list's front. */
static int vdbLinkList(VdbHnswIndex *p, int nThread, sqlite3_int64 *aList, int *pnList){
  int nDone = 0, nLinked, nMiss, iRound, k, rc = SQLITE_OK;
  /* The threads never grow the flat nid table: it covers every node now. */
  if( nThread>1 && vdbNidTableCover(p, p->nextNid-1) ){
    VdbLinkJob *j = vdbLinkJobNew(p, nThread);
    if( j==0 ) return SQLITE_NOMEM;
    p->nLinkJobs++;
    for(iRound=0; rc==SQLITE_OK && *pnList>0 && iRound<VDB_LINK_MAX_ROUNDS; iRound++){
      rc = vdbLinkReadMisses(j, aList, *pnList);
      if( rc==SQLITE_OK ) rc = vdbLinkRoundStart(j, aList, *pnList);
      if( rc!=SQLITE_OK ) break;
      rc = vdbLinkRoundFinish(j, aList, pnList, &nLinked);
      for(nMiss=k=0; k<nThread; k++) nMiss += j->aWorker[k].nMiss;
      if( nLinked==0 && nMiss==0 ) break;
    }
    vdbLinkJobFree(j);
  }
  while( rc==SQLITE_OK && nDone<*pnList ){
    VdbHnswNode *pNode;
    rc = vdbAccessGet(p, aList[nDone], &pNode);
    if( rc==SQLITE_OK ) rc = vdbHnswLink(&p->graph, pNode);
    if( rc==SQLITE_OK ) nDone++;
  }
  *pnList -= nDone;
  memmove(aList, aList + nDone, sizeof(sqlite3_int64)*(size_t)*pnList);
  return rc;
}

/* ---- a round in the background ---------------------------------------------------
** On one thread a bulk insert alternates: SQLite writes rows (and this
** module creates and codes their nodes) while the other cores wait, then
** every core links. A 2-thread build of 100,000 x 128 spent 9% of its
** time so, with one core idle. So a batch's first round runs in the
** background (vdbLinkStart): its nThread-1 threads link while this thread
** returns to SQLite for the next batch's rows, and takes its share of the
** round when the next batch is full or anything else needs the graph
** (vdbLinkJoin, at the start of every operation but an insert).
**
** Meanwhile this thread only creates nodes, which no link reaches until
** they are linked themselves, so the threads and it share little: the
** dirty list (its lock, the job's write lock), the nid table and the code
** records, which the threads read and the new nodes' entries are written
** into. Those two never grow during the round: vdbLinkStart covers nids
** up to VDB_LINK_AHEAD beyond the next one, and an insert past that joins
** the round first. Nothing is evicted during the round (an insert over
** the budget joins it before flushing), a ROLLBACK or a close cancels it,
** and its nodes' links are sorted when it is joined (vdbWriteEnd). */
#define VDB_LINK_AHEAD (4*VDB_LINK_BATCH)

/* Join the round in the background, if one runs: with bCancel, take no
** more nodes (a ROLLBACK or close follows). What the threads missed is
** read for the next round; nodes not linked stay waiting. */
static int vdbLinkJoinAs(VdbHnswIndex *p, int bCancel){
  VdbLinkJob *j = p->pJob;
  int nLinked, rc, rc2 = SQLITE_OK;
  if( j==0 ) return SQLITE_OK;
  p->pJob = 0;
  if( bCancel ){
    __atomic_store_n(&j->stop, 1, __ATOMIC_RELEASE);
    p->nLinkCancelled++;
  }
  rc = vdbLinkRoundFinish(j, p->aPending, &p->nPending, &nLinked);
  if( !bCancel ) rc2 = vdbLinkReadMisses(j, 0, 0);
  vdbWriteEndThreads(p, j->nThread);
  vdbLinkJobFree(j);
  return rc!=SQLITE_OK ? rc : rc2;
}
static int vdbLinkJoin(VdbHnswIndex *p){
  return vdbLinkJoinAs(p, 0);
}

/* Link every waiting node now. */
static int vdbLinkPending(VdbHnswIndex *p){
  int nThread, rc;
  if( p->pJob==0 && p->nPending==0 ) return SQLITE_OK;   /* every search passes here */
  rc = vdbLinkJoin(p);
  if( rc!=SQLITE_OK || p->nPending==0 ) return rc;
  nThread = vdbLinkThreadsFor(p, p->nPending);
  vdbWriteBegin(p);
  rc = vdbLinkList(p, nThread, p->aPending, &p->nPending);
  vdbWriteEndThreads(p, nThread);
  return rc;
}

/* A batch is waiting: join the round in the background (if any), then
** start the waiting nodes' first round in the background. Where that
** cannot be (one thread, a node id beyond the nid table's reach, no
** memory for the job), they are linked now instead. */
static int vdbLinkStart(VdbHnswIndex *p){
  sqlite3_int64 cover;
  VdbLinkJob *j = 0;
  int nThread, rc = vdbLinkJoin(p);
  if( rc!=SQLITE_OK ) return rc;
  nThread = vdbLinkThreadsFor(p, p->nPending);
  cover = p->nextNid + VDB_LINK_AHEAD;
  if( nThread>1 && vdbNidTableCover(p, cover-1)
   && (p->nCodeBytes==0 || vdbRecordsCover(&p->codes, cover)==SQLITE_OK) ){
    j = vdbLinkJobNew(p, nThread);
  }
  if( j ) j->aBatch = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64)*(sqlite3_uint64)p->nPending);
  if( j==0 || j->aBatch==0 ){
    vdbLinkJobFree(j);
    return vdbLinkPending(p);
  }
  memcpy(j->aBatch, p->aPending, sizeof(sqlite3_int64)*(size_t)p->nPending);
  vdbWriteBegin(p);
  rc = vdbLinkReadMisses(j, j->aBatch, p->nPending);
  if( rc==SQLITE_OK ) rc = vdbLinkRoundStart(j, j->aBatch, p->nPending);
  if( rc!=SQLITE_OK ){
    vdbWriteEnd(p);
    vdbLinkJobFree(j);
    return rc;
  }
  p->pJob = j;
  p->nJobCover = cover;
  p->nLinkJobs++;
  p->nLinkBackground++;
  /* No thread started: this one links the round now. */
  return j->nStarted>1 ? SQLITE_OK : vdbLinkJoin(p);
}

/* An insert with threads > 1: the node now, its links later. The node is
** dirty from the start, so it is never evicted before it is linked. */
static int vdbDeferLink(VdbHnswIndex *p, sqlite3_int64 nid, const void *pVec){
  VdbHnswNode *pNode;
  int rc = SQLITE_OK;
  /* Beyond what the round in the background covers: join it first. */
  if( p->pJob && nid>=p->nJobCover ) rc = vdbLinkJoin(p);
  if( rc==SQLITE_OK ) rc = vdbIdListAdd(&p->aPending, &p->nPending, &p->nPendingAlloc, nid);
  if( rc==SQLITE_OK ){
    rc = vdbAccessCreate(p, nid, vdbHnswLevel(&p->graph.params, nid), pVec, &pNode);
    if( rc!=SQLITE_OK ) p->nPending--;
  }
  if( rc==SQLITE_OK ){
    /* The threads of a round in the background change the dirty list too. */
    if( p->pJob ) vdbLinkLock(p->pJob);
    vdbMarkDirty(p, (VdbCNode*)pNode);
    if( p->pJob ) pthread_mutex_unlock(&p->pJob->writeLock);
  }
  if( rc==SQLITE_OK && p->nPending - (p->pJob ? p->pJob->nNid : 0)>=VDB_LINK_BATCH ){
    rc = vdbLinkStart(p);
  }
  return rc;
}

/* ---- the process-wide copy ---------------------------------------------------------
** A walk uses the shared copy when the copy is at this connection's
** snapshot (p->logSeq, the last change-log row the transaction sees) and
** the transaction has not changed the graph. Then every node it finds
** there is the node as of its snapshot, and every node it reads from the
** table (at that same snapshot) may be published for the others. */

/* The index's token, from the name of its rowid index (vdb_format.h):
** "vectordb_" TOKEN "_hnswNN_rowid". */
static int vdbSharedToken(VdbHnswIndex *p, char *zToken){
  VdbStore *s = p->pStore;
  sqlite3_stmt *pStmt = 0;
  const int nPrefix = 9;            /* "vectordb_" */
  int rc, found = 0;
  char zTail[32];
  sqlite3_snprintf(sizeof(zTail), zTail, "_%s_rowid", p->zSuffix);
  rc = vdbStorePrepare(s, sqlite3_mprintf("SELECT name FROM \"%w\".sqlite_master WHERE type='index'"
                                          " AND tbl_name='%q_%q'", s->zDb, s->zName, p->zSuffix), &pStmt);
  while( rc==SQLITE_OK && !found && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zName = (const char*)sqlite3_column_text(pStmt, 0);
    if( zName && strlen(zName)==(size_t)nPrefix+VDB_INDEX_TOKEN_CHARS+strlen(zTail)
     && strncmp(zName, "vectordb_", nPrefix)==0
     && strcmp(zName+nPrefix+VDB_INDEX_TOKEN_CHARS, zTail)==0 ){
      memcpy(zToken, zName+nPrefix, VDB_INDEX_TOKEN_CHARS);
      zToken[VDB_INDEX_TOKEN_CHARS] = 0;
      found = 1;
    }
  }
  rc = vdbFinalize(pStmt, rc);
  return rc==SQLITE_OK && !found ? SQLITE_NOTFOUND : rc;
}

/* Find or create the shared copy, once per open index. An index that
** cannot be identified (an in-memory or temporary database, whose file
** name is empty) walks its private cache only. */
static int vdbSharedAttach(VdbHnswIndex *p){
  VdbStore *s = p->pStore;
  const char *zFile = sqlite3_db_filename(s->db, s->zDb);
  char zToken[VDB_INDEX_TOKEN_CHARS+1];
  int rc;
  p->sharedLooked = 1;
  if( zFile==0 || zFile[0]==0 ) return SQLITE_OK;
  rc = vdbSharedToken(p, zToken);
  if( rc==SQLITE_NOTFOUND ) return SQLITE_OK;
  if( rc==SQLITE_OK ){
    rc = vdbSharedAcquire(zFile, zToken, p->nVecBytes, p->nCodeBytes, s->pDef->chunkSize,
                          p->graph.params.m, &p->pShared);
  }
  return rc;
}

/* Bring the copy from its version to this connection's snapshot with the
** change-log rows in between (write lock held): drop the nodes they name,
** read again the vectors of the slots they name. When the log cannot say
** (a gap, a "reload everything" row, a failed read), the copy empties. */
static int vdbSharedApplyLog(VdbHnswIndex *p, int *pFull){
  VdbHnswShared *s = p->pShared;
  sqlite3_int64 expect = s->version+1;
  int rc;
  *pFull = 0;
  rc = vdbPrepareLog(p, &p->pLogAfter, "SELECT seq, changes FROM \"%w\".\"%w_%s\" WHERE seq>?1 ORDER BY seq");
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(p->pLogAfter, 1, s->version);
  while( !*pFull && expect<=p->logSeq && sqlite3_step(p->pLogAfter)==SQLITE_ROW ){
    const unsigned char *a = (const unsigned char*)sqlite3_column_blob(p->pLogAfter, 1);
    int i, n = sqlite3_column_bytes(p->pLogAfter, 1);
    if( sqlite3_column_int64(p->pLogAfter, 0)!=expect++
     || sqlite3_column_type(p->pLogAfter, 1)!=SQLITE_BLOB || n%VDB_LOG_ENTRY ){
      *pFull = 1;
      break;
    }
    for(i=0; i<n && !*pFull; i+=VDB_LOG_ENTRY){
      VdbSlot slot;
      unsigned char *aChunk;
      slot.chunkId = vdbGetLe64(a+i+8);
      slot.offset = (int)vdbGetLe64(a+i+16);
      if( vdbGetLe64(a+i)==0 ) continue;       /* the row's random entry */
      vdbSharedDropNode(s, vdbGetLe64(a+i));
      aChunk = slot.chunkId ? vdbSharedChunkAt(s, slot.chunkId) : 0;
      if( aChunk && (slot.offset<0 || slot.offset>=s->chunkSize) ){
        *pFull = 1;
      }else if( aChunk ){
        if( vdbStoreReadVector(p->pStore, p->base.iVec, &slot,
                               vdbChunkVector(p, aChunk, slot.offset))!=SQLITE_OK ){
          *pFull = 1;
        }
      }
      s->nRefreshedNodes++;
    }
  }
  rc = sqlite3_reset(p->pLogAfter);
  if( expect<=p->logSeq ) *pFull = 1;   /* rows missing before the snapshot's last */
  if( !*pFull ) s->nRefreshes++;
  return rc;
}

/* Make the copy reflect this connection's snapshot (write lock held). */
static int vdbSharedAdvance(VdbHnswIndex *p){
  VdbHnswShared *s = p->pShared;
  sqlite3_uint64 print = 0;
  int full = s->version<0, rc = SQLITE_OK;
  s->budgetBytes = p->budgetBytes;
  /* The row the copy reflects must still be what it was (vdbLogPrint). */
  if( !full ) rc = vdbLogRowPrint(p, s->version, &print);
  if( rc==SQLITE_OK && !full && print!=s->versionPrint ) full = 1;
  if( rc==SQLITE_OK && !full ) rc = vdbSharedApplyLog(p, &full);
  if( rc==SQLITE_OK && full && s->version>=0 ){
    s->nFullReloads++;
    sqlite3_log(SQLITE_NOTICE, "vectordb: table %s, column %s: the change log cannot describe "
                "a commit; the process's shared graph cache is reloaded", p->pStore->zName,
                p->base.pCol->zName);
  }
  if( rc!=SQLITE_OK || full ) vdbSharedClear(s);
  if( rc==SQLITE_OK ) rc = vdbSharedCover(s, p->nextNid);
  if( rc==SQLITE_OK ) rc = vdbLogRowPrint(p, p->logSeq, &s->versionPrint);
  if( rc==SQLITE_OK ){
    s->version = p->logSeq;
  }else{
    vdbSharedClear(s);
  }
  return rc;
}

/* The shared copy this connection may use now, attaching on first use;
** NULL when it has none or its transaction changed the graph. */
static VdbHnswShared *vdbSharedUsable(VdbHnswIndex *p, int *pRc){
  *pRc = SQLITE_OK;
  if( !p->hasLog || p->txnDirty || p->pDirty || p->nextNid>VDB_NID_TABLE_MAX ) return 0;
  if( !p->sharedLooked ) *pRc = vdbSharedAttach(p);
  return *pRc==SQLITE_OK ? p->pShared : 0;
}

/* Is the copy older than this connection's snapshot? The same seq in
** another history (a restore, then as many commits) is older too. Either
** lock held. */
static int vdbSharedIsBehind(const VdbHnswShared *s, const VdbHnswIndex *p){
  return s->version<p->logSeq || (s->version==p->logSeq && s->versionPrint!=p->logPrint);
}

/* Bring the copy to this connection's snapshot if it is still behind once
** the write lock is held (another connection may have done it). */
static int vdbSharedBringForward(VdbHnswIndex *p){
  VdbHnswShared *s = p->pShared;
  int rc = SQLITE_OK;
  vdbSharedWriteLock(s);
  if( vdbSharedIsBehind(s, p) ) rc = vdbSharedAdvance(p);
  vdbSharedWriteUnlock(s);
  return rc;
}

/* Start a walk on the shared copy: returns 1 holding its read lock with
** the copy at this connection's snapshot, or 0 holding nothing (the
** private cache answers; *pRc says if something failed). */
static int vdbSharedBegin(VdbHnswIndex *p, int *pRc){
  VdbHnswShared *s = vdbSharedUsable(p, pRc);
  int attempt, isBehind;
  for(attempt=0; s && attempt<2 && *pRc==SQLITE_OK; attempt++){
    vdbSharedReadLock(s);
    if( s->version==p->logSeq && s->versionPrint==p->logPrint ) return 1;
    isBehind = vdbSharedIsBehind(s, p);
    vdbSharedReadUnlock(s);
    /* Otherwise a snapshot older than the copy (a long read transaction):
    ** the copy may hold nodes it must not see. */
    if( !isBehind ) return 0;
    *pRc = vdbSharedBringForward(p);
  }
  return 0;
}

/* At the start of a statement that has changed nothing yet: bring the
** shared copy to this connection's snapshot now, so that a write
** transaction about to begin finds it there and can copy nodes from it
** (vdbCopyFromShared), even in a process whose queries are rare. A
** failure here only costs speed: the copy is left empty, and a walk that
** needs it tries again and reports what fails. */
static void vdbSharedCatchUp(VdbHnswIndex *p){
  int rc, isBehind;
  VdbHnswShared *s = vdbSharedUsable(p, &rc);
  if( s==0 ) return;
  vdbSharedReadLock(s);
  isBehind = vdbSharedIsBehind(s, p);
  vdbSharedReadUnlock(s);
  if( isBehind ) vdbSharedBringForward(p);
}

/* End a walk on the shared copy: hand over the counts, release the read
** lock, and evict if the walks overfilled the copy. */
static void vdbSharedEnd(VdbHnswIndex *p){
  VdbHnswShared *s = p->pShared;
  /* Only a walk that published can have overfilled the copy: a warm walk
  ** skips the check and its mutex. */
  int isOver = p->nSharedMisses>0 && vdbSharedOverBudget(s);
  __atomic_add_fetch(&s->nHits, p->nSharedHits, __ATOMIC_RELAXED);
  __atomic_add_fetch(&s->nMisses, p->nSharedMisses, __ATOMIC_RELAXED);
  p->nSharedHits = p->nSharedMisses = 0;
  vdbSharedReadUnlock(s);
  if( isOver ){
    vdbSharedWriteLock(s);
    vdbSharedEvict(s, vdbChunkBytes(p));
    vdbSharedWriteUnlock(s);
  }
}

/* A copy of node c (read by vdbReadNode, no code, no distances) whose
** link arrays hold its links and no free room: the shared copy never
** changes a published node's links, and at 1M nodes the room left for
** links to come (half of layer 0's 3M on average) was 180 MB. Frees c;
** NULL when memory ran out. */
static VdbCNode *vdbCompactCNode(VdbCNode *c){
  size_t nLinks = 0, nByte;
  VdbCNode *pNew;
  sqlite3_int64 *pLink;
  int l;
  for(l=0; l<=c->node.level; l++) nLinks += (size_t)c->node.anLink[l];
  nByte = sizeof(VdbCNode) + nLinks*sizeof(sqlite3_int64);
  pNew = (VdbCNode*)sqlite3_malloc64(nByte);
  if( pNew ){
    memcpy(pNew, c, sizeof(VdbCNode));
    pNew->nByte = nByte;
    pLink = (sqlite3_int64*)(pNew+1);
    for(l=0; l<=c->node.level; l++){
      memcpy(pLink, c->node.aaLink[l], sizeof(sqlite3_int64)*(size_t)c->node.anLink[l]);
      pNew->node.aaLink[l] = pLink;
      pLink += c->node.anLink[l];
    }
  }
  sqlite3_free(c);
  return pNew;
}

/* The shared copy's buffer of a chunk: found, or read at this snapshot
** and adopted (a walk that lost the race gets the winner's). */
static int vdbSharedChunk(VdbHnswIndex *p, sqlite3_int64 chunkId, unsigned char **paChunk){
  VdbHnswShared *s = p->pShared;
  unsigned char *aRead = 0;
  int rc;
  if( (*paChunk = vdbSharedChunkFind(s, chunkId))!=0 ) return SQLITE_OK;
  rc = vdbChunkRead(p, chunkId, &aRead);
  if( rc!=SQLITE_OK ) return rc;
  *paChunk = vdbSharedChunkAdopt(s, chunkId, aRead, vdbChunkBytes(p));
  return *paChunk ? SQLITE_OK : SQLITE_NOMEM;
}

/* One vector into the connection's scratch buffer, for coding a node the
** shared copy keeps without its vector, or copying a result's: the rest
** of its chunk would not be kept, so it is not read. The read moves the
** operation's blob handle to the chunk and reads at the row's offset,
** which walks the chunk's overflow pages up to there: a few at 16 KiB, and
** at most all of them (what a whole-chunk read costs) in older tables'
** larger chunks. A new process's first query on 1M x 128 took 50 ms
** instead of 61 (bench/coldstart.py, seven rounds). */
static int vdbVectorScratchRead(VdbHnswIndex *p, sqlite3_int64 chunkId, int offset, const void **ppVec){
  int rc;
  if( p->aVecScratch==0 ){
    p->aVecScratch = (unsigned char*)sqlite3_malloc64((sqlite3_uint64)p->nVecBytes);
    if( p->aVecScratch==0 ) return SQLITE_NOMEM;
  }
  rc = vdbStoreReadRows(p->pStore, p->base.iVec, chunkId, offset, 1, p->aVecScratch, &p->pChunkBlob);
  *ppVec = p->aVecScratch;
  return rc;
}

/* A miss: read node nid at this snapshot and publish it. Two walks may
** read the same node; the first to publish wins and the other's copy is
** freed. A node of layer 0 is published as its walk record alone (row,
** slot, links, code) unless the caller needs its VdbCNode (keepNode: the
** algorithm's xGet). A walk over codes needs a node's vector only to code
** it, and again if the node becomes a result: the node is published
** without its vector (coded from a scratch read of that vector, or not read
** at all when its record kept the code), and vdbSharedAccessResult copies
** the vector of the few that become results. A cold query meets about as
** many chunks as nodes, so keeping each chunk it read (16 KiB) was most
** of its new memory. Without codes every node measured needs its vector,
** and its chunk is kept. */
static int vdbSharedLoad(VdbHnswIndex *p, sqlite3_int64 nid, int keepNode, VdbCNode **ppNode){
  VdbHnswShared *s = p->pShared;
  VdbCNode *c = 0;
  unsigned char *aVec = 0;
  const void *pCode = 0, *pCoded = 0;
  int needCode = p->nCodeBytes && vdbSharedCode(s, nid)==0;
  int rc = vdbReadNode(p, nid, 0, &c);
  if( rc==SQLITE_NOTFOUND ) rc = vdbGraphCorrupt(p, "a link leads to node %lld, which has no row", nid);
  /* A VdbCNode that will be kept holds its links and no free room. */
  if( rc==SQLITE_OK && (keepNode || c->node.level>0) && (c = vdbCompactCNode(c))==0 ) rc = SQLITE_NOMEM;
  if( rc!=SQLITE_OK ) return rc;
  if( p->nCodeBytes==0 ){
    rc = vdbSharedChunk(p, c->slot.chunkId, &aVec);
    if( aVec ){
      c->node.pVec = vdbChunkVector(p, aVec, c->slot.offset);
      c->node.aux = vdbHnswAux(&p->graph.space, c->node.pVec);
    }
  }else if( needCode ){
    rc = vdbVectorScratchRead(p, c->slot.chunkId, c->slot.offset, &pCoded);
  }
  /* Coded before publishing (nothing published changes), into scratch:
  ** the copy's records are written under its publish lock. */
  if( rc==SQLITE_OK && needCode ){
    if( vdbCodeScratch(p)==0 ){
      rc = SQLITE_NOMEM;
    }else{
      p->graph.space.xEncode(&p->graph.space, pCoded, p->pCodeScratch);
      pCode = p->pCodeScratch;
    }
  }
  if( rc!=SQLITE_OK ){
    vdbFreeCNode(p, c);
    return rc;
  }
  rc = vdbSharedPublish(s, c, pCode, keepNode, ppNode);
  if( rc==SQLITE_OK ) p->nSharedMisses++;
  return rc;
}

/* Node nid's record, published if it was not (as its record alone). */
static int vdbSharedRecordOf(VdbHnswIndex *p, sqlite3_int64 nid, const VdbRecordHead **ppRec){
  VdbCNode *c;
  int rc = SQLITE_OK;
  if( nid<1 || nid>=p->pShared->nCovered ){
    return vdbGraphCorrupt(p, "a link leads to node %lld, which has no row", nid);
  }
  if( (*ppRec = vdbSharedRecord(p->pShared, nid))==0 ){
    rc = vdbSharedLoad(p, nid, 0, &c);
    if( rc==SQLITE_OK && (*ppRec = vdbSharedRecord(p->pShared, nid))==0 ) rc = SQLITE_NOMEM;
  }
  return rc;
}

static int vdbSharedAccessGet(void *pCtx, sqlite3_int64 nid, VdbHnswNode **ppNode){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  const VdbRecordHead *h;
  VdbCNode *c;
  /* The copy's records cover every node id of the version. */
  if( nid<1 || nid>=p->pShared->nCovered ){
    return vdbGraphCorrupt(p, "a link leads to node %lld, which has no row", nid);
  }
  h = (const VdbRecordHead*)vdbRecordsAddress(&p->pShared->recs, nid);
  c = h ? (VdbCNode*)__atomic_load_n(&h->pNode, __ATOMIC_ACQUIRE) : 0;
  if( c ){
    p->nSharedHits++;
    vdbRecordsTouch(h);
  }else{
    int rc = vdbSharedLoad(p, nid, 1, &c);
    if( rc!=SQLITE_OK ) return rc;
  }
  *ppNode = &c->node;
  return SQLITE_OK;
}

/* A result's vector: with codes, a copy the shared copy keeps of it (its
** chunk read into scratch); without, in its chunk, which the copy holds
** already for every node it published. */
static int vdbSharedAccessResult(void *pCtx, sqlite3_int64 nid, const void **ppVec, float *pAux){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  VdbHnswShared *s = p->pShared;
  const VdbRecordHead *h;
  unsigned char *aChunk;
  const void *pVec = 0;
  VdbSlot slot;
  float aux;
  int rc = vdbSharedRecordOf(p, nid, &h);
  if( rc!=SQLITE_OK ) return rc;
  vdbRecordsTouch(h);
  if( (*ppVec = vdbRecordsHeadVector(&s->recs, h, pAux))!=0 ) return SQLITE_OK;
  slot = vdbRecordsSlot(h);
  if( p->nCodeBytes ){
    rc = vdbVectorScratchRead(p, slot.chunkId, slot.offset, &pVec);
  }else{
    rc = vdbSharedChunk(p, slot.chunkId, &aChunk);
    if( rc==SQLITE_OK ) pVec = vdbChunkVector(p, aChunk, slot.offset);
  }
  if( rc!=SQLITE_OK ) return rc;
  aux = vdbHnswAux(&p->graph.space, pVec);
  rc = vdbSharedAttachVector(s, nid, pVec, &aux, ppVec);
  *pAux = aux;
  p->nSharedMisses++;                  /* it grew the copy: check the budget */
  return rc;
}

static int vdbSharedAccessVector(void *pCtx, sqlite3_int64 nid, const void **ppVec, float *pAux){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  const void *pVec = vdbSharedVector(p->pShared, nid, pAux);
  if( pVec ){
    p->nSharedHits++;
    *ppVec = pVec;
    return SQLITE_OK;
  }
  return vdbSharedAccessResult(pCtx, nid, ppVec, pAux);
}

static int vdbSharedAccessCode(void *pCtx, sqlite3_int64 nid, const void **ppCode){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  const VdbRecordHead *h;
  const void *pCode = vdbSharedCode(p->pShared, nid);
  int rc;
  if( pCode ){
    p->nSharedHits++;
    *ppCode = pCode;
    return SQLITE_OK;
  }
  rc = vdbSharedRecordOf(p, nid, &h);
  if( rc==SQLITE_OK && (*ppCode = vdbSharedCode(p->pShared, nid))==0 ) rc = SQLITE_NOMEM;
  return rc;
}

static int vdbSharedAccessCodes(void *pCtx, const sqlite3_int64 *aNid, int n, const void **apCode){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<n; i++){
    if( (apCode[i] = vdbSharedCode(p->pShared, aNid[i]))!=0 ) p->nSharedHits++;
    else rc = vdbSharedAccessCode(pCtx, aNid[i], &apCode[i]);
  }
  return rc;
}

/* The walk's fast path on layer 0: the links in node nid's record. */
static int vdbSharedAccessLinks(void *pCtx, sqlite3_int64 nid, const unsigned int **paLink, int *pnLink){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  const VdbRecordHead *h;
  *paLink = vdbRecordsLinks(&p->pShared->recs, nid, pnLink);
  if( *paLink ){
    p->nSharedHits++;
    return 1;
  }
  /* Not published (a commit dropped it, or only its code was kept): as
  ** its record alone, so that a node of layer 0 does not come back as a
  ** VdbCNode. A failure, or links that did not fit the record, and the
  ** walk asks xGet, which reports the error or has the node. */
  if( vdbSharedRecordOf(p, nid, &h)!=SQLITE_OK ) return 0;
  *paLink = vdbRecordsLinks(&p->pShared->recs, nid, pnLink);
  return *paLink!=0;
}

/* The lines of node nid's record an expansion reads (mark and links). */
static void vdbSharedAccessPrefetch(void *pCtx, sqlite3_int64 nid){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  const VdbRecords *a = &p->pShared->recs;
  const char *z = (const char*)vdbRecordsAddress(a, nid);
  int i;
  if( z==0 ) return;
  __builtin_prefetch(z);
  for(i=a->iLinks & ~63; i<a->nStride; i+=64) __builtin_prefetch(z+i);
}

/* The first lines of node nid's record: its mark and the code's start,
** up to VDB_PREFETCH_CODE_BYTES. The walk asks for these for every fresh
** neighbour of an expansion as it finds it, then checks each mark, then
** measures the codes asking for each one's lines a few codes ahead
** (xCodeWalkMany). With only the first line asked for here, each code's
** other lines were asked for one memory latency later, when the walk
** reached it. Asking for the first four lines at once, against the first
** line alone (bench/ab.py, 2,000 queries, alternating rounds): cosine 200k
** x 384 1.12x as fast at ef_search 20 and 1.06x at 64 (6 rounds); 1M x
** 128 1.09x at 32 and 1.02x at 64 (4 rounds; its code's three lines are
** all of it); Fashion-MNIST 0.97x at 8 and 1.08x at 16 (8 rounds, each
** round's ratio anywhere from 0.81x to 1.22x: no difference this host can
** resolve; two lines measured 1.01x and 1.00x). 512 bytes measured alike
** on cosine and 0.98x on Fashion-MNIST at 32, whose fourteen lines for
** each of twenty neighbours fill the CPU's miss buffers. */
static void vdbSharedAccessPrefetchCode(void *pCtx, sqlite3_int64 nid){
  VdbHnswIndex *p = (VdbHnswIndex*)pCtx;
  const VdbRecords *a = &p->pShared->recs;
  const char *z = (const char*)vdbRecordsAddress(a, nid);
  if( z ) vdbPrefetchLines(z, a->iLinks<VDB_PREFETCH_CODE_BYTES ? a->iLinks : VDB_PREFETCH_CODE_BYTES);
}

/* A private-cache miss inside a transaction that changed the graph: copy
** the node's links from the shared copy if that holds it at the snapshot
** the transaction began from (see txnBaseSeq), instead of reading its row.
** Its vector is attached from the private chunk cache as usual: pointing
** into the shared copy would outlive the read lock. SQLITE_NOTFOUND: read
** it from the table instead. */
static int vdbCopyFromShared(VdbHnswIndex *p, sqlite3_int64 nid, VdbCNode **ppNode){
  VdbHnswShared *s = p->pShared;
  VdbCNode *c = 0, *src;
  const VdbRecordHead *h;
  const unsigned int *aLink32;
  int rc = SQLITE_NOTFOUND, l, i, nLink = 0;
  if( s==0 || !p->txnDirty || p->txnNoCopy ) return SQLITE_NOTFOUND;
  vdbSharedReadLock(s);
  if( s->version==p->txnBaseSeq && s->versionPrint==p->txnBasePrint
   && (h = vdbSharedRecord(s, nid))!=0 ){
    src = (VdbCNode*)h->pNode;
    /* A node of layer 0 alone: its links are its record's. */
    aLink32 = src ? 0 : vdbRecordsLinks(&s->recs, nid, &nLink);
    if( src || aLink32 ){
      c = vdbNewCNode(p, nid, src ? src->node.level : 0, 1);
      if( c==0 ) rc = SQLITE_NOMEM;
    }
    if( c && src ){
      for(l=0; l<=src->node.level; l++){
        c->node.anLink[l] = src->node.anLink[l];
        memcpy(c->node.aaLink[l], src->node.aaLink[l], sizeof(sqlite3_int64)*(size_t)src->node.anLink[l]);
      }
    }else if( c ){
      for(i=0; i<nLink; i++) c->node.aaLink[0][i] = (sqlite3_int64)aLink32[i];
      c->node.anLink[0] = nLink;
    }
    if( c ){
      const void *pCode = vdbSharedCode(s, nid);
      c->rowid = h->rowid;
      c->slot = vdbRecordsSlot(h);
      rc = pCode ? vdbCodeStore(p, c, pCode) : SQLITE_OK;
    }
  }
  vdbSharedReadUnlock(s);
  if( rc==SQLITE_OK ) rc = vdbHashInsert(p, c);
  if( rc!=SQLITE_OK ){
    vdbFreeCNode(p, c);
    return rc;
  }
  p->nHits++;
  *ppNode = c;
  return SQLITE_OK;
}

/* ---- the declaration -------------------------------------------------------------------- */

static int vdbHnswValidate(const VdbColumnDef *pCol, char **pzErr){
  VdbHnswSpace space;
  if( pCol->eElem!=VDB_ELEM_F32 ){
    *pzErr = sqlite3_mprintf("an hnsw index needs a float[N] column");
  }else if( vdbHnswSpaceInit(&space, pCol->eElem, pCol->eMetric, pCol->nDim, 0) ){
    *pzErr = sqlite3_mprintf("an hnsw index supports distance_metric l2, cosine or dot");
  }else if( pCol->index.aParam[VDB_HNSW_P_EFC] < pCol->index.aParam[VDB_HNSW_P_M] ){
    *pzErr = sqlite3_mprintf("hnsw ef_construction (%d) must be at least m (%d)",
                             pCol->index.aParam[VDB_HNSW_P_EFC], pCol->index.aParam[VDB_HNSW_P_M]);
  }else{
    return SQLITE_OK;
  }
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* What the stored graph depends on: m fixes the links BLOB's size,
** ef_construction and the metric the links chosen. */
static void vdbHnswSignature(const VdbColumnDef *pCol, sqlite3_str *s){
  sqlite3_str_appendf(s, ":hnsw(%d,%d,%s)", pCol->index.aParam[VDB_HNSW_P_M],
                      pCol->index.aParam[VDB_HNSW_P_EFC], vdbMetricName(pCol->eMetric));
}

/* zPrefix then a column number 00 .. 15. */
static int vdbIsNumbered(const char *zSuffix, const char *zPrefix){
  const int n = (int)strlen(zPrefix);
  if( sqlite3_strnicmp(zSuffix, zPrefix, n)==0 && strlen(zSuffix)==(size_t)n+2
   && zSuffix[n]>='0' && zSuffix[n]<='9' && zSuffix[n+1]>='0' && zSuffix[n+1]<='9' ){
    return (zSuffix[n]-'0')*10 + (zSuffix[n+1]-'0') < VDB_MAX_VECTOR_COLUMNS;
  }
  return 0;
}

/* hnswNN and hnswlogNN */
static int vdbHnswShadowName(const char *zSuffix){
  return vdbIsNumbered(zSuffix, "hnsw") || vdbIsNumbered(zSuffix, "hnswlog");
}

/* ---- the shadow table ------------------------------------------------------------------- */

static int vdbHnswCreate(VdbStore *pStore, int iVec){
  char zToken[VDB_INDEX_TOKEN_CHARS+1];
  int rc;
  vdbStoreRandomToken(zToken);
  rc = vdbStoreExec(pStore, sqlite3_mprintf(
      "CREATE TABLE \"%w\".\"%w_hnsw%02d\"(nid INTEGER PRIMARY KEY, rowid INTEGER NOT NULL,"
      " chunk_id INTEGER NOT NULL, chunk_offset INTEGER NOT NULL, level INTEGER NOT NULL,"
      " links BLOB NOT NULL);"
      "CREATE UNIQUE INDEX \"%w\".\"vectordb_%s_hnsw%02d_rowid\" ON \"%w_hnsw%02d\"(rowid);"
      "CREATE INDEX \"%w\".\"vectordb_%s_hnsw%02d_level\" ON \"%w_hnsw%02d\"(level)%s;",
      pStore->zDb, pStore->zName, iVec,
      pStore->zDb, zToken, iVec, pStore->zName, iVec,
      pStore->zDb, zToken, iVec, pStore->zName, iVec,
      pStore->formatVersion>=3 ? " WHERE level>0" : ""));
  if( rc==SQLITE_OK && pStore->formatVersion>=2 ){
    rc = vdbStoreExec(pStore, sqlite3_mprintf(
        "CREATE TABLE \"%w\".\"%w_hnswlog%02d\"(seq INTEGER PRIMARY KEY, changes BLOB)",
        pStore->zDb, pStore->zName, iVec));
  }
  return rc;
}

static int vdbHnswDrop(VdbStore *pStore, int iVec){
  int rc = vdbStoreExec(pStore, sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_hnsw%02d\"",
                                                pStore->zDb, pStore->zName, iVec));
  if( rc==SQLITE_OK ){
    rc = vdbStoreExec(pStore, sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_hnswlog%02d\"",
                                              pStore->zDb, pStore->zName, iVec));
  }
  return rc;
}

static int vdbHnswRename(VdbStore *pStore, int iVec, const char *zNew){
  int rc = vdbStoreExec(pStore, sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_hnsw%02d\" RENAME TO \"%w_hnsw%02d\"",
                                                pStore->zDb, pStore->zName, iVec, zNew, iVec));
  if( rc==SQLITE_OK && pStore->formatVersion>=2 ){
    rc = vdbStoreExec(pStore, sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_hnswlog%02d\" RENAME TO \"%w_hnswlog%02d\"",
                                              pStore->zDb, pStore->zName, iVec, zNew, iVec));
  }
  return rc;
}

/* ---- open, close, settings ------------------------------------------------------------- */

static int vdbHnswOpen(VdbStore *pStore, int iVec, const VdbKernels *pK, VdbIndex **ppOut){
  VdbHnswIndex *p = (VdbHnswIndex*)sqlite3_malloc(sizeof(*p));
  const VdbColumnDef *pCol = &pStore->pDef->aCol[pStore->aVecCol[iVec]];
  VdbHnswParams params;
  VdbHnswSpace space;
  VdbHnswAccess access;
  int rc;
  *ppOut = 0;
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->base.pKind = &vdbIndexHnsw;
  p->base.pStore = pStore;
  p->base.iVec = iVec;
  p->base.pCol = pCol;
  p->pStore = pStore;
  p->nVecBytes = pStore->aVecBytes[iVec];
  p->efSearch = pCol->index.aParam[VDB_HNSW_P_EF];
  p->budgetBytes = (sqlite3_int64)pCol->index.aParam[VDB_HNSW_P_CACHE_MB] << 20;
  p->nThreads = pCol->index.aParam[VDB_HNSW_P_THREADS];
  p->chunkEpoch = 1;
  sqlite3_snprintf(sizeof(p->zSuffix), p->zSuffix, "hnsw%02d", iVec);
  sqlite3_snprintf(sizeof(p->zLog), p->zLog, "hnswlog%02d", iVec);
  p->hasLog = pStore->formatVersion>=2;
  p->varintLinks = pStore->formatVersion>=3;
  memset(&params, 0, sizeof(params));
  params.m = pCol->index.aParam[VDB_HNSW_P_M];
  params.efConstruction = pCol->index.aParam[VDB_HNSW_P_EFC];
  params.seed = VDB_HNSW_SEED + (sqlite3_uint64)iVec;
  memset(&access, 0, sizeof(access));
  access.pCtx = p;
  access.xGet = vdbAccessGet;
  access.xCreate = vdbAccessCreate;
  access.xDirty = vdbAccessDirty;
  access.xRemove = vdbAccessRemove;
  access.xTopNode = vdbAccessTopNode;
  access.xVector = vdbAccessVector;
  access.xCode = vdbAccessCode;
  access.xCodes = vdbAccessCodes;
  access.xPrefetch = vdbAccessPrefetch;
  access.xPrefetchCode = vdbAccessPrefetchCode;
  access.xPrefetchCandidate = vdbAccessPrefetchEntry;
  p->privateAccess = access;
  p->sharedAccess = access;
  p->sharedAccess.xGet = vdbSharedAccessGet;
  p->sharedAccess.xVector = vdbSharedAccessVector;
  p->sharedAccess.xCode = vdbSharedAccessCode;
  p->sharedAccess.xCodes = vdbSharedAccessCodes;
  p->sharedAccess.xPrefetch = vdbSharedAccessPrefetch;
  p->sharedAccess.xLinks0 = vdbSharedAccessLinks;
  p->sharedAccess.xPrefetchCode = vdbSharedAccessPrefetchCode;
  p->sharedAccess.xPrefetchCandidate = 0;   /* records are found by address */
  p->sharedAccess.xResultVector = vdbSharedAccessResult;
  rc = vdbHnswSpaceInit(&space, pCol->eElem, pCol->eMetric, pCol->nDim, pK);
  if( rc==SQLITE_OK ) rc = vdbQuantInit(&space, (VdbQuantizer)pCol->index.aParam[VDB_HNSW_P_QUANT]);
  if( rc==SQLITE_OK ) rc = vdbHnswInit(&p->graph, &params, &space, &access);
  p->nCodeBytes = space.nCodeBytes;
  vdbRecordsInit(&p->codes, p->nCodeBytes, 0, 0, 0);
  if( rc!=SQLITE_OK ){
    /* The declaration was validated when it was parsed: only a build
    ** whose limits differ from the one that created the table gets here. */
    rc = vdbStoreError(pStore, SQLITE_ERROR, "vectordb: column %s: this build cannot open its "
                       "hnsw index (m=%d)", pCol->zName, params.m);
    sqlite3_free(p);
    return rc;
  }
  *ppOut = &p->base;
  return SQLITE_OK;
}

static void vdbHnswClose(VdbIndex *pIdx){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  if( p==0 ) return;
  vdbDiscardNow(p);
  sqlite3_blob_close(p->pChunkBlob);
  vdbSharedRelease(p->pShared);
  vdbHnswFree(&p->graph);
  sqlite3_free(p->aHash);
  sqlite3_free(p->chunks.a);
  sqlite3_free(p->aByNid);
  vdbRecordsFree(&p->codes);
  vdbPoolFree(&p->pool);                /* after vdbDiscardNow freed every node */
  sqlite3_free(p->pCodeScratch);
  sqlite3_free(p->aVecScratch);
  sqlite3_finalize(p->pLoad);
  sqlite3_finalize(p->pSave);
  sqlite3_finalize(p->pErase);
  sqlite3_finalize(p->pByRowid);
  sqlite3_finalize(p->pTop);
  sqlite3_finalize(p->pTopAny);
  sqlite3_finalize(p->pMoveRowid);
  sqlite3_finalize(p->pLogMax);
  sqlite3_finalize(p->pLogAfter);
  sqlite3_finalize(p->pLogAdd);
  sqlite3_finalize(p->pLogPrune);
  sqlite3_finalize(p->pLogRow);
  sqlite3_free(p->aMoved);
  sqlite3_free(p->aTouched);
  sqlite3_free(p->aPending);
  sqlite3_free(p);
}

static int vdbHnswConfigure(VdbIndex *pIdx, const char *zParam, int v){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  int rc = vdbLeave(p, vdbEnterJoined(p));   /* a new budget may evict */
  if( rc!=SQLITE_OK ) return rc;
  if( sqlite3_stricmp(zParam, vdbHnswParams[VDB_HNSW_P_EF].zName)==0 ){
    p->efSearch = v;
  }else if( sqlite3_stricmp(zParam, vdbHnswParams[VDB_HNSW_P_CACHE_MB].zName)==0 ){
    sqlite3_int64 nOld = p->budgetBytes;
    p->budgetBytes = (sqlite3_int64)v << 20;
    vdbEvictClean(p);
    if( p->pShared && p->budgetBytes!=nOld ){
      /* A stored setting: every connection of the process reads the same. */
      vdbSharedWriteLock(p->pShared);
      p->pShared->budgetBytes = p->budgetBytes;
      vdbSharedEvict(p->pShared, vdbChunkBytes(p));
      vdbSharedWriteUnlock(p->pShared);
    }
  }else if( sqlite3_stricmp(zParam, vdbHnswParams[VDB_HNSW_P_THREADS].zName)==0 ){
    p->nThreads = v;
  }else{
    return SQLITE_NOTFOUND;
  }
  return SQLITE_OK;
}

static int vdbHnswSync(VdbIndex *pIdx, int bOtherCommit){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  /* Called as each statement starts: a round in the background goes on
  ** through the statements of a bulk insert. (Another connection cannot
  ** commit while this one has inserts waiting; were it to, the round
  ** ends before anything is refreshed.) */
  int rc = SQLITE_OK;
  if( bOtherCommit ){
    rc = vdbLeave(p, vdbEnterJoined(p));
    if( rc!=SQLITE_OK ) return rc;
  }
  /* Another connection committed: what is cached may be stale. Our own
  ** pending changes cannot coexist with that (we would hold the write
  ** lock), so nothing dirty is lost. Nothing loaded: nothing to refresh. */
  if( bOtherCommit && p->pDirty==0 && p->infoLoaded && p->nNode==0 && p->chunks.n==0 ){
    /* Nothing cached privately (a connection that walks the shared copy):
    ** only the entry point and the snapshot's log seq need reading. */
    p->infoLoaded = 0;
  }else if( bOtherCommit && p->pDirty==0 && p->infoLoaded ){
    int full = !p->hasLog;
    if( !full ) rc = vdbLogApply(p, &full);
    if( rc==SQLITE_OK && full ){
      p->nFullReloads++;
      sqlite3_log(SQLITE_NOTICE, "vectordb: table %s, column %s: the change log cannot describe "
                  "another connection's commit; its graph cache is reloaded", p->pStore->zName,
                  p->base.pCol->zName);
      vdbHnswDiscard(pIdx);
    }else if( rc==SQLITE_OK ){
      p->nRefreshes++;
      p->infoLoaded = 0;            /* the entry point may have moved */
    }
  }
  if( rc==SQLITE_OK ) rc = vdbLoadInfo(p);
  if( rc==SQLITE_OK ) vdbSharedCatchUp(p);
  return rc;
}

/* ---- operations ----------------------------------------------------------------------- */

/* The first change of a transaction: remember the snapshot it began from. */
static void vdbTxnWrites(VdbHnswIndex *p){
  if( p->txnDirty ) return;
  p->txnDirty = 1;
  p->txnBaseSeq = p->logSeq;
  p->txnBasePrint = p->logPrint;
  p->txnNoCopy = !p->hasLog;
  /* A connection that has only written so far joins the shared copy too;
  ** if it cannot, it reads the table as before. */
  if( !p->sharedLooked && p->hasLog && vdbSharedAttach(p)!=SQLITE_OK ) p->txnNoCopy = 1;
}

/* Between write operations every cached node's links are in ascending id
** order, the order the table stores them in (vdb_format.h). The graph
** algorithm appends, swaps and replaces links in whatever order suits it,
** and with int8 codes equal distances are common, so the order breaks
** ties: were a cached node's order to differ from a reloaded one's, the
** same writes would build different graphs depending on what happened to
** be cached (a restored backup would not match a replay of its writes).
** Sorting once the operation is over, never during it, leaves every loop
** over a node's links undisturbed. */
static void vdbWriteBegin(VdbHnswIndex *p){
  if( ++p->opCount==0 ) p->opCount = 1;
  p->nTouched = 0;
}

/* Sort the links of touched nodes aTouched[iFirst..iEnd-1]. A parallel
** link touches tens of thousands of nodes per batch, scattered over the
** cache: each one's nid entry is asked for VDB_SORT_AHEAD nodes ahead and
** its head half as far, so that the loop does not wait on every one. */
#define VDB_SORT_AHEAD 8
static void vdbSortTouched(VdbHnswIndex *p, int iFirst, int iEnd){
  int i, l;
  for(i=iFirst; i<iEnd; i++){
    VdbCNode *c;
    if( i+VDB_SORT_AHEAD<iEnd ){
      sqlite3_int64 nid = p->aTouched[i+VDB_SORT_AHEAD];
      if( nid>0 && nid<p->nByNid ) __builtin_prefetch(&p->aByNid[nid]);
    }
    if( i+VDB_SORT_AHEAD/2<iEnd ){
      VdbCNode *cAhead = vdbLookup(p, p->aTouched[i+VDB_SORT_AHEAD/2]);
      if( cAhead ) vdbPrefetchNode(p, cAhead);
    }
    c = vdbLookup(p, p->aTouched[i]);     /* NULL: removed and freed */
    if( c==0 || c->isRemoved ) continue;
    for(l=0; l<=c->node.level; l++){
      vdbSortIds(c->node.aaLink[l], l==0 ? c->node.aDist0 : 0, c->node.anLink[l]);
    }
  }
}

static void vdbWriteEnd(VdbHnswIndex *p){
  vdbSortTouched(p, 0, p->nTouched);
  p->nTouched = 0;
}

/* vdbWriteEnd's sort split between nThread threads, each a share of the
** touched nodes (each listed once, so no two threads sort the same
** node's links), after a parallel link: done by the calling thread alone
** it was about 4% of a 2-thread build's time (perf, 100,000 x 128), with
** the other core idle. */
typedef struct VdbSortShare { VdbHnswIndex *p; int iFirst, iEnd; pthread_t thread; } VdbSortShare;
static void *vdbSortShareMain(void *pArg){
  VdbSortShare *s = (VdbSortShare*)pArg;
  vdbSortTouched(s->p, s->iFirst, s->iEnd);
  return 0;
}
#define VDB_SORT_PER_THREAD 4096   /* touched nodes worth a thread, at least */
static void vdbWriteEndThreads(VdbHnswIndex *p, int nThread){
  VdbSortShare aShare[VDB_HNSW_MAX_THREADS];
  int i, nStarted = 1;
  if( nThread > p->nTouched/VDB_SORT_PER_THREAD ) nThread = p->nTouched/VDB_SORT_PER_THREAD;
  if( nThread<=1 ){
    vdbWriteEnd(p);
    return;
  }
  for(i=0; i<nThread; i++){
    aShare[i].p = p;
    aShare[i].iFirst = (int)((sqlite3_int64)p->nTouched*i/nThread);
    aShare[i].iEnd = (int)((sqlite3_int64)p->nTouched*(i+1)/nThread);
  }
  /* A thread that cannot be started leaves its share to this one. */
  for(i=1; i<nThread; i++){
    if( pthread_create(&aShare[i].thread, 0, vdbSortShareMain, &aShare[i])!=0 ) break;
    nStarted++;
  }
  vdbSortTouched(p, aShare[0].iFirst, aShare[0].iEnd);
  for(i=nStarted; i<nThread; i++) vdbSortTouched(p, aShare[i].iFirst, aShare[i].iEnd);
  for(i=1; i<nStarted; i++) pthread_join(aShare[i].thread, 0);
  p->nTouched = 0;
}

static int vdbInsertOp(VdbHnswIndex *p, sqlite3_int64 rowid, const VdbSlot *pSlot, const void *pVec){
  int rc = vdbLoadInfo(p);
  sqlite3_int64 nid;
  if( rc!=SQLITE_OK ) return rc;
  vdbTxnWrites(p);
  nid = p->nextNid++;
  p->nextNidChanged = 1;
  p->pendingRowid = rowid;
  p->pendingSlot = *pSlot;
  if( vdbLinkThreads(p)>1 ){
    rc = vdbDeferLink(p, nid, pVec);
  }else{
    /* Linked in order as they come: with a batch still waiting (the
    ** setting changed), after it. */
    rc = vdbLinkPending(p);
    vdbWriteBegin(p);
    if( rc==SQLITE_OK ) rc = vdbHnswInsert(&p->graph, nid, pVec);
    vdbWriteEnd(p);
  }
  if( rc==SQLITE_OK ) rc = vdbAfterWrite(p);
  return rc;
}

/* The nid of a row's node; SQLITE_NOTFOUND if the row has none. Pending
** changes are written first so the table is the whole truth. */
static int vdbNidOfRowid(VdbHnswIndex *p, sqlite3_int64 rowid, sqlite3_int64 *pNid){
  int rc = vdbHnswFlush(&p->base);
  if( rc==SQLITE_OK ) rc = vdbPrepare(p, &p->pByRowid, "SELECT nid FROM \"%w\".\"%w_%s\" WHERE rowid=?1");
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(p->pByRowid, 1, rowid);
  if( sqlite3_step(p->pByRowid)==SQLITE_ROW ) *pNid = sqlite3_column_int64(p->pByRowid, 0);
  else rc = SQLITE_NOTFOUND;
  {
    int rc2 = sqlite3_reset(p->pByRowid);
    return rc2!=SQLITE_OK ? rc2 : rc;
  }
}

static int vdbDeleteOp(VdbHnswIndex *p, sqlite3_int64 rowid){
  sqlite3_int64 nid;
  int rc = vdbLoadInfo(p);
  if( rc==SQLITE_OK ) vdbTxnWrites(p);
  if( rc==SQLITE_OK ) rc = vdbNidOfRowid(p, rowid, &nid);
  if( rc==SQLITE_NOTFOUND ){
    return vdbGraphCorrupt(p, "row %lld has no node", rowid);
  }
  if( rc==SQLITE_OK ){
    sqlite3_uint64 nSearchBefore = p->graph.nRepairSearch;
    vdbWriteBegin(p);
    rc = vdbHnswDelete(&p->graph, nid);
    vdbWriteEnd(p);
    /* Worth knowing, but common under churn: said once per index. */
    if( nSearchBefore==0 && p->graph.nRepairSearch>0 ){
      sqlite3_log(SQLITE_NOTICE, "vectordb: table %s, column %s: a delete's repair searched the graph "
                  "for new links (counted in vectordb_stats as repair_searches)",
                  p->pStore->zName, p->base.pCol->zName);
    }
  }
  if( rc==SQLITE_OK ) rc = vdbAfterWrite(p);
  return rc;
}

static int vdbMoveRowidOp(VdbHnswIndex *p, sqlite3_int64 oldRowid, sqlite3_int64 newRowid){
  sqlite3_int64 nid;
  VdbCNode *c;
  int rc = vdbLoadInfo(p);
  if( rc!=SQLITE_OK ) return rc;
  vdbTxnWrites(p);
  p->txnNoCopy = 1;                 /* the shared copy knows the old rowid */
  rc = vdbNidOfRowid(p, oldRowid, &nid);
  if( rc==SQLITE_NOTFOUND ){
    return vdbGraphCorrupt(p, "row %lld has no node", oldRowid);
  }
  if( rc==SQLITE_OK ){
    rc = vdbPrepare(p, &p->pMoveRowid, "UPDATE \"%w\".\"%w_%s\" SET rowid=?2 WHERE nid=?1");
  }
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(p->pMoveRowid, 1, nid);
  sqlite3_bind_int64(p->pMoveRowid, 2, newRowid);
  rc = vdbStepReset(p->pMoveRowid);
  c = vdbLookup(p, nid);
  if( rc==SQLITE_OK && c ) c->rowid = newRowid;
  /* Other connections' caches learn of it from the next log row. */
  if( rc==SQLITE_OK && p->hasLog ) rc = vdbIdListAdd(&p->aMoved, &p->nMoved, &p->nMovedAlloc, nid);
  return rc;
}

typedef struct VdbFilterAdapter {
  VdbHnswIndex *p;
  int isShared;                     /* the walk is on the shared copy */
  int (*xKeep)(void *pArg, sqlite3_int64 rowid);
  void *pArg;
  int rc;                           /* the first error loading a node */
} VdbFilterAdapter;

/* The algorithm filters nids; the user filters rowids. A node whose
** distance came from the vector fast path may not be cached (it was
** evicted, and only its vector is remembered): load it, or a match would
** be dropped. */
static int vdbNidFilter(void *pArg, sqlite3_int64 nid){
  VdbFilterAdapter *a = (VdbFilterAdapter*)pArg;
  VdbCNode *c;
  if( a->isShared ){
    const VdbRecordHead *h = 0;
    if( a->rc==SQLITE_OK ) a->rc = vdbSharedRecordOf(a->p, nid, &h);
    return h && a->xKeep(a->pArg, h->rowid);
  }
  c = vdbLookup(a->p, nid);
  if( c==0 && a->rc==SQLITE_OK ){
    VdbHnswNode *pNode = 0;
    a->rc = vdbAccessGet(a->p, nid, &pNode);
    if( a->rc==SQLITE_OK ) c = (VdbCNode*)pNode;
  }
  return c && !c->isRemoved && a->xKeep(a->pArg, c->rowid);
}

/* The k nearest rows the graph finds, as rowid hits; with xKeep, only
** rows it keeps. */
static int vdbWalk(VdbHnswIndex *p, const void *pQuery, int k, int ef,
                   int (*xKeep)(void*, sqlite3_int64), void *pKeepArg,
                   VdbHit **paHit, int *pnHit){
  VdbFilterAdapter adapter;
  VdbHnswHit *aHit = 0;
  VdbHit *aOut = 0;
  int nHit = 0, nVisited = 0, i, rc, isShared = 0;
  *paHit = 0;
  *pnHit = 0;
  rc = vdbLoadInfo(p);
  if( rc==SQLITE_OK ) rc = vdbLinkPending(p);      /* the transaction's own rows */
  if( rc==SQLITE_OK ) isShared = vdbSharedBegin(p, &rc);
  adapter.p = p;
  adapter.isShared = isShared;
  adapter.xKeep = xKeep;
  adapter.pArg = pKeepArg;
  adapter.rc = SQLITE_OK;
  if( rc==SQLITE_OK ){
    if( isShared ) p->graph.access = p->sharedAccess;
    rc = vdbHnswSearch(&p->graph, pQuery, k, ef, xKeep ? vdbNidFilter : 0, &adapter,
                       &aHit, &nHit, &nVisited);
    if( rc==SQLITE_OK ) rc = adapter.rc;
    p->graph.access = p->privateAccess;
  }
  if( rc==SQLITE_OK && nHit>0 ){
    aOut = (VdbHit*)sqlite3_malloc64(sizeof(VdbHit)*(sqlite3_uint64)nHit);
    if( aOut==0 ) rc = SQLITE_NOMEM;
    for(i=0; rc==SQLITE_OK && i<nHit; i++){
      aOut[i].dist = aHit[i].dist;
      if( isShared ){
        const VdbRecordHead *h = 0;
        rc = vdbSharedRecordOf(p, aHit[i].nid, &h);
        if( rc!=SQLITE_OK ) break;
        aOut[i].rowid = h->rowid;
      }else{
        VdbCNode *c = vdbLookup(p, aHit[i].nid);
        if( c==0 ){ rc = SQLITE_CORRUPT_VTAB; break; }
        aOut[i].rowid = c->rowid;
      }
    }
    if( rc==SQLITE_OK ) vdbHitSort(aOut, nHit);
  }
  /* The hits' rowids are copied out: the copy may now change. */
  if( isShared ) vdbSharedEnd(p);
  sqlite3_free(aHit);
  if( rc!=SQLITE_OK ){
    sqlite3_free(aOut);
    return rc;
  }
  if( p->pDirty==0 ) vdbEvictClean(p);
  *paHit = aOut;
  *pnHit = nHit;
  return SQLITE_OK;
}

/* A filter's matching rowids, sorted, for membership tests by the walk. */
typedef struct VdbRowSet { sqlite3_int64 *a; int n; } VdbRowSet;

static int vdbRowSetHas(void *pArg, sqlite3_int64 rowid){
  VdbRowSet *s = (VdbRowSet*)pArg;
  return bsearch(&rowid, s->a, (size_t)s->n, sizeof(sqlite3_int64), vdbCompareInt64)!=0;
}

/* A filtered query searches the graph only when more rows match than an
** exact scan of the matches would cost: below this many matches per unit
** of ef, exact search is cheaper and exact. */
#define VDB_EXACT_MATCHES_PER_EF 64

/* KNN through the graph. With filters, the matching rowids are collected
** first: few matches are scanned exactly (cheaper, and exact); many are
** searched in the graph, which walks through every node but returns only
** matches. If the walk finds fewer than min(k, matches) rows, the exact
** scan of the matches answers instead, so a filtered query always returns
** every row it should. */
static int vdbSearchOp(VdbHnswIndex *p, VdbKnnQuery *q, int ef, VdbHit **paHit, int *pnHit){
  VdbRowSet set;
  int rc = SQLITE_OK, nAlloc = 0, want, step;
  if( ef<0 ) ef = p->efSearch;
  *paHit = 0;
  *pnHit = 0;
  if( q->pFilter==0 ) return vdbWalk(p, q->query.pData, q->k, ef, 0, 0, paHit, pnHit);
  memset(&set, 0, sizeof(set));
  while( (step = vdbRowsStep(q->pFilter))==SQLITE_ROW ){
    if( set.n>=nAlloc ){
      sqlite3_int64 *a;
      nAlloc = nAlloc ? nAlloc*2 : VDB_ID_LIST_INITIAL;
      a = (sqlite3_int64*)sqlite3_realloc64(set.a, sizeof(sqlite3_int64)*(sqlite3_uint64)nAlloc);
      if( a==0 ){ rc = SQLITE_NOMEM; break; }
      set.a = a;
    }
    set.a[set.n++] = vdbRowsRowid(q->pFilter);
  }
  if( rc==SQLITE_OK && step!=SQLITE_ROW && step!=SQLITE_DONE ) rc = step;
  {
    int rc2 = vdbRowsReset(q->pFilter);
    if( rc==SQLITE_OK ) rc = rc2;
  }
  want = q->k < set.n ? q->k : set.n;
  if( rc==SQLITE_OK && set.n > (sqlite3_int64)ef * VDB_EXACT_MATCHES_PER_EF ){
    qsort(set.a, (size_t)set.n, sizeof(sqlite3_int64), vdbCompareInt64);
    rc = vdbWalk(p, q->query.pData, q->k, ef, vdbRowSetHas, &set, paHit, pnHit);
    if( rc==SQLITE_OK && *pnHit<want ){
      sqlite3_free(*paHit);
      *paHit = 0;
      *pnHit = 0;
    }
  }
  if( rc==SQLITE_OK && *paHit==0 && want>0 ) rc = vdbKnnSearch(q, paHit, pnHit);
  sqlite3_free(set.a);
  return rc;
}

/* ---- integrity --------------------------------------------------------------------------- */

static int vdbCheckKeptOp(VdbHnswIndex *p){
  sqlite3_int64 *aNid = 0;
  char *zErr = 0;
  int i, n = 0, rc = SQLITE_OK;
  if( p->nNode==0 ) return SQLITE_OK;
  aNid = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64)*(sqlite3_uint64)p->nNode);
  if( aNid==0 ) return SQLITE_NOMEM;
  for(i=0; i<p->nHash && n<p->nNode; i++){
    VdbCNode *c = p->aHash[i].pNode;
    if( p->aHash[i].nid && c->node.aDist0 && !c->isRemoved ) aNid[n++] = p->aHash[i].nid;
  }
  for(i=0; rc==SQLITE_OK && i<n; i++) rc = vdbHnswCheckKept(&p->graph, aNid[i], &zErr);
  if( rc==SQLITE_CORRUPT ) rc = vdbGraphCorrupt(p, "%s", zErr ? zErr : "a kept distance is wrong");
  sqlite3_free(zErr);
  sqlite3_free(aNid);
  return rc;
}

static int vdbCheckOp(VdbHnswIndex *p){
  VdbStore *s = p->pStore;
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 *aNid = 0, nRows = 0;
  char *zErr = 0;
  int nNid = 0, nAlloc = 0, rc;
  /* First what only the cache holds: the link distances its nodes keep
  ** (their nids gathered first, as the check may load more nodes). Then
  ** what is stored, not what is cached. */
  rc = vdbCheckKeptOp(p);
  if( rc==SQLITE_OK ) rc = vdbHnswFlush(&p->base);
  if( rc==SQLITE_OK ) vdbDiscardNow(p);
  if( rc==SQLITE_OK ) rc = vdbLoadInfo(p);
  /* Nodes and rows correspond one to one, slot for slot. */
  if( rc==SQLITE_OK ){
    rc = vdbPrepare(p, &pStmt, "SELECT nid, rowid, chunk_id, chunk_offset FROM \"%w\".\"%w_%s\" ORDER BY nid");
  }
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    sqlite3_int64 nid = sqlite3_column_int64(pStmt, 0);
    VdbSlot slot;
    rc = vdbStoreLocate(s, sqlite3_column_int64(pStmt, 1), &slot);
    if( rc==SQLITE_DONE || (rc==SQLITE_OK && (slot.chunkId!=sqlite3_column_int64(pStmt, 2)
                                            || slot.offset!=sqlite3_column_int64(pStmt, 3))) ){
      rc = vdbGraphCorrupt(p, "node %lld has no row or points at another slot", nid);
      break;
    }
    if( rc!=SQLITE_OK ) break;
    if( nNid>=nAlloc ){
      sqlite3_int64 *a;
      nAlloc = nAlloc ? nAlloc*2 : VDB_ID_LIST_INITIAL;
      a = (sqlite3_int64*)sqlite3_realloc64(aNid, sizeof(sqlite3_int64)*(sqlite3_uint64)nAlloc);
      if( a==0 ){ rc = SQLITE_NOMEM; break; }
      aNid = a;
    }
    aNid[nNid++] = nid;
  }
  rc = vdbFinalize(pStmt, rc);
  if( rc==SQLITE_OK ) rc = vdbStoreRowCount(s, &nRows);
  if( rc==SQLITE_OK && nRows!=nNid ){
    rc = vdbGraphCorrupt(p, "%d nodes for %lld rows", nNid, nRows);
  }
  if( rc==SQLITE_OK ){
    rc = vdbHnswCheck(&p->graph, aNid, nNid, &zErr);
    if( rc==SQLITE_CORRUPT ) rc = vdbGraphCorrupt(p, "%s", zErr ? zErr : "the graph is damaged");
  }
  if( rc==SQLITE_OK && nNid>0 && p->nextNid<=aNid[nNid-1] ){
    rc = vdbGraphCorrupt(p, "next nid %lld is not above node %lld", p->nextNid, aNid[nNid-1]);
  }
  sqlite3_free(zErr);
  sqlite3_free(aNid);
  return rc;
}

/* ---- entry points ---------------------------------------------------------------------
** Operations run between vdbEnter and vdbLeave. SQLite rolls the whole
** transaction back when one of the nested statements they run fails with
** SQLITE_NOMEM or SQLITE_IOERR and has no statement journal, and then
** calls xRollback, which discards the cache -- while the operation still
** holds pointers to cached nodes. A discard asked for during an operation
** therefore waits until the outermost one returns (with that error). */

static void vdbEnter(VdbHnswIndex *p){
  p->nActive++;
}

/* Enter an operation other than an insert: it reads or changes the graph
** as a whole, so a round linking in the background ends first. */
static int vdbEnterJoined(VdbHnswIndex *p){
  vdbEnter(p);
  return vdbLinkJoin(p);
}

static int vdbLeave(VdbHnswIndex *p, int rc){
  if( --p->nActive==0 ){
    /* No handle outlives the operation: an open one would keep the
    ** statement active (COMMIT would fail) and its table locked. */
    sqlite3_blob_close(p->pChunkBlob);
    p->pChunkBlob = 0;
    if( p->discardPending ){
      p->discardPending = 0;
      vdbDiscardNow(p);
    }
  }
  return rc;
}

static void vdbHnswDiscard(VdbIndex *pIdx){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  if( p->nActive>0 ){
    p->discardPending = 1;
  }else{
    vdbDiscardNow(p);
  }
}

static int vdbHnswFlush(VdbIndex *pIdx){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  int rc = vdbEnterJoined(p);
  return vdbLeave(p, rc==SQLITE_OK ? vdbFlushOp(p) : rc);
}

static int vdbHnswInsertRow(VdbIndex *pIdx, sqlite3_int64 rowid, const VdbSlot *pSlot, const void *pVec){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  vdbEnter(p);
  return vdbLeave(p, vdbInsertOp(p, rowid, pSlot, pVec));
}

static int vdbHnswDeleteRow(VdbIndex *pIdx, sqlite3_int64 rowid){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  int rc = vdbEnterJoined(p);
  return vdbLeave(p, rc==SQLITE_OK ? vdbDeleteOp(p, rowid) : rc);
}

static int vdbHnswMoveRowid(VdbIndex *pIdx, sqlite3_int64 oldRowid, sqlite3_int64 newRowid){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  int rc = vdbEnterJoined(p);
  return vdbLeave(p, rc==SQLITE_OK ? vdbMoveRowidOp(p, oldRowid, newRowid) : rc);
}

static int vdbHnswSearchRows(VdbIndex *pIdx, VdbKnnQuery *q, int ef, VdbHit **paHit, int *pnHit){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  int rc = vdbEnterJoined(p);
  return vdbLeave(p, rc==SQLITE_OK ? vdbSearchOp(p, q, ef, paHit, pnHit) : rc);
}

static int vdbHnswCheckIndex(VdbIndex *pIdx){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  int rc = vdbEnterJoined(p);
  return vdbLeave(p, rc==SQLITE_OK ? vdbCheckOp(p) : rc);
}

/* The stored graph's shape (after writing what is pending): nodes per
** level and the bottom layer's degree, read from every node's row. */
static int vdbShapeOp(VdbHnswIndex *p, VdbStatFn xAdd, void *pCtx){
  sqlite3_int64 aLevel[VDB_HNSW_MAX_LEVEL+1], nNode = 0, degSum = 0, degMin = 0, degMax = 0;
  sqlite3_stmt *pStmt = 0;
  int rc = vdbHnswFlush(&p->base), l;
  memset(aLevel, 0, sizeof(aLevel));
  if( rc==SQLITE_OK ) rc = vdbPrepare(p, &pStmt, "SELECT level, substr(links, 1, 2) FROM \"%w\".\"%w_%s\"");
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    int level = sqlite3_column_int(pStmt, 0);
    const unsigned char *a = (const unsigned char*)sqlite3_column_blob(pStmt, 1);
    int nByte = sqlite3_column_bytes(pStmt, 1);
    sqlite3_uint64 deg = 0;
    /* The layer-0 count: a uint16, or (format 3) a varint of 1 or 2 bytes. */
    if( level<0 || level>VDB_HNSW_MAX_LEVEL || a==0
     || (p->varintLinks ? vdbGetVarint(a, nByte, &deg)==0 : nByte!=2) ){
      rc = vdbGraphCorrupt(p, "a node's level or links are malformed");
      break;
    }
    if( !p->varintLinks ) deg = a[0] | (a[1]<<8);
    aLevel[level]++;
    degSum += (sqlite3_int64)deg;
    if( nNode==0 || (sqlite3_int64)deg<degMin ) degMin = (sqlite3_int64)deg;
    if( (sqlite3_int64)deg>degMax ) degMax = (sqlite3_int64)deg;
    nNode++;
  }
  rc = vdbFinalize(pStmt, rc);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "nodes", 0, (double)nNode);
  for(l=0; rc==SQLITE_OK && l<=VDB_HNSW_MAX_LEVEL; l++){
    static const char *const azLevel[] = { "nodes_level_0", "nodes_level_1", "nodes_level_2",
      "nodes_level_3", "nodes_level_4", "nodes_level_5", "nodes_level_6", "nodes_level_7",
      "nodes_level_8", "nodes_level_9", "nodes_level_10", "nodes_level_11", "nodes_level_12",
      "nodes_level_13", "nodes_level_14", "nodes_level_15" };
    if( aLevel[l] ) rc = xAdd(pCtx, azLevel[l], 0, (double)aLevel[l]);
  }
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "degree_min", 0, (double)degMin);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "degree_mean", 0, nNode ? (double)degSum/(double)nNode : 0.0);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "degree_max", 0, (double)degMax);
  return rc;
}

static int vdbHnswStats(VdbIndex *pIdx, VdbStatFn xAdd, void *pCtx){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  int rc = vdbEnterJoined(p);
  if( rc==SQLITE_OK ) rc = vdbLoadInfo(p);
  if( rc==SQLITE_OK ) rc = vdbShapeOp(p, xAdd, pCtx);
  rc = vdbLeave(p, rc);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "entry_nid", 0, p->graph.hasEntry ? (double)p->graph.entryNid : 0.0);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "entry_level", 0, p->graph.hasEntry ? (double)p->graph.entryLevel : 0.0);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "m", 0, p->graph.params.m);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "ef_construction", 0, p->graph.params.efConstruction);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "ef_search", 0, p->efSearch);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "cache_mb", 0, (double)(p->budgetBytes>>20));
  if( rc==SQLITE_OK ){
    rc = xAdd(pCtx, "quantizer", vdbQuantNames[p->base.pCol->index.aParam[VDB_HNSW_P_QUANT]], 0);
  }
  /* The shared copy's figures (every connection of the process) plus this
  ** connection's private cache's. */
  {
    VdbHnswShared *sh = p->pShared;
    sqlite3_int64 nNode = p->nNode, nChunk = p->chunks.n, nTable = vdbTableBytes(p);
    sqlite3_int64 nShared = 0, nHits = p->nHits, nMisses = p->nLoaded;
    sqlite3_int64 nFull = p->nFullReloads, nRefresh = p->nRefreshes, nRefreshed = p->nRefreshedNodes;
    sqlite3_int64 nEvict = 0, nVectors = 0, nDecoded = 0;
    if( sh ){
      vdbSharedReadLock(sh);
      pthread_mutex_lock(&sh->publishLock);
      nNode += sh->nNode;
      nChunk += sh->chunks.n;
      nVectors = sh->nVectors;
      nDecoded = sh->nDecoded;
      nTable += vdbSharedTableBytes(sh);
      nShared = sh->cacheBytes + vdbSharedTableBytes(sh);
      pthread_mutex_unlock(&sh->publishLock);
      nHits += __atomic_load_n(&sh->nHits, __ATOMIC_RELAXED);
      nMisses += __atomic_load_n(&sh->nMisses, __ATOMIC_RELAXED);
      nFull += sh->nFullReloads;
      nRefresh += sh->nRefreshes;
      nRefreshed += sh->nRefreshedNodes;
      nEvict = sh->nEvictions;
      vdbSharedReadUnlock(sh);
    }
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "cached_nodes", 0, (double)nNode);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "cached_chunks", 0, (double)nChunk);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "shared_vectors", 0, (double)nVectors);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "shared_decoded_nodes", 0, (double)nDecoded);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "cache_bytes", 0, (double)(p->cacheBytes + vdbTableBytes(p) + nShared));
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "cache_table_bytes", 0, (double)nTable);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "shared_cache_bytes", 0, (double)nShared);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "private_cache_bytes", 0, (double)(p->cacheBytes + vdbTableBytes(p)));
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "shared_connections", 0, (double)vdbSharedUsers(sh));
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "hits", 0, (double)nHits);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "misses", 0, (double)nMisses);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "discards", 0, (double)p->nDiscards);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "evictions", 0, (double)nEvict);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "full_reloads", 0, (double)nFull);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "refreshes", 0, (double)nRefresh);
    if( rc==SQLITE_OK ) rc = xAdd(pCtx, "refreshed_nodes", 0, (double)nRefreshed);
  }
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "repair_searches", 0, (double)p->graph.nRepairSearch);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "threads", 0, (double)vdbLinkThreads(p));
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "parallel_links", 0, (double)p->nLinkJobs);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "parallel_link_rounds", 0, (double)p->nLinkRounds);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "nodes_linked_in_parallel", 0, (double)p->nLinkedByThreads);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "background_link_rounds", 0, (double)p->nLinkBackground);
  if( rc==SQLITE_OK ) rc = xAdd(pCtx, "background_rounds_cancelled", 0, (double)p->nLinkCancelled);
  return rc;
}

static void vdbHnswEndTransaction(VdbIndex *pIdx){
  VdbHnswIndex *p = (VdbHnswIndex*)pIdx;
  /* None runs (the commit flushed, a rollback discarded): a guard, as the
  ** threads read txnCount. */
  vdbLinkJoinAs(p, 1);
  p->txnDirty = 0;
  p->txnNoCopy = 0;
  p->txnCount++;
}

/* A walk that needs the vector of a node whose chunk is not cached reads
** the whole chunk (one sequential BLOB read), so a cold query reads a
** chunk per node it meets: at 1 MiB chunks a new process's first query on
** 200,000 x 128 rows took 263 ms, at 32 KiB (64 rows) 80 ms, while an
** exact scan took 60 and 66 ms. At ef_search 64 a first query meets about
** 1,400 nodes in as many chunks; at 16 KiB instead of 64 KiB it took 65 ms
** instead of 117 on 1M x 128 (32 rows instead of 128) and 47 instead of
** 98 on cosine 200k x 384 (8 rows instead of 32), with warm QPS and recall
** unchanged within the runs' spread (bench notes of 2026-12-06, before
** the shared copy stopped keeping the chunks of nodes it only codes). */
#define VDB_HNSW_CHUNK_TARGET_BYTES (16*1024)

const VdbIndexKind vdbIndexHnsw = {
  "hnsw", VDB_HNSW_NPARAM, vdbHnswParams, VDB_HNSW_CHUNK_TARGET_BYTES,
  vdbHnswValidate, vdbHnswSignature, vdbHnswShadowName,
  vdbHnswCreate, vdbHnswDrop, vdbHnswRename,
  vdbHnswOpen, vdbHnswClose, vdbHnswConfigure, vdbHnswSync,
  vdbHnswInsertRow, vdbHnswDeleteRow, vdbHnswMoveRowid, vdbHnswSearchRows,
  vdbHnswFlush, vdbHnswDiscard, vdbHnswCheckIndex, vdbHnswStats, vdbHnswEndTransaction
};
