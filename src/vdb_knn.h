/*
** Exact k-nearest-neighbour search over the chunked vector storage.
**
** Without filters every chunk's vector blob is read whole (one contiguous
** read of chunk_size vectors) and scanned with the SIMD kernels; with
** filters the pre-filter statement yields the matching slots ordered by
** chunk, and each chunk is read whole when many of its slots match or
** vector by vector when few do. A bounded max-heap keeps the k best hits.
** Results are ordered by distance, ties by rowid.
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
  /* Optional pre-filter: rows (rowid, chunk_id, chunk_offset) ordered by
  ** chunk_id; NULL means every row matches. */
  sqlite3_stmt *pFilter;
} VdbKnnQuery;

/* Run the search; on success *paHit holds *pnHit sorted hits
** (sqlite3_malloc'd, caller frees). */
int vdbKnnSearch(VdbKnnQuery *q, VdbHit **paHit, int *pnHit, char **pzErr);

#endif
