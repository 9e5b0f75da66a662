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

/* Every live slot of every chunk. */
static int vdbScanAll(VdbKnnQuery *q, VdbTopK *h){
  VdbStore *p = q->pStore;
  int chunkSize = p->pDef->chunkSize, nVec = p->aVecBytes[q->iVec];
  VdbChunkScan scan;
  int rc = vdbChunkScanOpen(p, q->iVec, &scan);
  while( rc==SQLITE_OK && (rc = vdbChunkScanNext(&scan))==SQLITE_ROW ){
    int i;
    rc = SQLITE_OK;
    for(i=0; i<chunkSize; i++){
      if( (scan.aValid[i/8] & (1u << (i%8)))==0 ) continue;
      vdbConsider(q, h, scan.aVec + (size_t)nVec*i, vdbGetLe64(scan.aRowid + 8*(size_t)i));
    }
  }
  vdbChunkScanClose(&scan);
  return rc==SQLITE_DONE ? SQLITE_OK : rc;
}

/* The slots the pre-filter yields, grouped by chunk. A chunk with many
** matches is read whole; one with few is read slot by slot. */
static int vdbScanFiltered(VdbKnnQuery *q, VdbTopK *h){
  VdbStore *p = q->pStore;
  int chunkSize = p->pDef->chunkSize, nVec = p->aVecBytes[q->iVec];
  sqlite3_int64 *aRowid = (sqlite3_int64*)sqlite3_malloc64(sizeof(sqlite3_int64) * (sqlite3_uint64)chunkSize);
  int *aOffset = (int*)sqlite3_malloc64(sizeof(int) * (sqlite3_uint64)chunkSize);
  VdbChunkScan scan;
  sqlite3_int64 iChunk = 0;
  int nPending = 0, done = 0;
  int rc = vdbChunkScanOpen(p, q->iVec, &scan);
  if( aRowid==0 || aOffset==0 ) rc = SQLITE_NOMEM;
  while( rc==SQLITE_OK && !done ){
    int step = vdbRowsStep(q->pFilter);
    VdbSlot slot;
    slot.chunkId = 0;
    if( step==SQLITE_ROW ){
      rc = vdbRowsSlot(q->pFilter, &slot);
      if( rc!=SQLITE_OK ) break;
    }else if( step==SQLITE_DONE ){
      done = 1;
    }else{
      rc = step;
      break;
    }
    if( nPending>0 && (done || slot.chunkId!=iChunk) ){
      int i;
      if( nPending*8 >= chunkSize ){
        rc = vdbChunkScanRead(&scan, iChunk);
        for(i=0; rc==SQLITE_OK && i<nPending; i++){
          vdbConsider(q, h, scan.aVec + (size_t)nVec*aOffset[i], aRowid[i]);
        }
      }else{
        for(i=0; rc==SQLITE_OK && i<nPending; i++){
          VdbSlot one;
          one.chunkId = iChunk;
          one.offset = aOffset[i];
          rc = vdbStoreReadVector(p, q->iVec, &one, scan.aVec);
          if( rc==SQLITE_OK ) vdbConsider(q, h, scan.aVec, aRowid[i]);
        }
      }
      nPending = 0;
    }
    if( step==SQLITE_ROW ){
      if( nPending>=chunkSize ){
        rc = SQLITE_CORRUPT_VTAB;
        break;
      }
      iChunk = slot.chunkId;
      aRowid[nPending] = vdbRowsRowid(q->pFilter);
      aOffset[nPending] = slot.offset;
      nPending++;
    }
  }
  vdbRowsReset(q->pFilter);
  vdbChunkScanClose(&scan);
  sqlite3_free(aRowid);
  sqlite3_free(aOffset);
  return rc;
}

void vdbHitSort(VdbHit *aHit, int nHit){
  if( nHit>1 ) qsort(aHit, (size_t)nHit, sizeof(VdbHit), vdbHitCompare);
}

int vdbKnnSearch(VdbKnnQuery *q, VdbHit **paHit, int *pnHit){
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
  rc = q->pFilter ? vdbScanFiltered(q, &h) : vdbScanAll(q, &h);
  if( rc!=SQLITE_OK ){
    sqlite3_free(h.a);
    if( rc==SQLITE_CORRUPT_VTAB && q->pStore->zErrMsg==0 ){
      vdbStoreCorrupt(q->pStore, "a vector chunk is missing or has the wrong size");
    }
    return rc;
  }
  vdbHitSort(h.a, h.n);
  *paHit = h.a;
  *pnHit = h.n;
  return SQLITE_OK;
}
