/*
** Inside the hnsw index kind: what its two files share.
**
**   vdb_index_hnsw.c   the kind's methods, the connection's statements and
**                      its private node cache (used inside a transaction
**                      that changed the graph, and by snapshots older than
**                      the shared copy);
**   vdb_hnsw_shared.c  the process-wide copy of an index's committed
**                      graph, shared by every connection of the process
**                      that opens the same index in the same file.
**
** The shared copy holds only committed state, at one commit of the change
** log (its version, a log seq). A connection walks it when its snapshot is
** exactly that version and its transaction has not changed the graph;
** otherwise it uses its private cache, so a query always sees exactly its
** own transaction's state.
**
** Concurrency of the shared copy (see vdb_hnsw_shared.c):
**   - walks hold its read lock for the whole search: nothing they can
**     reach is freed or changed under them;
**   - a walk that misses reads the node (and its chunk of vectors) from
**     its own connection, at the version, and publishes it (and its code)
**     under a mutex with release stores; other walks find it with acquire
**     loads; published nodes, codes and chunk buffers never change
**     afterwards (a walk record's links are only cleared, under the write
**     lock, when its node is dropped, and set again when it is published);
**   - moving to a newer version (applying change-log rows), eviction and
**     growing the records' page table take the write lock.
*/
#ifndef VDB_INDEX_HNSW_H
#define VDB_INDEX_HNSW_H
#include <pthread.h>
#include <stdint.h>
#if defined(__linux__)
# include <sys/mman.h>
#endif
#include "vdb_hnsw.h"
#include "vdb_index.h"

/* Map the pages of a large new allocation (chunk buffers, record pages,
** node-id tables) before its first write, in one system call instead of
** one page fault per 4 KiB page. A cold query walks a few hundred nodes
** spread over most chunks of the table and allocates a buffer for each
** chunk: on 1M x 128 that was 147 MiB and 96,000 faults, and in this
** virtual machine the faults cost more than reading the data (first query
** 0.73 s, 0.45 s with this and smaller record pages). MADV_POPULATE_WRITE
** is Linux 5.14 and later; elsewhere, or if it fails, pages fault in as
** they are written, as before. Since chunks are 16 KiB and walk-record
** pages 12 KiB (1M x 128), those are mapped this way too: a new process's
** first query on 1M x 128 took 62 ms instead of 72 (a C program, ten runs
** each, interleaved). Allocations below two pages are left alone. */
#define VDB_PREFAULT_MIN (8*1024)
static inline void vdbPrefault(void *p, size_t n){
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  if( n>=VDB_PREFAULT_MIN ){
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)4095;
    if( e>a ) (void)madvise((void*)a, (size_t)(e - a), MADV_POPULATE_WRITE);
  }
#else
  (void)p; (void)n;
#endif
}

/* Ask for the 2 MiB-aligned 2 MiB runs inside [p, p+n) to be backed by
** transparent huge pages. A walk reads records scattered over the whole
** copy (hundreds of MB on 1M nodes): with 4 KiB pages nearly every record
** it scores misses the TLB as well as the cache, and the page walk is a
** second dependent miss; 2 MiB pages cover the copy with a few hundred
** TLB entries. Linux backs the range with huge pages where the system's
** setting is "always" or "madvise" (the common default); elsewhere, or if
** it fails, the range keeps small pages. */
#define VDB_HUGE_PAGE (2*1024*1024)
static inline void vdbAdviseHuge(void *p, size_t n){
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  uintptr_t a = ((uintptr_t)p + VDB_HUGE_PAGE-1) & ~(uintptr_t)(VDB_HUGE_PAGE-1);
  uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(VDB_HUGE_PAGE-1);
  if( e>a ) (void)madvise((void*)a, (size_t)(e - a), MADV_HUGEPAGE);
#else
  (void)p; (void)n;
#endif
}

/* ---- walk records by node id (vdb_hnsw_records.c): the shared copy's, private codes -- */

#ifndef VDB_REC_PAGE_SHIFT
# define VDB_REC_PAGE_SHIFT 5                       /* 32 records per page */
#endif
#define VDB_REC_PAGE_NODES (1<<VDB_REC_PAGE_SHIFT)
#define VDB_REC_CODE  1u                            /* marks: the code is there */
#define VDB_REC_LINKS 2u                            /* ... the layer-0 links are */
#define VDB_REC_NODE  4u                            /* ... the node is published (hasNode) */

/* A block of record pages, allocated at once (see vdb_hnsw_records.c). */
typedef struct VdbRecSlab VdbRecSlab;

typedef struct VdbRecords {
  unsigned char **apPage;           /* records of nids [i<<SHIFT, (i+1)<<SHIFT); NULL: none */
  VdbRecSlab **apSlab;              /* the slab each page was carved from */
  sqlite3_int64 nPage;              /* entries of apPage (nids covered >> SHIFT) */
  sqlite3_int64 nPageAlloc;         /* pages allocated */
  VdbRecSlab **aSlab;               /* every slab, oldest first */
  int nSlab, nSlabAlloc;
  unsigned char *aUsed;             /* per page: the owner's eviction mark (0 when covered) */
  int nCodeBytes;                   /* 0: the walk compares vectors; records hold links */
  int nLinkCap;                     /* layer-0 links a record has room for */
  int hasNode;                      /* records start with a VdbRecordHead's node fields */
  int iAux;                         /* hasNode: where a record keeps its vector's aux
                                    ** value; 0: after the vector, at pVec + nVecBytes
                                    ** (a copy the owner allocated with that room) */
  int nVecBytes;
  int iCode;                        /* where the code starts in a record */
  int iLinks;                       /* where the links start */
  int nStride;                      /* bytes per record, a multiple of 64 */
} VdbRecords;

/* The start of every record. Records made without hasNode (a private
** cache's codes) end after isReferenced's byte and its neighbour. In the
** shared copy's records (hasNode) the rest says where the node's row and
** vector are, so that a node of layer 0 alone is published as its record
** and nothing else (see vdb_hnsw_records.c). */
typedef struct VdbRecordHead {
  unsigned int mark;                /* VDB_REC_CODE | VDB_REC_LINKS | VDB_REC_NODE */
  unsigned short nLink;             /* layer-0 links held */
  unsigned char isReferenced;       /* hasNode: a walk used the node since the clock
                                    ** hand last passed (relaxed atomic stores) */
  unsigned char unused;
  void *pNode;                      /* a node above layer 0: its VdbCNode; else NULL */
  const void *pVec;                 /* the node's vector, or NULL */
  sqlite3_int64 rowid;              /* VDB_REC_NODE: the node's row */
  sqlite3_uint64 slot;              /* VDB_REC_NODE: chunk_id << 16 | chunk_offset */
} VdbRecordHead;
#define VDB_REC_HEAD_BYTES 8        /* mark, nLink, isReferenced: a record without node fields */
#define VDB_REC_SLOT_SHIFT 16       /* chunk offsets are below VDB_CHUNK_MAX_ROWS, 2^16 */

void vdbRecordsInit(VdbRecords *a, int nCodeBytes, int nLinkCap, int hasNode, int nVecBytes);
/* Grow the page table to cover nids below nNid (write lock). */
int vdbRecordsCover(VdbRecords *a, sqlite3_int64 nNid);
/* Publish node nid's code (pCode, unless the record has it) and, if aLink
** is not NULL and the record has none, its layer-0 links (publish lock).
** Returns the record's code (or, without codes, the record); NULL when
** memory ran out or there is no code to publish. *pnNew grows by the
** bytes allocated. */
const void *vdbRecordsPublish(VdbRecords *a, sqlite3_int64 nid, const void *pCode,
                              const sqlite3_int64 *aLink, int nLink, sqlite3_int64 *pnNew);
/* Node nid's links changed: its record no longer holds them (write lock). */
void vdbRecordsDropLinks(VdbRecords *a, sqlite3_int64 nid);
/* hasNode records: the record's head, or NULL when its page is not there. */
static inline VdbRecordHead *vdbRecordsHeadAt(const VdbRecords *a, sqlite3_int64 iPage, int i){
  return a->apPage[iPage] ? (VdbRecordHead*)(a->apPage[iPage] + (size_t)i*(size_t)a->nStride) : 0;
}
/* hasNode records: publish node nid (row, slot, pNode for a node above
** layer 0, vector pVec if known) in the record vdbRecordsPublish made
** (publish lock). The slot must fit the record (chunk_id below 2^47). */
void vdbRecordsSetNode(VdbRecords *a, sqlite3_int64 nid, void *pNode, sqlite3_int64 rowid,
                       const VdbSlot *pSlot, const void *pVec, float aux);
/* hasNode records: where a published node's vector is. */
static inline VdbSlot vdbRecordsSlot(const VdbRecordHead *h){
  VdbSlot slot;
  slot.chunkId = (sqlite3_int64)(h->slot >> VDB_REC_SLOT_SHIFT);
  slot.offset = (int)(h->slot & ((1u<<VDB_REC_SLOT_SHIFT)-1));
  return slot;
}
/* hasNode records: node nid, published, gets pNode (publish lock). */
void vdbRecordsSetFullNode(VdbRecords *a, sqlite3_int64 nid, void *pNode);
/* hasNode records: unpublish node nid (write lock); the code stays. */
void vdbRecordsClearNode(VdbRecords *a, sqlite3_int64 nid);
/* hasNode records: a published node without its vector gets it (publish
** lock); returns the vector the record holds, and its aux in *pAux. */
const void *vdbRecordsSetVector(VdbRecords *a, sqlite3_int64 nid, const void *pVec, float *pAux);
sqlite3_int64 vdbRecordsPageBytes(const VdbRecords *a);
/* Free pages (all, or those whose aLive[] entry is 0); return bytes freed. */
sqlite3_int64 vdbRecordsClear(VdbRecords *a);
sqlite3_int64 vdbRecordsKeep(VdbRecords *a, const unsigned char *aLive);
void vdbRecordsFree(VdbRecords *a);
static inline sqlite3_int64 vdbRecordsTableBytes(const VdbRecords *a){
  return a->nPage*(sqlite3_int64)(sizeof(unsigned char*) + sizeof(void*) + 1);
}
/* Slabs allocated, and their bytes (for statistics and tests). */
int vdbRecordsSlabs(const VdbRecords *a, sqlite3_int64 *pnByte);
/* Node nid's record and its mark (acquire: published by other threads),
** or NULL. */
static inline const VdbRecordHead *vdbRecordsFind(const VdbRecords *a, sqlite3_int64 nid, unsigned int *pMark){
  const unsigned char *aPage;
  const VdbRecordHead *h;
  if( nid<0 || (nid >> VDB_REC_PAGE_SHIFT)>=a->nPage ) return 0;
  aPage = __atomic_load_n(&a->apPage[nid >> VDB_REC_PAGE_SHIFT], __ATOMIC_ACQUIRE);
  if( aPage==0 ) return 0;
  h = (const VdbRecordHead*)(aPage + (size_t)(nid & (VDB_REC_PAGE_NODES-1))*(size_t)a->nStride);
  *pMark = __atomic_load_n(&h->mark, __ATOMIC_ACQUIRE);
  return h;
}
/* Node nid's code, or NULL when its record does not hold it. */
static inline const void *vdbRecordsCode(const VdbRecords *a, sqlite3_int64 nid){
  unsigned int mark = 0;
  const VdbRecordHead *h = vdbRecordsFind(a, nid, &mark);
  return (mark & VDB_REC_CODE) ? (const void*)((const unsigned char*)h + a->iCode) : 0;
}
/* A walk used node nid's record: its CLOCK mark, written only when it
** changes, so that hot records are not written by every walk. */
static inline void vdbRecordsTouch(const VdbRecordHead *h){
  VdbRecordHead *w = (VdbRecordHead*)h;
  if( !__atomic_load_n(&w->isReferenced, __ATOMIC_RELAXED) ){
    __atomic_store_n(&w->isReferenced, 1, __ATOMIC_RELAXED);
  }
}
/* Node nid's layer-0 links, or NULL when its record does not hold them. */
static inline const unsigned int *vdbRecordsLinks(const VdbRecords *a, sqlite3_int64 nid, int *pnLink){
  unsigned int mark = 0;
  const VdbRecordHead *h = vdbRecordsFind(a, nid, &mark);
  if( !(mark & VDB_REC_LINKS) ) return 0;
  if( a->hasNode ) vdbRecordsTouch(h);
  *pnLink = (int)h->nLink;
  return (const unsigned int*)((const unsigned char*)h + a->iLinks);
}
/* The start of node nid's record if its page exists (for prefetching). */
static inline const void *vdbRecordsAddress(const VdbRecords *a, sqlite3_int64 nid){
  const unsigned char *aPage;
  if( nid<0 || (nid >> VDB_REC_PAGE_SHIFT)>=a->nPage ) return 0;
  aPage = __atomic_load_n(&a->apPage[nid >> VDB_REC_PAGE_SHIFT], __ATOMIC_ACQUIRE);
  return aPage ? aPage + (size_t)(nid & (VDB_REC_PAGE_NODES-1))*(size_t)a->nStride : 0;
}
/* hasNode records: node nid's record if the node is published, else NULL. */
static inline const VdbRecordHead *vdbRecordsPublished(const VdbRecords *a, sqlite3_int64 nid){
  unsigned int mark = 0;
  const VdbRecordHead *h = vdbRecordsFind(a, nid, &mark);
  return (mark & VDB_REC_NODE) ? h : 0;
}
/* hasNode records: node nid's VdbCNode, or NULL when none is published
** (a node of layer 0 alone is published without one). */
static inline void *vdbRecordsNode(const VdbRecords *a, sqlite3_int64 nid){
  const VdbRecordHead *h = (const VdbRecordHead*)vdbRecordsAddress(a, nid);
  return h ? __atomic_load_n(&h->pNode, __ATOMIC_ACQUIRE) : 0;
}
/* The aux value of a record's vector (its vector is there). */
static inline float vdbRecordsAux(const VdbRecords *a, const VdbRecordHead *h, const void *pVec){
  return a->iAux ? *(const float*)((const unsigned char*)h + a->iAux)
                 : *(const float*)((const unsigned char*)pVec + a->nVecBytes);
}
/* hasNode records: the vector record h holds and its aux, or NULL. */
static inline const void *vdbRecordsHeadVector(const VdbRecords *a, const VdbRecordHead *h, float *pAux){
  const void *pVec = __atomic_load_n(&h->pVec, __ATOMIC_ACQUIRE);
  if( pVec ) *pAux = vdbRecordsAux(a, h, pVec);
  return pVec;
}
/* hasNode records: node nid's vector and aux, or NULL. */
static inline const void *vdbRecordsVector(const VdbRecords *a, sqlite3_int64 nid, float *pAux){
  const VdbRecordHead *h = (const VdbRecordHead*)vdbRecordsAddress(a, nid);
  return h ? vdbRecordsHeadVector(a, h, pAux) : 0;
}

/* A cached node: the algorithm's view first, then bookkeeping; in a
** private cache its code (when the walk uses codes) and then its link
** arrays live in the same allocation, after the struct (in the shared
** copy the code lives in the node's walk record). In the private
** cache the vector is not copied: node.pVec points into the cached chunk
** of vectors it belongs to, and is valid while chunkEpoch equals the
** cache's. In the shared copy (which keeps one only for a node above
** layer 0) nothing of a published node changes; its CLOCK mark is its
** record's. */
typedef struct VdbCNode VdbCNode;
struct VdbCNode {
  VdbHnswNode node;
  sqlite3_int64 rowid;
  VdbSlot slot;
  unsigned int chunkEpoch;          /* 0: node.pVec not resolved yet */
  unsigned char isDirty;
  unsigned char isRemoved;
  unsigned char isNew;              /* created since the last flush: its vector is new */
  unsigned char isReferenced;       /* used since the clock hand last passed */
  unsigned char isPooled;           /* private: its memory is the index's node pool's */
  unsigned int txnStamp;            /* private: the connection's transaction count when last written */
  unsigned int opStamp;             /* private: the write operation that last changed it */
  VdbCNode *pDirtyNext;
  size_t nByte;
};

/* The vectors of one chunk (T_vectorsNN row), read with one sequential
** BLOB read. Reading a single vector at an offset of a chunk BLOB makes
** SQLite walk the BLOB's overflow-page chain up to that offset, about 64
** page reads for a 1,024-row chunk, so loading nodes one vector at a time
** cost ~40 ms per cold query at 200,000 rows; reading whole chunks makes
** every later node of the chunk free. */
typedef struct VdbChunkBuf {
  sqlite3_int64 chunkId;            /* 0: empty slot */
  unsigned char *aVec;              /* chunkSize vectors */
  unsigned char isReferenced;       /* used since the clock hand last passed */
  int nLive;                        /* shared copy's eviction: nodes still pointing here */
} VdbChunkBuf;

/* chunk_id -> buffer, open addressing, at most half full. */
typedef struct VdbChunkTable {
  VdbChunkBuf *a;
  int nSlot;                        /* 0 or a power of two */
  int n;                            /* buffers held */
} VdbChunkTable;

VdbChunkBuf *vdbChunkTableFind(const VdbChunkTable *t, sqlite3_int64 chunkId);
/* Rebuild with nSlot slots (a power of two), keeping entries with vectors. */
int vdbChunkTableRehash(VdbChunkTable *t, int nSlot);
/* Add a buffer (the table takes aVec); grows first when it must. */
int vdbChunkTableAdd(VdbChunkTable *t, sqlite3_int64 chunkId, unsigned char *aVec, VdbChunkBuf **ppBuf);
/* Free every buffer. */
void vdbChunkTableClear(VdbChunkTable *t);

/* ---- the process-wide copy (vdb_hnsw_shared.c) ------------------------------------- */

typedef struct VdbHnswShared VdbHnswShared;
struct VdbHnswShared {
  /* The registry's (under its mutex). */
  VdbHnswShared *pNext;
  int nRef;
  sqlite3_uint64 dev, ino;          /* the database file's identity */
  char zToken[VDB_INDEX_TOKEN_CHARS+1];  /* the index's, from its name */
  int nVecBytes, nCodeBytes, chunkSize, m;   /* must agree for a connection to share */

  pthread_rwlock_t walkLock;        /* read: walks; write: everything below changes */
  pthread_mutex_t publishLock;      /* misses publishing, under the read lock */

  /* Changed under the write lock only. */
  sqlite3_int64 version;            /* the log seq reflected; -1: nothing usable */
  sqlite3_uint64 versionPrint;      /* the print of log row version (vdbLogPrint) */
  sqlite3_int64 nCovered;           /* recs cover nids below it: every nid of the version */
  sqlite3_int64 budgetBytes;
  sqlite3_int64 clockHand;

  /* Changed under the publish lock (or the write lock). */
  VdbChunkTable chunks;
  VdbRecords recs;                  /* walk records with node fields, by nid; the page
                                    ** table grows under the write lock */
  sqlite3_int64 nNode;              /* nodes published (VDB_REC_NODE) */
  sqlite3_int64 nVectors;           /* with codes: vectors of results held */
  sqlite3_int64 nDecoded;           /* nodes published with their VdbCNode */
  sqlite3_int64 cacheBytes;         /* nodes, vectors, chunk buffers and record pages */

  /* Statistics, added to with atomic adds. */
  sqlite3_int64 nHits, nMisses, nFullReloads, nRefreshes, nRefreshedNodes, nEvictions;
};

/* The shared copy of the index zToken in file zFile, created on first use;
** *pp is NULL (and SQLITE_OK returned) when the file cannot be identified.
** Each successful call is paired with vdbSharedRelease. */
int vdbSharedAcquire(const char *zFile, const char *zToken, int nVecBytes, int nCodeBytes,
                     int chunkSize, int m, VdbHnswShared **pp);
void vdbSharedRelease(VdbHnswShared *s);
/* Connections holding s (0 for NULL). */
int vdbSharedUsers(VdbHnswShared *s);

void vdbSharedReadLock(VdbHnswShared *s);
void vdbSharedReadUnlock(VdbHnswShared *s);
void vdbSharedWriteLock(VdbHnswShared *s);
void vdbSharedWriteUnlock(VdbHnswShared *s);

/* The published node nid's VdbCNode, or NULL: none is published, or it
** is a node of layer 0 published as its record alone (caller holds the
** read lock). */
static inline VdbCNode *vdbSharedNode(VdbHnswShared *s, sqlite3_int64 nid){
  return nid>0 ? (VdbCNode*)vdbRecordsNode(&s->recs, nid) : 0;
}
/* The record of published node nid, or NULL (caller holds the read lock). */
static inline const VdbRecordHead *vdbSharedRecord(VdbHnswShared *s, sqlite3_int64 nid){
  return nid>0 ? vdbRecordsPublished(&s->recs, nid) : 0;
}
/* The vector of published node nid, or NULL (caller holds the read lock). */
static inline const void *vdbSharedVector(VdbHnswShared *s, sqlite3_int64 nid, float *pAux){
  return nid>0 ? vdbRecordsVector(&s->recs, nid, pAux) : 0;
}

/* The code of node nid, or NULL (caller holds the read lock). */
static inline const void *vdbSharedCode(VdbHnswShared *s, sqlite3_int64 nid){
  return vdbRecordsCode(&s->recs, nid);
}

/* Under the read lock: the chunk's vectors if the copy holds them. */
unsigned char *vdbSharedChunkFind(VdbHnswShared *s, sqlite3_int64 chunkId);
/* Under the read lock: adopt aVec (chunkBytes) as chunkId's vectors, or
** free it when another walk got there first; returns the buffer kept. */
unsigned char *vdbSharedChunkAdopt(VdbHnswShared *s, sqlite3_int64 chunkId, unsigned char *aVec,
                                   sqlite3_int64 chunkBytes);
/* Under the read lock: publish node c, read from its row (its pVec, if
** set, into an adopted chunk), in its walk record: row, slot, layer-0
** links and, with codes, pCode (NULL if the record has it already). The
** VdbCNode itself is kept only with keepNode or for a node above layer 0
** (or one whose links do not fit the record); *ppKept is then the node
** kept (another walk's if it got there first), else NULL, and c is freed.
** SQLITE_NOMEM: c is freed. The node kept points at the record's code. */
int vdbSharedPublish(VdbHnswShared *s, VdbCNode *c, const void *pCode, int keepNode, VdbCNode **ppKept);
/* Under the read lock: give published node nid, published without its
** vector, the vector pVec (aux *pAux) unless another walk did: with codes
** the copy keeps a copy of pVec (the caller's buffer may be scratch),
** without them pVec itself (in an adopted chunk). *ppKept: the vector
** kept, its aux in *pAux. */
int vdbSharedAttachVector(VdbHnswShared *s, sqlite3_int64 nid, const void *pVec, float *pAux,
                          const void **ppKept);
/* Under the read lock: do nodes and chunks exceed their part of cache_mb? */
int vdbSharedOverBudget(VdbHnswShared *s);

/* Under the write lock. */
void vdbSharedDropNode(VdbHnswShared *s, sqlite3_int64 nid);
unsigned char *vdbSharedChunkAt(VdbHnswShared *s, sqlite3_int64 chunkId);
void vdbSharedClear(VdbHnswShared *s);
int vdbSharedCover(VdbHnswShared *s, sqlite3_int64 nNid);
sqlite3_int64 vdbSharedTableBytes(const VdbHnswShared *s);
void vdbSharedEvict(VdbHnswShared *s, sqlite3_int64 chunkBytes);

#endif
