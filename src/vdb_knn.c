/*
** Exact KNN; see vdb_knn.h.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "vdb_knn.h"

/* ---- bounded max-heap of the k best hits --------------------------------- */

typedef struct VdbTopK {
  int k, n;
  VdbHit *a;                 /* a[0] is the worst kept hit */
} VdbTopK;

/* Is x worse than y: farther, or as far with a larger rowid. */
static int vdbHitWorse(const VdbHit *x, const VdbHit *y){
  return x->dist > y->dist || (x->dist==y->dist && x->rowid > y->rowid);
}

static void vdbTopKPush(VdbTopK *h, double dist, sqlite3_int64 rowid){
  VdbHit hit;
  int i;
  hit.dist = dist;
  hit.rowid = rowid;
  if( h->n<h->k ){
    /* Sift up. */
    i = h->n++;
    while( i>0 ){
      int parent = (i-1)/2;
      if( !vdbHitWorse(&hit, &h->a[parent]) ) break;
      h->a[i] = h->a[parent];
      i = parent;
    }
    h->a[i] = hit;
    return;
  }
  if( h->k==0 || !vdbHitWorse(&h->a[0], &hit) ) return;
  /* Replace the root and sift down. */
  i = 0;
  for(;;){
    int c = 2*i+1;
    if( c>=h->n ) break;
    if( c+1<h->n && vdbHitWorse(&h->a[c+1], &h->a[c]) ) c++;
    if( !vdbHitWorse(&h->a[c], &hit) ) break;
    h->a[i] = h->a[c];
    i = c;
  }
  h->a[i] = hit;
}

static int vdbHitCompare(const void *pA, const void *pB){
  const VdbHit *a = (const VdbHit*)pA, *b = (const VdbHit*)pB;
  if( a->dist<b->dist ) return -1;
  if( a->dist>b->dist ) return 1;
  return a->rowid<b->rowid ? -1 : a->rowid>b->rowid;
}

/* ---- distances ------------------------------------------------------------- */

static int vdbInRange(const VdbKnnQuery *q, double d){
  if( q->hasLo && (q->loInclusive ? d<q->lo : d<=q->lo) ) return 0;
  if( q->hasHi && (q->hiInclusive ? d>q->hi : d>=q->hi) ) return 0;
  return 1;
}

static void vdbConsider(VdbKnnQuery *q, VdbTopK *h, const void *pVec, sqlite3_int64 rowid){
  double d;
  if( vdbRawDistance(q->pK, q->pCol->eElem, q->pCol->eMetric, q->pCol->nDim,
                     q->query.pData, pVec, &d) && vdbInRange(q, d) ){
    vdbTopKPush(h, d, rowid);
  }
}

/* ---- scans ------------------------------------------------------------------ */

/* Read chunk iChunk's whole vector blob for the query column into pBuf.
** *ppBlob carries one read handle from chunk to chunk (blob_reopen is
** much cheaper than blob_open); the caller closes it. */
static int vdbReadChunkVectors(VdbKnnQuery *q, sqlite3_blob **ppBlob,
                               sqlite3_int64 iChunk, void *pBuf){
  VdbStore *p = q->pStore;
  int nByte = p->aVecBytes[q->iVec] * p->pDef->chunkSize;
  int rc = SQLITE_ERROR;
  if( *ppBlob ) rc = sqlite3_blob_reopen(*ppBlob, iChunk);
  if( rc!=SQLITE_OK ){
    char zTable[256];
    sqlite3_blob_close(*ppBlob);
    *ppBlob = 0;
    sqlite3_snprintf(sizeof(zTable), zTable, "%s_vectors%02d", p->zName, q->iVec);
    rc = sqlite3_blob_open(p->db, p->zDb, zTable, "vectors", iChunk, 0, ppBlob);
  }
  if( rc==SQLITE_ERROR ) rc = SQLITE_CORRUPT_VTAB;
  if( rc==SQLITE_OK ){
    rc = sqlite3_blob_bytes(*ppBlob)==nByte ? sqlite3_blob_read(*ppBlob, pBuf, nByte, 0)
                                            : SQLITE_CORRUPT_VTAB;
  }
  return rc;
}

/* Every live slot of every chunk. */
static int vdbScanAll(VdbKnnQuery *q, VdbTopK *h, char **pzErr){
  VdbStore *p = q->pStore;
  int chunkSize = p->pDef->chunkSize, nVec = p->aVecBytes[q->iVec];
  sqlite3_stmt *pStmt = 0;
  sqlite3_blob *pBlob = 0;
  unsigned char *pBuf = (unsigned char*)sqlite3_malloc64((sqlite3_uint64)nVec * chunkSize);
  int rc;
  if( pBuf==0 ) return SQLITE_NOMEM;
  rc = vdbStorePrepare(p, sqlite3_mprintf(
      "SELECT chunk_id, validity, rowids FROM \"%w\".\"%w_chunks\" ORDER BY chunk_id",
      p->zDb, p->zName), &pStmt);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    sqlite3_int64 iChunk = sqlite3_column_int64(pStmt, 0);
    const unsigned char *aValid = (const unsigned char*)sqlite3_column_blob(pStmt, 1);
    int nValid = sqlite3_column_bytes(pStmt, 1);
    const unsigned char *aRowid = (const unsigned char*)sqlite3_column_blob(pStmt, 2);
    int nRowid = sqlite3_column_bytes(pStmt, 2);
    int i;
    if( nValid!=chunkSize/8 || nRowid!=chunkSize*8 ){
      rc = vdbStoreCorrupt(p, pzErr, "a chunk's validity or rowid blob has the wrong size");
      break;
    }
    rc = vdbReadChunkVectors(q, &pBlob, iChunk, pBuf);
    if( rc!=SQLITE_OK ) break;
    for(i=0; i<chunkSize; i++){
      if( (aValid[i/8] & (1u << (i%8)))==0 ) continue;
      vdbConsider(q, h, pBuf + (size_t)nVec*i, vdbGetLe64(aRowid + 8*(size_t)i));
    }
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
  else sqlite3_finalize(pStmt);
  sqlite3_blob_close(pBlob);
  sqlite3_free(pBuf);
  return rc;
}

/* The slots the pre-filter yields, grouped by chunk. A chunk with many
** matches is read whole; one with few is read slot by slot. */
static int vdbScanFiltered(VdbKnnQuery *q, VdbTopK *h, char **pzErr){
  VdbStore *p = q->pStore;
  int chunkSize = p->pDef->chunkSize, nVec = p->aVecBytes[q->iVec];
  unsigned char *pBuf = (unsigned char*)sqlite3_malloc64((sqlite3_uint64)nVec * chunkSize);
  VdbHit *aPending = (VdbHit*)sqlite3_malloc64(sizeof(VdbHit) * (sqlite3_uint64)chunkSize);
  int *aOffset = (int*)sqlite3_malloc64(sizeof(int) * (sqlite3_uint64)chunkSize);
  sqlite3_blob *pBlob = 0;
  sqlite3_int64 iChunk = 0;
  int nPending = 0, rc = SQLITE_OK, done = 0;
  (void)pzErr;
  if( pBuf==0 || aPending==0 || aOffset==0 ) rc = SQLITE_NOMEM;
  while( rc==SQLITE_OK && !done ){
    int step = sqlite3_step(q->pFilter);
    sqlite3_int64 nextChunk = 0;
    if( step==SQLITE_ROW ){
      nextChunk = sqlite3_column_int64(q->pFilter, 1);
    }else{
      done = 1;
      if( step!=SQLITE_DONE ){ rc = sqlite3_reset(q->pFilter); if( rc==SQLITE_OK ) rc = step; break; }
    }
    if( nPending>0 && (done || nextChunk!=iChunk) ){
      int i;
      if( nPending*8 >= chunkSize ){
        rc = vdbReadChunkVectors(q, &pBlob, iChunk, pBuf);
        for(i=0; rc==SQLITE_OK && i<nPending; i++){
          vdbConsider(q, h, pBuf + (size_t)nVec*aOffset[i], aPending[i].rowid);
        }
      }else{
        for(i=0; rc==SQLITE_OK && i<nPending; i++){
          VdbSlot slot;
          slot.chunkId = iChunk;
          slot.offset = aOffset[i];
          rc = vdbStoreReadVector(p, q->iVec, &slot, pBuf);
          if( rc==SQLITE_OK ) vdbConsider(q, h, pBuf, aPending[i].rowid);
        }
      }
      nPending = 0;
    }
    if( step==SQLITE_ROW ){
      sqlite3_int64 off = sqlite3_column_int64(q->pFilter, 2);
      if( off<0 || off>=chunkSize || nPending>=chunkSize ){
        rc = SQLITE_CORRUPT_VTAB;
        break;
      }
      iChunk = nextChunk;
      aPending[nPending].rowid = sqlite3_column_int64(q->pFilter, 0);
      aOffset[nPending] = (int)off;
      nPending++;
    }
  }
  sqlite3_reset(q->pFilter);
  sqlite3_blob_close(pBlob);
  sqlite3_free(pBuf);
  sqlite3_free(aPending);
  sqlite3_free(aOffset);
  return rc;
}

int vdbKnnSearch(VdbKnnQuery *q, VdbHit **paHit, int *pnHit, char **pzErr){
  VdbTopK h;
  int rc;
  *paHit = 0;
  *pnHit = 0;
  memset(&h, 0, sizeof(h));
  h.k = q->k;
  if( h.k>0 ){
    h.a = (VdbHit*)sqlite3_malloc64(sizeof(VdbHit) * (sqlite3_uint64)h.k);
    if( h.a==0 ) return SQLITE_NOMEM;
  }
  rc = q->pFilter ? vdbScanFiltered(q, &h, pzErr) : vdbScanAll(q, &h, pzErr);
  if( rc!=SQLITE_OK ){
    sqlite3_free(h.a);
    if( rc==SQLITE_CORRUPT_VTAB && pzErr && *pzErr==0 ){
      vdbStoreCorrupt(q->pStore, pzErr, "a vector chunk is missing or has the wrong size");
    }
    return rc;
  }
  if( h.n>1 ) qsort(h.a, (size_t)h.n, sizeof(VdbHit), vdbHitCompare);
  *paHit = h.a;
  *pnHit = h.n;
  return SQLITE_OK;
}
