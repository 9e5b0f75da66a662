/*
** HNSW graphs kept in SQLite shadow tables, with a per-connection cache.
**
** For vector column NN of table T with INDEXED BY hnsw(...):
**
**   T_hnswNN(nid INTEGER PRIMARY KEY, rowid INTEGER NOT NULL,
**            chunk_id INTEGER NOT NULL, chunk_offset INTEGER NOT NULL,
**            level INTEGER NOT NULL, links BLOB NOT NULL)
**
** One row per graph node. nid is allocated from T_info's hnswNN_next_nid
** and never reused, so an edge can never point at a different row than
** the one it was made for. The node's vector is not copied: it is the
** row's vector in its chunk slot (chunk_id, chunk_offset), which never
** moves while the node lives (a new vector gets a new node). `links`
** has a fixed size for the node's level: for each layer 0..level a
** little-endian u16 count followed by that layer's capacity
** (vdbHnswLayerCap: 3M on layer 0, M above) of little-endian int64 nids, unused slots zero.
** T_info also holds hnswNN_entry and hnswNN_entry_level.
**
** The cache maps nid to decoded nodes. Coherence:
**   - changes are written back at xSync and xSavepoint (and early when the
**     cache exceeds its budget inside a write), so a bulk load writes each
**     node once;
**   - xRollback and xRollbackTo discard the cache: the shadow tables, which
**     SQLite's journal restored, are the truth;
**   - before each statement's first use, PRAGMA data_version tells whether
**     another connection committed; if so the cache is discarded.
** Every row read back is validated; anything malformed is
** SQLITE_CORRUPT_VTAB.
*/
#ifndef VDB_HNSW_STORE_H
#define VDB_HNSW_STORE_H
#include "vdb_hnsw.h"
#include "vdb_knn.h"
#include "vdb_store.h"

typedef struct VdbHnswStore VdbHnswStore;

/* Default cache budget per index; the 'cache_mb=N' command changes it. */
#define VDB_HNSW_DEFAULT_CACHE_MB 256

int vdbHnswStoreOpen(VdbStore *pStore, int iVec, const VdbKernels *pK, VdbHnswStore **ppOut);
void vdbHnswStoreClose(VdbHnswStore *p);

/* Create the shadow table and its indexes (zToken makes index names unique). */
int vdbHnswStoreCreate(VdbStore *pStore, int iVec, const char *zToken);

/* Start of a statement's use: discard the cache if another connection
** committed since it was filled. */
int vdbHnswStoreSync(VdbHnswStore *p);

int vdbHnswStoreInsert(VdbHnswStore *p, sqlite3_int64 rowid, const VdbSlot *pSlot, const float *pVec);
int vdbHnswStoreDelete(VdbHnswStore *p, sqlite3_int64 rowid);
int vdbHnswStoreMoveRowid(VdbHnswStore *p, sqlite3_int64 oldRowid, sqlite3_int64 newRowid);

/* Filter on rowids for searches; non-zero keeps the row. */
typedef int (*VdbRowFilter)(void *pArg, sqlite3_int64 rowid);

/* The k nearest rows by a beam of width ef, as (distance, rowid) sorted by
** distance then rowid; *paHit is sqlite3_malloc'd. */
int vdbHnswStoreSearch(VdbHnswStore *p, const float *pQuery, int k, int ef,
                       VdbRowFilter xFilter, void *pFilterArg, VdbHit **paHit, int *pnHit);

/* Write back every change (xSync, xSavepoint). */
int vdbHnswStoreFlush(VdbHnswStore *p);
/* Forget everything cached (xRollback, xRollbackTo). */
void vdbHnswStoreDiscard(VdbHnswStore *p);

int vdbHnswStoreSetCacheMb(VdbHnswStore *p, int mb);

/* Integrity: graph invariants, every node's row exists with that slot,
** node count equals row count. SQLITE_OK with *pzErr NULL when sound. */
int vdbHnswStoreCheck(VdbHnswStore *p, char **pzErr);

/* What damage an operation that returned SQLITE_CORRUPT_VTAB found in the
** stored graph (sqlite3_malloc'd; the caller frees it), or NULL if it
** said nothing. Clears it. */
char *vdbHnswStoreTakeCorrupt(VdbHnswStore *p);

/* Statistics for vectordb_debug-style reporting and tests. */
typedef struct VdbHnswStats {
  sqlite3_int64 nCached, nLoaded, nDiscards, nFlushedNodes;
  sqlite3_int64 cacheBytes;
} VdbHnswStats;
void vdbHnswStoreStats(VdbHnswStore *p, VdbHnswStats *pStats);

#endif
