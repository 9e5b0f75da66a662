/*
** The process-wide copy of an hnsw index: one per (database file, index)
** in the process, shared by every connection that opens the index, on any
** thread. vdb_index_hnsw.h gives the rules (who holds which lock when);
** this file keeps the registry and the copy's tables, and never reads the
** database: connections read rows and hand over what they read.
**
** Identity. A file is known by its device and inode, not its path, so two
** paths to one file share and a file replaced by another (a restore that
** renames a copy into place) does not. An index is known by the random
** token in its shadow index names (vdb_format.h), so two tables, or a
** table and a VACUUM INTO copy opened later at the same inode, do not
** share by accident.
**
** Memory. The copy is bounded by cache_mb like a private cache: walk
** records (all a node of layer 0 alone needs), the nodes above layer 0,
** vectors and their page table all count. With codes the walk needs a
** vector only for a result, and the copy keeps a copy of that one vector
** (read alone into the connection's scratch buffer): keeping the whole
** chunk of each result, 8 to 32 rows, came to most of the raw vectors
** after a few thousand queries. Without codes every node the
** walk measures needs its vector, and the copy keeps chunk buffers.
** Eviction runs under the write lock, so no walk holds a pointer to what
** it frees: CLOCK over the nodes (a node a walk used since the last sweep
** stays), then every chunk buffer and record page no remaining node
** points into.
*/
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "vdb_index_hnsw.h"

/* ---- the registry --------------------------------------------------------------- */

static pthread_mutex_t vdbSharedRegistryLock = PTHREAD_MUTEX_INITIALIZER;
static VdbHnswShared *vdbSharedList = 0;

static VdbHnswShared *vdbSharedNew(sqlite3_uint64 dev, sqlite3_uint64 ino, const char *zToken,
                                   int nVecBytes, int nCodeBytes, int chunkSize, int m){
  VdbHnswShared *s = (VdbHnswShared*)sqlite3_malloc(sizeof(*s));
  pthread_rwlockattr_t attr;
  if( s==0 ) return 0;
  memset(s, 0, sizeof(*s));
  s->dev = dev;
  s->ino = ino;
  sqlite3_snprintf(sizeof(s->zToken), s->zToken, "%s", zToken);
  s->nVecBytes = nVecBytes;
  s->nCodeBytes = nCodeBytes;
  s->chunkSize = chunkSize;
  s->m = m;
  s->version = -1;
  vdbRecordsInit(&s->recs, nCodeBytes, vdbHnswLayerCap(m, 0), 1, nVecBytes);
  pthread_rwlockattr_init(&attr);
#ifdef PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
  /* glibc prefers readers by default: with walks running back to back on
  ** every thread, a refresh after a commit would wait for a gap that
  ** never comes. No walk takes the read lock twice, so this is safe. */
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
  pthread_rwlock_init(&s->walkLock, &attr);
  pthread_rwlockattr_destroy(&attr);
  pthread_mutex_init(&s->publishLock, 0);
  return s;
}

int vdbSharedAcquire(const char *zFile, const char *zToken, int nVecBytes, int nCodeBytes,
                     int chunkSize, int m, VdbHnswShared **pp){
  struct stat st;
  VdbHnswShared *s;
  *pp = 0;
  if( zFile==0 || zFile[0]==0 || stat(zFile, &st)!=0 ) return SQLITE_OK;
  pthread_mutex_lock(&vdbSharedRegistryLock);
  for(s=vdbSharedList; s; s=s->pNext){
    if( s->dev==(sqlite3_uint64)st.st_dev && s->ino==(sqlite3_uint64)st.st_ino
     && strcmp(s->zToken, zToken)==0 ) break;
  }
  if( s && (s->nVecBytes!=nVecBytes || s->nCodeBytes!=nCodeBytes || s->chunkSize!=chunkSize
            || s->m!=m) ){
    /* Same file and token, other shape: a table dropped and created again
    ** by a build with a token clash is not worth sharing with. */
    s = 0;
  }else if( s==0 ){
    s = vdbSharedNew((sqlite3_uint64)st.st_dev, (sqlite3_uint64)st.st_ino, zToken, nVecBytes, nCodeBytes,
                     chunkSize, m);
    if( s ){
      s->pNext = vdbSharedList;
      vdbSharedList = s;
    }
  }
  if( s ) s->nRef++;
  pthread_mutex_unlock(&vdbSharedRegistryLock);
  *pp = s;
  return SQLITE_OK;
}

void vdbSharedRelease(VdbHnswShared *s){
  VdbHnswShared **pp;
  int isLast;
  if( s==0 ) return;
  pthread_mutex_lock(&vdbSharedRegistryLock);
  isLast = --s->nRef==0;
  if( isLast ){
    for(pp=&vdbSharedList; *pp && *pp!=s; pp=&(*pp)->pNext){}
    if( *pp ) *pp = s->pNext;
  }
  pthread_mutex_unlock(&vdbSharedRegistryLock);
  if( !isLast ) return;
  vdbSharedClear(s);
  vdbRecordsFree(&s->recs);
  sqlite3_free(s->chunks.a);
  pthread_rwlock_destroy(&s->walkLock);
  pthread_mutex_destroy(&s->publishLock);
  sqlite3_free(s);
}

int vdbSharedUsers(VdbHnswShared *s){
  int n;
  if( s==0 ) return 0;
  pthread_mutex_lock(&vdbSharedRegistryLock);
  n = s->nRef;
  pthread_mutex_unlock(&vdbSharedRegistryLock);
  return n;
}

void vdbSharedReadLock(VdbHnswShared *s){ pthread_rwlock_rdlock(&s->walkLock); }
void vdbSharedReadUnlock(VdbHnswShared *s){ pthread_rwlock_unlock(&s->walkLock); }
void vdbSharedWriteLock(VdbHnswShared *s){ pthread_rwlock_wrlock(&s->walkLock); }
void vdbSharedWriteUnlock(VdbHnswShared *s){ pthread_rwlock_unlock(&s->walkLock); }

/* ---- publishing (read lock held) --------------------------------------------------- */

unsigned char *vdbSharedChunkFind(VdbHnswShared *s, sqlite3_int64 chunkId){
  VdbChunkBuf *b;
  unsigned char *aVec = 0;
  pthread_mutex_lock(&s->publishLock);
  b = vdbChunkTableFind(&s->chunks, chunkId);
  if( b ){
    aVec = b->aVec;
    b->isReferenced = 1;
  }
  pthread_mutex_unlock(&s->publishLock);
  return aVec;
}

unsigned char *vdbSharedChunkAdopt(VdbHnswShared *s, sqlite3_int64 chunkId, unsigned char *aVec,
                                   sqlite3_int64 chunkBytes){
  VdbChunkBuf *b;
  unsigned char *aKept = 0;
  pthread_mutex_lock(&s->publishLock);
  b = vdbChunkTableFind(&s->chunks, chunkId);
  if( b ){
    aKept = b->aVec;
  }else if( vdbChunkTableAdd(&s->chunks, chunkId, aVec, &b)==SQLITE_OK ){
    aKept = aVec;
    aVec = 0;
    s->cacheBytes += chunkBytes;
  }
  if( b ) b->isReferenced = 1;
  pthread_mutex_unlock(&s->publishLock);
  /* Lost the race (aKept is the winner's), or no memory to grow the table
  ** (aKept is NULL: the walk fails with SQLITE_NOMEM). */
  sqlite3_free(aVec);
  return aKept;
}

/* Bytes of the copy's own buffer for a vector: the vector, then its aux
** value (vdbRecordsAux). */
static sqlite3_int64 vdbSharedVectorBytes(const VdbHnswShared *s){
  return (sqlite3_int64)s->nVecBytes + (sqlite3_int64)sizeof(float);
}

int vdbSharedAttachVector(VdbHnswShared *s, sqlite3_int64 nid, const void *pVec, float *pAux,
                          const void **ppKept){
  void *pCopy = 0;
  if( s->nCodeBytes ){
    pCopy = sqlite3_malloc64((sqlite3_uint64)vdbSharedVectorBytes(s));
    if( pCopy==0 ) return SQLITE_NOMEM;
    memcpy(pCopy, pVec, (size_t)s->nVecBytes);
    pVec = pCopy;
  }
  pthread_mutex_lock(&s->publishLock);
  *ppKept = vdbRecordsSetVector(&s->recs, nid, pVec, pAux);
  if( pCopy && *ppKept==pCopy ){
    s->cacheBytes += vdbSharedVectorBytes(s);
    s->nVectors++;
    pCopy = 0;
  }
  pthread_mutex_unlock(&s->publishLock);
  sqlite3_free(pCopy);              /* another walk attached it first */
  return *ppKept ? SQLITE_OK : SQLITE_CORRUPT_VTAB;
}

int vdbSharedOverBudget(VdbHnswShared *s){
  sqlite3_int64 budget;
  int isOver;
  pthread_mutex_lock(&s->publishLock);       /* the chunk table grows under it */
  budget = s->budgetBytes - vdbSharedTableBytes(s);
  if( budget < s->budgetBytes/4 ) budget = s->budgetBytes/4;
  isOver = s->cacheBytes > budget;
  pthread_mutex_unlock(&s->publishLock);
  return isOver;
}

/* Can node c be published as its record alone? A node of layer 0 whose
** links and slot fit the record's fields (only a damaged table has one
** that does not: it keeps its VdbCNode, and the walk reads it). */
static int vdbSharedFitsRecord(const VdbHnswShared *s, const VdbCNode *c){
  int i;
  if( c->node.level>0 || c->node.anLink[0]>s->recs.nLinkCap ) return 0;
  if( c->slot.chunkId<0 || c->slot.chunkId>=((sqlite3_int64)1 << (64-VDB_REC_SLOT_SHIFT-1)) ) return 0;
  if( c->slot.offset<0 || c->slot.offset>=(1<<VDB_REC_SLOT_SHIFT) ) return 0;
  for(i=0; i<c->node.anLink[0]; i++){
    if( c->node.aaLink[0][i]<=0 || c->node.aaLink[0][i]>0xffffffff ) return 0;
  }
  return 1;
}

int vdbSharedPublish(VdbHnswShared *s, VdbCNode *c, const void *pCode, int keepNode, VdbCNode **ppKept){
  sqlite3_int64 nid = c->node.nid;
  const VdbRecordHead *h;
  int rc = SQLITE_OK;
  if( !keepNode && !vdbSharedFitsRecord(s, c) ) keepNode = 1;
  *ppKept = 0;
  pthread_mutex_lock(&s->publishLock);
  h = vdbRecordsPublished(&s->recs, nid);
  if( h ){
    /* Published already: by another walk, or as a record alone and now
    ** wanted with its node (nothing a walk may be reading changes). */
    *ppKept = (VdbCNode*)h->pNode;
    if( *ppKept==0 && keepNode ){
      if( s->recs.nCodeBytes ) c->node.pCode = vdbRecordsCode(&s->recs, nid);
      vdbRecordsSetFullNode(&s->recs, nid, c);
      s->cacheBytes += (sqlite3_int64)c->nByte;
      s->nDecoded++;
      *ppKept = c;
      c = 0;
    }
  }else{
    sqlite3_int64 nNew = 0;
    const void *pRecCode = vdbRecordsPublish(&s->recs, nid, pCode, c->node.aaLink[0],
                                             c->node.anLink[0], &nNew);
    s->cacheBytes += nNew;
    if( pRecCode==0 ){
      rc = SQLITE_NOMEM;
    }else{
      if( s->recs.nCodeBytes ) c->node.pCode = pRecCode;
      /* Everything of c is written before the release stores publish it. */
      vdbRecordsSetNode(&s->recs, nid, keepNode ? c : 0, c->rowid, &c->slot, c->node.pVec, c->node.aux);
      s->nNode++;
      if( keepNode ){
        s->cacheBytes += (sqlite3_int64)c->nByte;
        s->nDecoded++;
        *ppKept = c;
        c = 0;
      }
    }
  }
  pthread_mutex_unlock(&s->publishLock);
  sqlite3_free(c);
  return rc;
}

/* ---- changes (write lock held) --------------------------------------------------------- */

void vdbSharedDropNode(VdbHnswShared *s, sqlite3_int64 nid){
  const VdbRecordHead *h = vdbRecordsPublished(&s->recs, nid);
  if( h==0 ){
    vdbRecordsDropLinks(&s->recs, nid);
    return;
  }
  if( h->pNode ){
    s->cacheBytes -= (sqlite3_int64)((VdbCNode*)h->pNode)->nByte;
    s->nDecoded--;
    sqlite3_free(h->pNode);
  }
  if( h->pVec && s->nCodeBytes ){       /* the copy's own buffer */
    s->cacheBytes -= vdbSharedVectorBytes(s);
    s->nVectors--;
    sqlite3_free((void*)h->pVec);
  }
  vdbRecordsClearNode(&s->recs, nid);
  s->nNode--;
}

/* A chunk buffer of the copy, to patch after a commit changed one of its
** vectors; NULL when the copy does not hold that chunk. Patching in place
** keeps every pointer into the chunk valid. */
unsigned char *vdbSharedChunkAt(VdbHnswShared *s, sqlite3_int64 chunkId){
  VdbChunkBuf *b = vdbChunkTableFind(&s->chunks, chunkId);
  return b ? b->aVec : 0;
}

void vdbSharedClear(VdbHnswShared *s){
  sqlite3_int64 i;
  int j;
  for(i=0; i<s->recs.nPage; i++){
    for(j=0; s->recs.apPage[i] && j<VDB_REC_PAGE_NODES; j++){
      if( vdbRecordsHeadAt(&s->recs, i, j)->mark & VDB_REC_NODE ){
        vdbSharedDropNode(s, (i<<VDB_REC_PAGE_SHIFT) + j);
      }
    }
  }
  vdbChunkTableClear(&s->chunks);
  vdbRecordsClear(&s->recs);
  s->cacheBytes = 0;
  s->nNode = 0;
  s->nVectors = 0;
  s->nDecoded = 0;
  s->version = -1;
}

/* Grow the records' page table to cover nids below nNid. Walks find a
** node through it without a bound check beyond nCovered, so it must
** cover every nid of the version before the version is set. */
int vdbSharedCover(VdbHnswShared *s, sqlite3_int64 nNid){
  int rc = vdbRecordsCover(&s->recs, nNid);
  if( rc==SQLITE_OK ) s->nCovered = s->recs.nPage << VDB_REC_PAGE_SHIFT;
  return rc;
}

sqlite3_int64 vdbSharedTableBytes(const VdbHnswShared *s){
  return (sqlite3_int64)s->chunks.nSlot*(sqlite3_int64)sizeof(VdbChunkBuf) + vdbRecordsTableBytes(&s->recs);
}

/* Free the record pages of which no node remains (marked in the
** records' own per-page array). */
static void vdbSharedEvictRecords(VdbHnswShared *s){
  sqlite3_int64 i;
  int j;
  if( s->recs.nPageAlloc==0 ) return;
  memset(s->recs.aUsed, 0, (size_t)s->recs.nPage);
  for(i=0; i<s->recs.nPage; i++){
    for(j=0; s->recs.apPage[i] && j<VDB_REC_PAGE_NODES && !s->recs.aUsed[i]; j++){
      if( vdbRecordsHeadAt(&s->recs, i, j)->mark & VDB_REC_NODE ) s->recs.aUsed[i] = 1;
    }
  }
  s->cacheBytes -= vdbRecordsKeep(&s->recs, s->recs.aUsed);
}

/* Over budget: one CLOCK pass over the nodes frees those no walk used
** since the last pass (and clears the others' marks), then every chunk
** buffer and code page no remaining node points into goes. A second pass
** runs if the first freed too little (every node had been used). */
void vdbSharedEvict(VdbHnswShared *s, sqlite3_int64 chunkBytes){
  sqlite3_int64 budget = s->budgetBytes - vdbSharedTableBytes(s), i;
  int pass, j;
  if( budget < s->budgetBytes/4 ) budget = s->budgetBytes/4;
  if( s->cacheBytes<=budget ) return;
  for(pass=0; pass<2 && s->cacheBytes>budget - budget/4; pass++){
    for(j=0; j<s->chunks.nSlot; j++) s->chunks.a[j].nLive = 0;
    for(i=0; i<s->recs.nPage; i++){
      for(j=0; s->recs.apPage[i] && j<VDB_REC_PAGE_NODES; j++){
        VdbRecordHead *h = vdbRecordsHeadAt(&s->recs, i, j);
        if( !(h->mark & VDB_REC_NODE) ) continue;
        if( h->isReferenced ){
          VdbChunkBuf *b = h->pVec && !s->nCodeBytes
                         ? vdbChunkTableFind(&s->chunks, vdbRecordsSlot(h).chunkId) : 0;
          h->isReferenced = 0;
          if( b ) b->nLive++;
        }else{
          vdbSharedDropNode(s, (i<<VDB_REC_PAGE_SHIFT) + j);
        }
      }
    }
    for(j=0; j<s->chunks.nSlot; j++){
      VdbChunkBuf *b = &s->chunks.a[j];
      if( b->chunkId && b->aVec && b->nLive==0 ){
        sqlite3_free(b->aVec);
        b->aVec = 0;
        s->chunks.n--;
        s->cacheBytes -= chunkBytes;
      }
    }
    /* Same size: drops the freed entries; if even that fails for memory,
    ** the whole copy goes (the next walk reloads it). */
    if( vdbChunkTableRehash(&s->chunks, s->chunks.nSlot)!=SQLITE_OK ){
      vdbSharedClear(s);
      break;
    }
    vdbSharedEvictRecords(s);
    s->nEvictions++;
  }
}
