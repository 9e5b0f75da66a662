/*
** HNSW graphs in shadow tables, with a per-connection node cache; see
** vdb_hnsw_store.h for the layout and the coherence rules.
*/
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "vdb_hnsw_store.h"

typedef struct VdbSlotEntry {
  sqlite3_int64 nid;                /* 0: empty (nids start at 1) */
  struct VdbCNode *pNode;
} VdbSlotEntry;

/* Node ids below this get an entry in the store's flat nid table. */
#define VDB_NID_TABLE_MAX (1<<24)

/* A cached node: the algorithm's view first, then bookkeeping; the link
** arrays live in the same allocation, after the struct. The vector is not
** copied: node.pVec points into the cached chunk of vectors it belongs
** to, and is valid while chunkEpoch equals the store's (a chunk is only
** freed by bumping the store's epoch, between operations). */
typedef struct VdbCNode VdbCNode;
struct VdbCNode {
  VdbHnswNode node;
  sqlite3_int64 rowid;
  VdbSlot slot;
  unsigned int chunkEpoch;          /* 0: node.pVec not resolved yet */
  unsigned char isDirty;
  unsigned char isRemoved;
  unsigned char isReferenced;       /* used since the clock hand last passed */
  VdbCNode *pDirtyNext;
  size_t nByte;
};

/* The vectors of one chunk (T_vectorsNN row), read with one sequential
** BLOB read. Reading a single vector at an offset of a chunk BLOB makes
** SQLite walk the BLOB's overflow-page chain up to that offset, about 64
** page reads for a 1,024-row chunk, so loading nodes one vector at a time
** cost ~40 ms per cold query at 200,000 rows; reading whole chunks makes
** every later node of the chunk free. */
/* What the flat nid table knows of one node id. The two halves live
** apart: the node goes when it is evicted, while its vector stays usable
** until chunk buffers are freed. Together, a walk that scored a neighbour
** (reading pVec) finds the same line in cache when it expands it (pNode). */
typedef struct VdbNidEntry {
  struct VdbCNode *pNode;          /* the cached node; NULL: not cached */
  const float *pVec;               /* its vector in a chunk buffer; NULL: not known */
  float invNorm;                   /* cosine only */
} VdbNidEntry;

typedef struct VdbChunkBuf {
  sqlite3_int64 chunkId;            /* 0: empty slot */
  float *aVec;                      /* chunkSize x dim */
  unsigned char isReferenced;       /* used since the clock hand last passed */
} VdbChunkBuf;

struct VdbHnswStore {
  VdbStore *pStore;
  int iVec;
  const VdbColumnDef *pCol;
  VdbHnsw graph;
  char zSuffix[16];                 /* "hnswNN" */
  /* nid -> node, open addressing with linear probing: a lookup reads only
  ** this table (one cache line, usually), not the nodes it passes. */
  VdbSlotEntry *aHash;
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
  /* chunk_id -> vectors, open addressing, at most half full. */
  VdbChunkBuf *aChunk;
  int nChunkSlot, nChunk;
  unsigned int chunkEpoch;          /* bumped whenever a chunk buffer is freed */
  sqlite3_int64 cacheBytes, budgetBytes;
  int infoLoaded;
  int inFlush;                      /* flushing: the writes call xSavepoint again */
  int nActive;                      /* operations under way (they nest) */
  int discardPending;               /* a discard asked for while nActive>0 */
  sqlite3_int64 nextNid;
  int nextNidChanged;
  int haveDataVersion;
  sqlite3_int64 dataVersion;
  /* The row a node being created belongs to (set around vdbHnswInsert). */
  sqlite3_int64 pendingRowid;
  VdbSlot pendingSlot;
  sqlite3_stmt *pLoad, *pSave, *pErase, *pByRowid, *pTop, *pDataVersion;
  sqlite3_stmt *pInfoGet, *pInfoSet, *pInfoDel, *pMoveRowid;
  VdbHnswStats stats;
  char *zCorrupt;                  /* what damage was found, for the error message */
};

#define VDB_HNSW_SEED 0x5eedf00d12345678ull

/* ---- helpers ------------------------------------------------------------------ */

/* Say what is wrong with the stored graph, for vdbHnswStoreTakeCorrupt,
** after the name of its shadow table; returns SQLITE_CORRUPT_VTAB. The
** latest finding wins. */
static int vdbGraphCorrupt(VdbHnswStore *p, const char *zFmt, ...){
  va_list ap;
  char *zWhat;
  va_start(ap, zFmt);
  zWhat = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  sqlite3_free(p->zCorrupt);
  p->zCorrupt = zWhat ? sqlite3_mprintf("%s_%s: %s", p->pStore->zName, p->zSuffix, zWhat) : 0;
  sqlite3_free(zWhat);
  return SQLITE_CORRUPT_VTAB;
}

static int vdbCap(const VdbHnswStore *p, int layer){
  return vdbHnswLayerCap(p->pCol->index.m, layer);
}

/* Bytes of the links blob of a node of this level. */
static int vdbLinksBytes(const VdbHnswStore *p, int level){
  int l, n = 0;
  for(l=0; l<=level; l++) n += 2 + 8*vdbCap(p, l);
  return n;
}

static unsigned int vdbBucket(const VdbHnswStore *p, sqlite3_int64 nid){
  return (unsigned int)(((sqlite3_uint64)nid * 0x9E3779B97F4A7C15ull) >> p->hashShift);
}

static VdbCNode *vdbLookup(VdbHnswStore *p, sqlite3_int64 nid){
  unsigned int h, mask = (unsigned)(p->nHash-1);
  if( nid>=0 && nid<p->nByNid ) return p->aByNid[nid].pNode;
  if( p->nHash==0 ) return 0;
  for(h=vdbBucket(p, nid); p->aHash[h].nid; h=(h+1)&mask){
    if( p->aHash[h].nid==nid ) return p->aHash[h].pNode;
  }
  return 0;
}

static void vdbSlotPut(VdbHnswStore *p, VdbCNode *c){
  unsigned int h, mask = (unsigned)(p->nHash-1);
  for(h=vdbBucket(p, c->node.nid); p->aHash[h].nid; h=(h+1)&mask){}
  p->aHash[h].nid = c->node.nid;
  p->aHash[h].pNode = c;
}

/* Chunk buffers went: no remembered vector pointer may be used. */
static void vdbForgetVectors(VdbHnswStore *p){
  sqlite3_int64 i;
  for(i=0; i<p->nByNid; i++) p->aByNid[i].pVec = 0;
}

/* Grow the flat table to cover nid, if nid is small enough. Nodes already
** cached with nids in the new range come over from the hash, so the table
** stays authoritative below its size. Returns non-zero if nid is covered;
** a failed growth only leaves the slow paths to answer for nid. */
static int vdbNidTableCover(VdbHnswStore *p, sqlite3_int64 nid){
  sqlite3_int64 n, nOld = p->nByNid;
  VdbNidEntry *aNew;
  int i;
  if( nid<0 || nid>=VDB_NID_TABLE_MAX ) return 0;
  if( nid<nOld ) return 1;
  n = nOld ? nOld : 4096;
  while( n<=nid ) n *= 2;
  aNew = (VdbNidEntry*)sqlite3_realloc64(p->aByNid, sizeof(VdbNidEntry)*(sqlite3_uint64)n);
  if( aNew==0 ) return 0;
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
static void vdbRememberVector(VdbHnswStore *p, sqlite3_int64 nid, const float *pVec, float invNorm){
  if( pVec==0 ? (nid<0 || nid>=p->nByNid) : !vdbNidTableCover(p, nid) ) return;
  p->aByNid[nid].pVec = pVec;
  p->aByNid[nid].invNorm = invNorm;
}

/* Resize to nSlot entries (a power of two) and re-place every node. */
static int vdbHashResize(VdbHnswStore *p, int nSlot){
  VdbSlotEntry *aOld = p->aHash;
  int nOld = p->nHash, i, bits = 0;
  VdbSlotEntry *aNew = (VdbSlotEntry*)sqlite3_malloc64(sizeof(VdbSlotEntry)*(sqlite3_uint64)nSlot);
  if( aNew==0 ) return SQLITE_NOMEM;
  memset(aNew, 0, sizeof(VdbSlotEntry)*(size_t)nSlot);
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

static int vdbHashInsert(VdbHnswStore *p, VdbCNode *c){
  if( (p->nNode+1)*2 > p->nHash ){
    int rc = vdbHashResize(p, p->nHash ? p->nHash*2 : 2048);
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
static void vdbHashRemove(VdbHnswStore *p, VdbCNode *c){
  unsigned int mask = (unsigned)(p->nHash-1), h, j;
  for(h=vdbBucket(p, c->node.nid); p->aHash[h].nid && p->aHash[h].pNode!=c; h=(h+1)&mask){}
  if( p->aHash[h].nid==0 ) return;
  if( c->node.nid<p->nByNid ) p->aByNid[c->node.nid].pNode = 0;
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

/* A node with room for its level's links and its vector. */
static VdbCNode *vdbNewCNode(VdbHnswStore *p, sqlite3_int64 nid, int level){
  size_t nLinks = 0, nByte;
  VdbCNode *c;
  sqlite3_int64 *pLink;
  int l;
  for(l=0; l<=level; l++) nLinks += (size_t)vdbCap(p, l);
  nByte = sizeof(VdbCNode) + nLinks*sizeof(sqlite3_int64);
  c = (VdbCNode*)sqlite3_malloc64(nByte);
  if( c==0 ) return 0;
  memset(c, 0, sizeof(VdbCNode));
  c->nByte = nByte;
  c->node.nid = nid;
  c->node.level = level;
  pLink = (sqlite3_int64*)(c+1);
  for(l=0; l<=level; l++){
    c->node.aaLink[l] = pLink;
    pLink += vdbCap(p, l);
  }
  return c;
}

/* ---- chunks of vectors ---------------------------------------------------------- */

static unsigned int vdbChunkBucket(sqlite3_int64 chunkId, int nSlot){
  return (unsigned int)(((sqlite3_uint64)chunkId * 0x9E3779B97F4A7C15ull) >> 32) & (unsigned)(nSlot-1);
}

static VdbChunkBuf *vdbChunkFind(VdbHnswStore *p, sqlite3_int64 chunkId){
  unsigned int h;
  if( p->nChunkSlot==0 ) return 0;
  for(h=vdbChunkBucket(chunkId, p->nChunkSlot); p->aChunk[h].chunkId; h=(h+1)&(unsigned)(p->nChunkSlot-1)){
    if( p->aChunk[h].chunkId==chunkId ) return &p->aChunk[h];
  }
  return 0;
}

/* Rebuild the table with nSlot slots (a power of two), keeping the
** entries that have vectors. */
static int vdbChunkRehash(VdbHnswStore *p, int nSlot){
  VdbChunkBuf *aOld = p->aChunk;
  int nOld = p->nChunkSlot, i;
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
  p->aChunk = aNew;
  p->nChunkSlot = nSlot;
  return SQLITE_OK;
}

/* Bytes of one chunk's vectors. */
static sqlite3_int64 vdbChunkBytes(const VdbHnswStore *p){
  return (sqlite3_int64)sizeof(float)*p->pCol->nDim*p->pStore->pDef->chunkSize;
}

/* Read a chunk's vectors into the cache. */
static int vdbChunkLoad(VdbHnswStore *p, sqlite3_int64 chunkId, VdbChunkBuf **ppBuf){
  float *aVec;
  unsigned int h;
  int rc = SQLITE_OK;
  if( (p->nChunk+1)*2 > p->nChunkSlot ){
    rc = vdbChunkRehash(p, p->nChunkSlot ? p->nChunkSlot*2 : 64);
    if( rc!=SQLITE_OK ) return rc;
  }
  aVec = (float*)sqlite3_malloc64((sqlite3_uint64)vdbChunkBytes(p));
  if( aVec==0 ) return SQLITE_NOMEM;
  rc = vdbStoreReadChunk(p->pStore, p->iVec, chunkId, aVec);
  if( rc!=SQLITE_OK ){
    sqlite3_free(aVec);
    return rc;
  }
  for(h=vdbChunkBucket(chunkId, p->nChunkSlot); p->aChunk[h].chunkId; h=(h+1)&(unsigned)(p->nChunkSlot-1)){}
  p->aChunk[h].chunkId = chunkId;
  p->aChunk[h].aVec = aVec;
  p->aChunk[h].isReferenced = 1;
  p->nChunk++;
  p->cacheBytes += vdbChunkBytes(p);
  *ppBuf = &p->aChunk[h];
  return SQLITE_OK;
}

/* Free every chunk buffer; every node's pVec becomes stale. */
static void vdbChunkFreeAll(VdbHnswStore *p){
  int i;
  for(i=0; i<p->nChunkSlot; i++){
    sqlite3_free(p->aChunk[i].aVec);
    p->aChunk[i].aVec = 0;
    p->aChunk[i].chunkId = 0;
  }
  p->cacheBytes -= p->nChunk*vdbChunkBytes(p);
  p->nChunk = 0;
  p->chunkEpoch++;
  vdbForgetVectors(p);
}

/* Over budget after evicting nodes: free the chunks not used since the
** last sweep (CLOCK with one pass), and clear the others' marks. */
static void vdbChunkEvict(VdbHnswStore *p){
  int i, nFreed = 0;
  for(i=0; i<p->nChunkSlot; i++){
    VdbChunkBuf *b = &p->aChunk[i];
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
    p->nChunk -= nFreed;
    p->cacheBytes -= nFreed*vdbChunkBytes(p);
    p->chunkEpoch++;
    vdbForgetVectors(p);
    /* Same size: cannot fail for want of room, but may for memory; if it
    ** does, drop every chunk rather than keep tombstones. */
    if( vdbChunkRehash(p, p->nChunkSlot)!=SQLITE_OK ) vdbChunkFreeAll(p);
  }
}

/* Point the node's pVec at its vector in its chunk, reading the chunk if
** it is not cached. */
static int vdbAttachVector(VdbHnswStore *p, VdbCNode *c){
  VdbChunkBuf *b = vdbChunkFind(p, c->slot.chunkId);
  if( b==0 ){
    int rc = vdbChunkLoad(p, c->slot.chunkId, &b);
    if( rc!=SQLITE_OK ) return rc;
  }
  b->isReferenced = 1;
  c->node.pVec = b->aVec + (size_t)c->slot.offset*(size_t)p->pCol->nDim;
  if( p->graph.params.eMetric==VDB_METRIC_COSINE ){
    c->node.invNorm = vdbHnswInvNorm(p->graph.pK, c->node.pVec, p->pCol->nDim);
  }
  c->chunkEpoch = p->chunkEpoch;
  return SQLITE_OK;
}

static int vdbPrepare(VdbHnswStore *p, sqlite3_stmt **pp, const char *zFmt){
  VdbStore *s = p->pStore;
  if( *pp ) return SQLITE_OK;
  return vdbStorePrepare(s, sqlite3_mprintf(zFmt, s->zDb, s->zName, p->zSuffix), pp);
}

static int vdbStepReset(sqlite3_stmt *pStmt){
  int rc = sqlite3_step(pStmt);
  int rc2 = sqlite3_reset(pStmt);
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ) return rc2;
  return rc2!=SQLITE_OK ? rc2 : rc;
}

/* ---- T_info ----------------------------------------------------------------------- */

static int vdbInfoGet(VdbHnswStore *p, const char *zKey, sqlite3_int64 *pVal, int *pFound){
  VdbStore *s = p->pStore;
  int rc = SQLITE_OK;
  char zFull[64];
  *pFound = 0;
  if( p->pInfoGet==0 ){
    rc = vdbStorePrepare(s, sqlite3_mprintf("SELECT value FROM \"%w\".\"%w_info\" WHERE key=?1",
                                            s->zDb, s->zName), &p->pInfoGet);
    if( rc!=SQLITE_OK ) return rc;
  }
  sqlite3_snprintf(sizeof(zFull), zFull, "%s_%s", p->zSuffix, zKey);
  sqlite3_bind_text(p->pInfoGet, 1, zFull, -1, SQLITE_STATIC);
  if( sqlite3_step(p->pInfoGet)==SQLITE_ROW ){
    if( sqlite3_column_type(p->pInfoGet, 0)!=SQLITE_INTEGER ){
      rc = vdbGraphCorrupt(p, "%s_info key %s is not an integer", p->pStore->zName, zFull);
    }
    *pVal = sqlite3_column_int64(p->pInfoGet, 0);
    *pFound = 1;
  }
  {
    int rc2 = sqlite3_reset(p->pInfoGet);
    return rc!=SQLITE_OK ? rc : rc2;
  }
}

/* Flushes write with plain single-row DELETE and INSERT statements, never
** INSERT OR REPLACE or UPDATE: those need a statement journal, and a nested
** statement that opens one while SQLite is starting the user's statement
** (xSavepoint runs just before the statement's own journal begins) opens
** the user statement's savepoint early, so that the flush would land
** inside it and be undone if that statement failed -- while the cache,
** discarded by xRollbackTo, no longer holds the changes either. */
static int vdbInfoSet(VdbHnswStore *p, const char *zKey, sqlite3_int64 val, int isDelete){
  VdbStore *s = p->pStore;
  char zFull[64];
  int rc = SQLITE_OK;
  if( p->pInfoDel==0 ){
    rc = vdbStorePrepare(s, sqlite3_mprintf("DELETE FROM \"%w\".\"%w_info\" WHERE key=?1",
                                            s->zDb, s->zName), &p->pInfoDel);
  }
  if( rc==SQLITE_OK && p->pInfoSet==0 ){
    rc = vdbStorePrepare(s, sqlite3_mprintf("INSERT INTO \"%w\".\"%w_info\"(key, value) VALUES (?1, ?2)",
                                            s->zDb, s->zName), &p->pInfoSet);
  }
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_snprintf(sizeof(zFull), zFull, "%s_%s", p->zSuffix, zKey);
  sqlite3_bind_text(p->pInfoDel, 1, zFull, -1, SQLITE_STATIC);
  rc = vdbStepReset(p->pInfoDel);
  if( rc==SQLITE_OK && !isDelete ){
    sqlite3_bind_text(p->pInfoSet, 1, zFull, -1, SQLITE_STATIC);
    sqlite3_bind_int64(p->pInfoSet, 2, val);
    rc = vdbStepReset(p->pInfoSet);
  }
  return rc;
}

/* Entry point and next nid, read once per cache lifetime. */
static int vdbLoadInfo(VdbHnswStore *p){
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
  p->infoLoaded = 1;
  return SQLITE_OK;
}

/* ---- loading and saving nodes ------------------------------------------------------- */

static int vdbLoadNode(VdbHnswStore *p, sqlite3_int64 nid, VdbCNode **ppNode){
  VdbCNode *c = 0;
  int rc, level, l, i;
  const unsigned char *aLinks;
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
  aLinks = (const unsigned char*)sqlite3_column_blob(p->pLoad, 4);
  if( level<0 || level>VDB_HNSW_MAX_LEVEL ){
    rc = vdbGraphCorrupt(p, "node %lld has level %d", nid, level);
  }else if( sqlite3_column_bytes(p->pLoad, 4)!=vdbLinksBytes(p, level) ){
    rc = vdbGraphCorrupt(p, "node %lld has %d bytes of links, not %d", nid,
                         sqlite3_column_bytes(p->pLoad, 4), vdbLinksBytes(p, level));
  }else if( sqlite3_column_int64(p->pLoad, 2)<0
         || sqlite3_column_int64(p->pLoad, 2)>=p->pStore->pDef->chunkSize ){
    rc = vdbGraphCorrupt(p, "node %lld has chunk offset %lld", nid, sqlite3_column_int64(p->pLoad, 2));
  }else if( (c = vdbNewCNode(p, nid, level))==0 ){
    rc = SQLITE_NOMEM;
  }else{
    c->rowid = sqlite3_column_int64(p->pLoad, 0);
    c->slot.chunkId = sqlite3_column_int64(p->pLoad, 1);
    c->slot.offset = sqlite3_column_int(p->pLoad, 2);
    for(l=0; rc==SQLITE_OK && l<=level; l++){
      int n = aLinks[0] | (aLinks[1]<<8);
      if( n>vdbCap(p, l) ){
        rc = vdbGraphCorrupt(p, "node %lld has %d links on layer %d, more than %d", nid, n, l, vdbCap(p, l));
        break;
      }
      c->node.anLink[l] = n;
      for(i=0; i<n; i++){
        sqlite3_int64 x = vdbGetLe64(aLinks + 2 + 8*i);
        if( x<1 || x==nid ){
          rc = vdbGraphCorrupt(p, "node %lld links to node id %lld", nid, x);
          break;
        }
        c->node.aaLink[l][i] = x;
      }
      aLinks += 2 + 8*vdbCap(p, l);
    }
  }
  sqlite3_reset(p->pLoad);
  if( rc==SQLITE_OK ) rc = vdbHashInsert(p, c);
  if( rc!=SQLITE_OK ){
    sqlite3_free(c);
    return rc;
  }
  p->stats.nLoaded++;
  *ppNode = c;
  return SQLITE_OK;
}

static int vdbSaveNode(VdbHnswStore *p, VdbCNode *c){
  int nByte = vdbLinksBytes(p, c->node.level), l, i, rc;
  unsigned char *a = (unsigned char*)sqlite3_malloc(nByte), *z = a;
  if( a==0 ) return SQLITE_NOMEM;
  memset(a, 0, (size_t)nByte);
  for(l=0; l<=c->node.level; l++){
    z[0] = (unsigned char)(c->node.anLink[l] & 0xff);
    z[1] = (unsigned char)(c->node.anLink[l] >> 8);
    for(i=0; i<c->node.anLink[l]; i++) vdbPutLe64(z + 2 + 8*i, c->node.aaLink[l][i]);
    z += 2 + 8*vdbCap(p, l);
  }
  /* Delete, then insert: see vdbInfoSet for why not INSERT OR REPLACE. */
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

static int vdbFlushOp(VdbHnswStore *p){
  int rc = SQLITE_OK;
  /* The statements below can make SQLite open a statement savepoint, which
  ** calls xSavepoint, which flushes: that inner call has nothing to add. */
  VdbCNode *c;
  if( p->inFlush ) return SQLITE_OK;
  p->inFlush = 1;
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
    c->pDirtyNext = 0;
    p->stats.nFlushedNodes++;
    if( c->isRemoved ){
      vdbHashRemove(p, c);
      sqlite3_free(c);
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

/* Over budget: evict clean nodes not used since the clock hand last passed
** (CLOCK), down to 3/4 of the budget, so the hot upper layers and recent
** neighbourhoods stay. Dirty nodes stay until flushed. */
static void vdbEvictClean(VdbHnswStore *p){
  sqlite3_int64 target = p->budgetBytes - p->budgetBytes/4;
  int nStep = 0;
  if( p->cacheBytes<=p->budgetBytes ) return;
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
      /* Removal may shift a later entry into slot i: look at it next. */
      vdbHashRemove(p, c);
      sqlite3_free(c);
    }
  }
  if( p->cacheBytes>target ) vdbChunkFreeAll(p);
}

/* After a write: stay within the budget by flushing, then evicting. */
static int vdbAfterWrite(VdbHnswStore *p){
  int rc = SQLITE_OK;
  if( p->cacheBytes>p->budgetBytes ){
    rc = vdbHnswStoreFlush(p);
    if( rc==SQLITE_OK ) vdbEvictClean(p);
  }
  return rc;
}

static void vdbDiscardNow(VdbHnswStore *p){
  int i;
  vdbChunkFreeAll(p);
  for(i=0; i<p->nHash; i++){
    if( p->aHash[i].nid ) sqlite3_free(p->aHash[i].pNode);
    p->aHash[i].nid = 0;
    p->aHash[i].pNode = 0;
  }
  if( p->aByNid ) memset(p->aByNid, 0, sizeof(VdbNidEntry)*(size_t)p->nByNid);
  p->nNode = 0;
  p->cacheBytes = 0;
  p->pDirty = 0;
  p->infoLoaded = 0;
  p->graph.hasEntry = 0;
  p->graph.entryChanged = 0;
  p->nextNidChanged = 0;
  p->stats.nDiscards++;
}

/* ---- the access layer the algorithm sees ------------------------------------------- */

static int vdbAccessGet(void *pCtx, sqlite3_int64 nid, VdbHnswNode **ppNode){
  VdbHnswStore *p = (VdbHnswStore*)pCtx;
  VdbCNode *c = vdbLookup(p, nid);
  int rc = SQLITE_OK;
  if( c==0 ){
    rc = vdbLoadNode(p, nid, &c);
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
static int vdbAccessVector(void *pCtx, sqlite3_int64 nid, const float **ppVec, float *pInvNorm){
  VdbHnswStore *p = (VdbHnswStore*)pCtx;
  VdbHnswNode *pNode;
  int rc;
  if( nid>=0 && nid<p->nByNid && p->aByNid[nid].pVec ){
    *ppVec = p->aByNid[nid].pVec;
    *pInvNorm = p->aByNid[nid].invNorm;
    return SQLITE_OK;
  }
  rc = vdbAccessGet(pCtx, nid, &pNode);
  if( rc==SQLITE_OK ){
    *ppVec = pNode->pVec;
    *pInvNorm = pNode->invNorm;
    vdbRememberVector(p, nid, pNode->pVec, pNode->invNorm);
  }
  return rc;
}

/* Touch the lines of a cached node that an expansion reads: the header
** (flags, link counts and pointers) and the first layer-0 links. */
static void vdbAccessPrefetch(void *pCtx, sqlite3_int64 nid){
  VdbHnswStore *p = (VdbHnswStore*)pCtx;
  VdbCNode *c = vdbLookup(p, nid);
  if( c ){
    const char *z = (const char*)c;
    const char *zLinks = (const char*)(c+1);       /* see vdbNewCNode */
    size_t i, nLinks = (size_t)vdbCap(p, 0)*sizeof(sqlite3_int64);
    for(i=0; i<sizeof(VdbCNode); i+=64) __builtin_prefetch(z+i);
    for(i=0; i<nLinks; i+=64) __builtin_prefetch(zLinks+i);
  }
}

static int vdbAccessCreate(void *pCtx, sqlite3_int64 nid, int level, const float *pVec, VdbHnswNode **ppNode){
  VdbHnswStore *p = (VdbHnswStore*)pCtx;
  VdbCNode *c = vdbNewCNode(p, nid, level);
  int rc;
  VdbChunkBuf *b;
  if( c==0 ) return SQLITE_NOMEM;
  c->rowid = p->pendingRowid;
  c->slot = p->pendingSlot;
  /* The vector is already in its chunk BLOB; a cached copy of the chunk
  ** predates it. */
  b = vdbChunkFind(p, c->slot.chunkId);
  if( b ){
    memcpy(b->aVec + (size_t)c->slot.offset*(size_t)p->pCol->nDim, pVec,
           sizeof(float)*(size_t)p->pCol->nDim);
  }
  rc = vdbAttachVector(p, c);
  if( rc==SQLITE_OK ) rc = vdbHashInsert(p, c);
  if( rc!=SQLITE_OK ){ sqlite3_free(c); return rc; }
  *ppNode = &c->node;
  return SQLITE_OK;
}

static int vdbAccessDirty(void *pCtx, VdbHnswNode *pNode){
  VdbHnswStore *p = (VdbHnswStore*)pCtx;
  VdbCNode *c = (VdbCNode*)pNode;
  if( !c->isDirty ){
    c->isDirty = 1;
    c->pDirtyNext = p->pDirty;
    p->pDirty = c;
  }
  return SQLITE_OK;
}

static int vdbAccessRemove(void *pCtx, VdbHnswNode *pNode){
  vdbRememberVector((VdbHnswStore*)pCtx, pNode->nid, 0, 0);
  ((VdbCNode*)pNode)->isRemoved = 1;
  return vdbAccessDirty(pCtx, pNode);
}

static int vdbAccessTopNode(void *pCtx, sqlite3_int64 nidExcluded, sqlite3_int64 *pNid, int *pLevel){
  VdbHnswStore *p = (VdbHnswStore*)pCtx;
  int rc = vdbHnswStoreFlush(p);       /* the table must show every node's level */
  if( rc==SQLITE_OK ){
    rc = vdbPrepare(p, &p->pTop,
        "SELECT nid, level FROM \"%w\".\"%w_%s\" WHERE nid!=?1 ORDER BY level DESC, nid LIMIT 1");
  }
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(p->pTop, 1, nidExcluded);
  if( sqlite3_step(p->pTop)==SQLITE_ROW ){
    *pNid = sqlite3_column_int64(p->pTop, 0);
    *pLevel = sqlite3_column_int(p->pTop, 1);
  }else{
    rc = SQLITE_NOTFOUND;
  }
  {
    /* A step that failed (out of memory, I/O) is that error, not "no
    ** other node": that would drop the entry point of a live graph. */
    int rc2 = sqlite3_reset(p->pTop);
    if( rc2!=SQLITE_OK ) rc = rc2;
  }
  if( rc==SQLITE_OK && (*pLevel<0 || *pLevel>VDB_HNSW_MAX_LEVEL) ){
    rc = vdbGraphCorrupt(p, "node %lld has level %d", *pNid, *pLevel);
  }
  return rc;
}

/* ---- open, create, close ------------------------------------------------------------- */

int vdbHnswStoreCreate(VdbStore *pStore, int iVec, const char *zToken){
  char *zSql = sqlite3_mprintf(
      "CREATE TABLE \"%w\".\"%w_hnsw%02d\"(nid INTEGER PRIMARY KEY, rowid INTEGER NOT NULL,"
      " chunk_id INTEGER NOT NULL, chunk_offset INTEGER NOT NULL, level INTEGER NOT NULL,"
      " links BLOB NOT NULL);"
      "CREATE UNIQUE INDEX \"%w\".\"vectordb_%s_hnsw%02d_rowid\" ON \"%w_hnsw%02d\"(rowid);"
      "CREATE INDEX \"%w\".\"vectordb_%s_hnsw%02d_level\" ON \"%w_hnsw%02d\"(level);",
      pStore->zDb, pStore->zName, iVec,
      pStore->zDb, zToken, iVec, pStore->zName, iVec,
      pStore->zDb, zToken, iVec, pStore->zName, iVec);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(pStore->db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  return rc;
}

int vdbHnswStoreOpen(VdbStore *pStore, int iVec, const VdbKernels *pK, VdbHnswStore **ppOut){
  VdbHnswStore *p = (VdbHnswStore*)sqlite3_malloc(sizeof(*p));
  VdbHnswParams params;
  VdbHnswAccess access;
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->pStore = pStore;
  p->iVec = iVec;
  p->pCol = &pStore->pDef->aCol[pStore->aVecCol[iVec]];
  p->budgetBytes = (sqlite3_int64)VDB_HNSW_DEFAULT_CACHE_MB << 20;
  p->chunkEpoch = 1;
  sqlite3_snprintf(sizeof(p->zSuffix), p->zSuffix, "hnsw%02d", iVec);
  memset(&params, 0, sizeof(params));
  params.dim = p->pCol->nDim;
  params.eMetric = p->pCol->eMetric;
  params.m = p->pCol->index.m;
  params.efConstruction = p->pCol->index.efConstruction;
  params.seed = VDB_HNSW_SEED + (sqlite3_uint64)iVec;
  access.pCtx = p;
  access.xGet = vdbAccessGet;
  access.xCreate = vdbAccessCreate;
  access.xDirty = vdbAccessDirty;
  access.xRemove = vdbAccessRemove;
  access.xTopNode = vdbAccessTopNode;
  access.xVector = vdbAccessVector;
  access.xPrefetch = vdbAccessPrefetch;
  vdbHnswInit(&p->graph, &params, pK, &access);
  *ppOut = p;
  return SQLITE_OK;
}

void vdbHnswStoreClose(VdbHnswStore *p){
  if( p==0 ) return;
  vdbDiscardNow(p);
  vdbHnswFree(&p->graph);
  sqlite3_free(p->aHash);
  sqlite3_free(p->aChunk);
  sqlite3_free(p->aByNid);
  sqlite3_free(p->zCorrupt);
  sqlite3_finalize(p->pLoad);
  sqlite3_finalize(p->pSave);
  sqlite3_finalize(p->pErase);
  sqlite3_finalize(p->pByRowid);
  sqlite3_finalize(p->pTop);
  sqlite3_finalize(p->pDataVersion);
  sqlite3_finalize(p->pInfoGet);
  sqlite3_finalize(p->pInfoSet);
  sqlite3_finalize(p->pInfoDel);
  sqlite3_finalize(p->pMoveRowid);
  sqlite3_free(p);
}

int vdbHnswStoreSetCacheMb(VdbHnswStore *p, int mb){
  p->budgetBytes = (sqlite3_int64)mb << 20;
  vdbEvictClean(p);
  return SQLITE_OK;
}

int vdbHnswStoreSync(VdbHnswStore *p){
  VdbStore *s = p->pStore;
  sqlite3_int64 v = 0;
  int rc = SQLITE_OK;
  if( p->pDataVersion==0 ){
    rc = vdbStorePrepare(s, sqlite3_mprintf("PRAGMA \"%w\".data_version", s->zDb), &p->pDataVersion);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( sqlite3_step(p->pDataVersion)==SQLITE_ROW ) v = sqlite3_column_int64(p->pDataVersion, 0);
  rc = sqlite3_reset(p->pDataVersion);
  if( rc!=SQLITE_OK ) return rc;
  /* Another connection committed: what is cached may be stale. Our own
  ** pending changes cannot coexist with that (we would hold the write
  ** lock), so nothing dirty is lost. */
  if( p->haveDataVersion && v!=p->dataVersion && p->pDirty==0 ) vdbHnswStoreDiscard(p);
  p->dataVersion = v;
  p->haveDataVersion = 1;
  return vdbLoadInfo(p);
}

/* ---- operations ----------------------------------------------------------------------- */

static int vdbInsertOp(VdbHnswStore *p, sqlite3_int64 rowid, const VdbSlot *pSlot, const float *pVec){
  int rc = vdbLoadInfo(p);
  sqlite3_int64 nid;
  if( rc!=SQLITE_OK ) return rc;
  nid = p->nextNid++;
  p->nextNidChanged = 1;
  p->pendingRowid = rowid;
  p->pendingSlot = *pSlot;
  rc = vdbHnswInsert(&p->graph, nid, pVec);
  if( rc==SQLITE_OK ) rc = vdbAfterWrite(p);
  return rc;
}

/* The nid of a row's node; SQLITE_NOTFOUND if the row has none. Pending
** changes are written first so the table is the whole truth. */
static int vdbNidOfRowid(VdbHnswStore *p, sqlite3_int64 rowid, sqlite3_int64 *pNid){
  int rc = vdbHnswStoreFlush(p);
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

static int vdbDeleteOp(VdbHnswStore *p, sqlite3_int64 rowid){
  sqlite3_int64 nid;
  int rc = vdbLoadInfo(p);
  if( rc==SQLITE_OK ) rc = vdbNidOfRowid(p, rowid, &nid);
  if( rc==SQLITE_NOTFOUND ){
    return vdbGraphCorrupt(p, "row %lld has no node", rowid);
  }
  if( rc==SQLITE_OK ) rc = vdbHnswDelete(&p->graph, nid);
  if( rc==SQLITE_OK ) rc = vdbAfterWrite(p);
  return rc;
}

static int vdbMoveRowidOp(VdbHnswStore *p, sqlite3_int64 oldRowid, sqlite3_int64 newRowid){
  sqlite3_int64 nid;
  VdbCNode *c;
  int rc = vdbNidOfRowid(p, oldRowid, &nid);
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
  return rc;
}

typedef struct VdbFilterAdapter {
  VdbHnswStore *p;
  VdbRowFilter xFilter;
  void *pArg;
} VdbFilterAdapter;

/* The algorithm filters nids; the user filters rowids. Nodes passed to
** the filter are always cached (their distance was just computed). */
static int vdbNidFilter(void *pArg, sqlite3_int64 nid){
  VdbFilterAdapter *a = (VdbFilterAdapter*)pArg;
  VdbCNode *c = vdbLookup(a->p, nid);
  return c && !c->isRemoved && a->xFilter(a->pArg, c->rowid);
}

static int vdbRowHitCompare(const void *pA, const void *pB){
  const VdbHit *a = (const VdbHit*)pA, *b = (const VdbHit*)pB;
  if( a->dist!=b->dist ) return a->dist<b->dist ? -1 : 1;
  return a->rowid<b->rowid ? -1 : a->rowid>b->rowid;
}

static int vdbSearchOp(VdbHnswStore *p, const float *pQuery, int k, int ef,
                       VdbRowFilter xFilter, void *pFilterArg, VdbHit **paHit, int *pnHit){
  VdbFilterAdapter adapter;
  VdbHnswHit *aHit = 0;
  VdbHit *aOut = 0;
  int nHit = 0, nVisited = 0, i, rc;
  *paHit = 0;
  *pnHit = 0;
  rc = vdbLoadInfo(p);
  adapter.p = p;
  adapter.xFilter = xFilter;
  adapter.pArg = pFilterArg;
  if( rc==SQLITE_OK ){
    rc = vdbHnswSearch(&p->graph, pQuery, k, ef, xFilter ? vdbNidFilter : 0, &adapter,
                       &aHit, &nHit, &nVisited);
  }
  if( rc==SQLITE_OK && nHit>0 ){
    aOut = (VdbHit*)sqlite3_malloc64(sizeof(VdbHit)*(sqlite3_uint64)nHit);
    if( aOut==0 ) rc = SQLITE_NOMEM;
    for(i=0; rc==SQLITE_OK && i<nHit; i++){
      VdbCNode *c = vdbLookup(p, aHit[i].nid);
      if( c==0 ){ rc = SQLITE_CORRUPT_VTAB; break; }
      aOut[i].dist = aHit[i].dist;
      aOut[i].rowid = c->rowid;
    }
    if( rc==SQLITE_OK ) qsort(aOut, (size_t)nHit, sizeof(VdbHit), vdbRowHitCompare);
  }
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

/* ---- integrity --------------------------------------------------------------------------- */

static int vdbCheckOp(VdbHnswStore *p, char **pzErr){
  VdbStore *s = p->pStore;
  sqlite3_stmt *pStmt = 0;
  sqlite3_int64 *aNid = 0, nRows = 0;
  int nNid = 0, nAlloc = 0, rc;
  /* Check what is stored, not what is cached. */
  rc = vdbHnswStoreFlush(p);
  if( rc==SQLITE_OK ) vdbDiscardNow(p);
  if( rc==SQLITE_OK ) rc = vdbLoadInfo(p);
  /* Nodes and rows correspond one to one, slot for slot. */
  if( rc==SQLITE_OK ){
    rc = vdbStorePrepare(s, sqlite3_mprintf(
        "SELECT h.nid, r.rowid IS NULL OR r.chunk_id!=h.chunk_id OR r.chunk_offset!=h.chunk_offset"
        " FROM \"%w\".\"%w_%s\" h LEFT JOIN \"%w\".\"%w_rows\" r ON r.rowid=h.rowid ORDER BY h.nid",
        s->zDb, s->zName, p->zSuffix, s->zDb, s->zName), &pStmt);
  }
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    if( sqlite3_column_int(pStmt, 1) ){
      *pzErr = sqlite3_mprintf("%s node %lld has no row or points at another slot",
                               p->zSuffix, sqlite3_column_int64(pStmt, 0));
      rc = SQLITE_CORRUPT;
      break;
    }
    if( nNid>=nAlloc ){
      sqlite3_int64 *a;
      nAlloc = nAlloc ? nAlloc*2 : 1024;
      a = (sqlite3_int64*)sqlite3_realloc64(aNid, sizeof(sqlite3_int64)*(sqlite3_uint64)nAlloc);
      if( a==0 ){ rc = SQLITE_NOMEM; break; }
      aNid = a;
    }
    aNid[nNid++] = sqlite3_column_int64(pStmt, 0);
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
  else sqlite3_finalize(pStmt);
  pStmt = 0;
  if( rc==SQLITE_OK ){
    rc = vdbStorePrepare(s, sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w_rows\"", s->zDb, s->zName), &pStmt);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ) nRows = sqlite3_column_int64(pStmt, 0);
    /* A count that failed to run is its error, not a finding. */
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    else sqlite3_finalize(pStmt);
    if( rc==SQLITE_OK && nRows!=nNid ){
      *pzErr = sqlite3_mprintf("%s has %d nodes for %lld rows", p->zSuffix, nNid, nRows);
      rc = SQLITE_CORRUPT;
    }
  }
  if( rc==SQLITE_OK ){
    rc = vdbHnswCheck(&p->graph, aNid, nNid, pzErr);
    if( rc==SQLITE_CORRUPT && *pzErr ){
      char *z = sqlite3_mprintf("%s: %s", p->zSuffix, *pzErr);
      sqlite3_free(*pzErr);
      *pzErr = z;
    }
  }
  if( rc==SQLITE_OK && nNid>0 && p->nextNid<=aNid[nNid-1] ){
    *pzErr = sqlite3_mprintf("%s next nid %lld is not above node %lld", p->zSuffix, p->nextNid, aNid[nNid-1]);
    rc = SQLITE_CORRUPT;
  }
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

static void vdbEnter(VdbHnswStore *p){
  p->nActive++;
}

static int vdbLeave(VdbHnswStore *p, int rc){
  if( --p->nActive==0 && p->discardPending ){
    p->discardPending = 0;
    vdbDiscardNow(p);
  }
  return rc;
}

void vdbHnswStoreDiscard(VdbHnswStore *p){
  if( p->nActive>0 ){
    p->discardPending = 1;
  }else{
    vdbDiscardNow(p);
  }
}

int vdbHnswStoreFlush(VdbHnswStore *p){
  vdbEnter(p);
  return vdbLeave(p, vdbFlushOp(p));
}

int vdbHnswStoreInsert(VdbHnswStore *p, sqlite3_int64 rowid, const VdbSlot *pSlot, const float *pVec){
  vdbEnter(p);
  return vdbLeave(p, vdbInsertOp(p, rowid, pSlot, pVec));
}

int vdbHnswStoreDelete(VdbHnswStore *p, sqlite3_int64 rowid){
  vdbEnter(p);
  return vdbLeave(p, vdbDeleteOp(p, rowid));
}

int vdbHnswStoreMoveRowid(VdbHnswStore *p, sqlite3_int64 oldRowid, sqlite3_int64 newRowid){
  vdbEnter(p);
  return vdbLeave(p, vdbMoveRowidOp(p, oldRowid, newRowid));
}

int vdbHnswStoreSearch(VdbHnswStore *p, const float *pQuery, int k, int ef,
                       VdbRowFilter xFilter, void *pFilterArg, VdbHit **paHit, int *pnHit){
  vdbEnter(p);
  return vdbLeave(p, vdbSearchOp(p, pQuery, k, ef, xFilter, pFilterArg, paHit, pnHit));
}

int vdbHnswStoreCheck(VdbHnswStore *p, char **pzErr){
  vdbEnter(p);
  return vdbLeave(p, vdbCheckOp(p, pzErr));
}

void vdbHnswStoreStats(VdbHnswStore *p, VdbHnswStats *pStats){
  *pStats = p->stats;
  pStats->nCached = p->nNode;
  pStats->cacheBytes = p->cacheBytes;
}

char *vdbHnswStoreTakeCorrupt(VdbHnswStore *p){
  char *z = p->zCorrupt;
  p->zCorrupt = 0;
  return z;
}
