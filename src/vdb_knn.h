/*
** Exact k-nearest-neighbour search over the chunked vector storage.
**
** Without filters every chunk's vector blob is read whole (one contiguous
** read of chunk_size vectors, through the store's chunk scan) and scanned
** with the SIMD kernels; with filters the store's row query yields the
** matching slots ordered by chunk, and each chunk is read whole when many
** of its slots match or vector by vector when few do. A bounded max-heap
** keeps the k best hits. Results are ordered by distance, ties by rowid.
** This is the flat index kind's search, and every kind's answer to a
** distance range or ef_search = 0.
*/
#ifndef VDB_KNN_H
#define VDB_KNN_H
#include "vdb_store.h"

/* Largest k a query may ask for: the heap holds k hits of 16 bytes. */
#define VDB_MAX_K 16384

typedef struct VdbHit {
  double dist;
  sqlite3_int64 rowid;
} VdbHit;

typedef struct VdbKnnQuery {
  VdbStore *pStore;
  const VdbKernels *pK;
  int iVec;                      /* which vector column of the store */
  const VdbColumnDef *pCol;
  VdbVector query;               /* of the column's type and size */
  int k;
  /* Optional distance range: lo < d (or <=) and d < hi (or <=). */
  int hasLo, hasHi, loInclusive, hiInclusive;
  double lo, hi;
  /* Optional pre-filter: the matching rows in slot order
  ** (VDB_ROWS_BY_SLOT); NULL means every row matches. */
  VdbRows *pFilter;
} VdbKnnQuery;

/* Run the search; on success *paHit holds *pnHit sorted hits
** (sqlite3_malloc'd, caller frees). */
int vdbKnnSearch(VdbKnnQuery *q, VdbHit **paHit, int *pnHit);

/* Sort hits by distance, ties by rowid. */
void vdbHitSort(VdbHit *aHit, int nHit);

#endif
