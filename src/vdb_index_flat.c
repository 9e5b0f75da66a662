/*
** The "flat" index kind: no index at all. Every search is the exact scan
** of the store's chunks (vdb_knn.c), so the kind has no shadow table, no
** parameters and nothing to keep in step with the rows.
*/
#include "vdb_index.h"

extern const VdbIndexKind vdbIndexFlat;

static int vdbFlatOpen(VdbStore *pStore, int iVec, const VdbKernels *pK, VdbIndex **ppOut){
  VdbIndex *p = (VdbIndex*)sqlite3_malloc(sizeof(*p));
  (void)pK;
  if( p==0 ) return SQLITE_NOMEM;
  p->pKind = &vdbIndexFlat;
  p->pStore = pStore;
  p->iVec = iVec;
  p->pCol = &pStore->pDef->aCol[pStore->aVecCol[iVec]];
  *ppOut = p;
  return SQLITE_OK;
}

static void vdbFlatClose(VdbIndex *p){
  sqlite3_free(p);
}

static int vdbFlatSearch(VdbIndex *p, VdbKnnQuery *q, int ef, VdbHit **paHit, int *pnHit){
  (void)p; (void)ef;
  return vdbKnnSearch(q, paHit, pnHit);
}

/* Nothing beyond the table's own figures. */
static int vdbFlatStats(VdbIndex *p, VdbStatFn xAdd, void *pCtx){
  (void)p; (void)xAdd; (void)pCtx;
  return SQLITE_OK;
}

/* Methods with nothing to do. */
static int vdbFlatTable(VdbStore *pStore, int iVec){ (void)pStore; (void)iVec; return SQLITE_OK; }
static int vdbFlatRename(VdbStore *pStore, int iVec, const char *zNew){
  (void)pStore; (void)iVec; (void)zNew;
  return SQLITE_OK;
}
static int vdbFlatConfigure(VdbIndex *p, const char *zParam, int v){
  (void)p; (void)zParam; (void)v;
  return SQLITE_NOTFOUND;
}
static int vdbFlatSync(VdbIndex *p, int bOtherCommit){ (void)p; (void)bOtherCommit; return SQLITE_OK; }
static int vdbFlatInsert(VdbIndex *p, sqlite3_int64 rowid, const VdbSlot *pSlot, const void *pVec){
  (void)p; (void)rowid; (void)pSlot; (void)pVec;
  return SQLITE_OK;
}
static int vdbFlatDelete(VdbIndex *p, sqlite3_int64 rowid){ (void)p; (void)rowid; return SQLITE_OK; }
static int vdbFlatMove(VdbIndex *p, sqlite3_int64 oldRowid, sqlite3_int64 newRowid){
  (void)p; (void)oldRowid; (void)newRowid;
  return SQLITE_OK;
}
static int vdbFlatFlush(VdbIndex *p){ (void)p; return SQLITE_OK; }
static void vdbFlatDiscard(VdbIndex *p){ (void)p; }
static int vdbFlatCheck(VdbIndex *p){ (void)p; return SQLITE_OK; }

const VdbIndexKind vdbIndexFlat = {
  "flat", 0, 0,
  0,                         /* nChunkTargetBytes: the store's, for scans */
  0,                         /* xValidate: any vector column, any metric */
  0,                         /* xSignature: nothing beyond the column's */
  0,                         /* xShadowName: no shadow table */
  vdbFlatTable, vdbFlatTable, vdbFlatRename,
  vdbFlatOpen, vdbFlatClose, vdbFlatConfigure, vdbFlatSync,
  vdbFlatInsert, vdbFlatDelete, vdbFlatMove, vdbFlatSearch,
  vdbFlatFlush, vdbFlatDiscard, vdbFlatCheck, vdbFlatStats,
  0                          /* xEndTransaction: nothing kept per transaction */
};
