/*
** Walk records: what a walk on the bottom layer reads of
** a node (its layer-0 links and its code, vdb_quant.h), at an address that
** follows from the node id.
**
** A walk that expands a node reads its links, then scores each fresh
** neighbour's code. Through a table entry (node id -> node) each costs
** two dependent cache misses, the entry and then the node; here one small
** page table (the walk reads a pointer per 32 nodes, 250 KB at 1M nodes,
** so it stays in cache) gives the record's address, and the record holds
** both. hnswlib's level-0 block is laid out the same way for the same
** reason; the measured cause of our gap at 384 dimensions was the second
** miss.
**
** A record, in memory only (VdbRecordHead):
**     u32 mark             VDB_REC_CODE: the code is there;
**                          VDB_REC_LINKS: the links are;
**                          VDB_REC_NODE: the node is published
**     u16 nLink            layer-0 links held
**     u8  isReferenced     the shared copy's CLOCK mark; u8 unused
**     then, only in the shared copy's records (hasNode):
**     ptr pNode            a node above layer 0: its VdbCNode; else NULL
**     ptr pVec             its float32 vector, once needed, or NULL
**     i64 rowid            its row
**     u64 slot             chunk_id << 16 | chunk_offset: where the vector is
**     f32 aux, 4 unused    only without codes: the vector's aux value (with
**                          codes the copy's own vector buffers keep it)
**     code                 nCodeBytes (a multiple of 8; none without codes)
**     u32 aLink[cap0]      layer-0 neighbours' node ids (the shared copy
**                          serves node ids below 2^24 only)
** So the record is all the shared copy holds of a node of layer 0 alone
** (94% of them at M=16): the node's row, links, code and, for a result,
** vector. A VdbCNode (about 300 bytes and its 64-bit links) is kept only
** for nodes above layer 0, whose upper layers the walk reads from it. On
** 1M x 128 the decoded nodes of layer 0 were 320 MB of the 1.2 GB a
** process held after 18,000 queries. The record also replaces a node-id
** table: a cold query touches a record page per node it meets, not also
** an entry of a table sized by the largest node id (24 MB to map at 1M
** nodes).
**
** Records are a multiple of 64 bytes and pages start on a 64-byte
** boundary, so a record spans the fewest cache lines it can. The mark and
** the head of the code share the first line: the walk asks for the first
** lines of every fresh neighbour at once (VdbHnswAccess.xPrefetchCode),
** and then finds each one's mark and code arriving together.
**
** A connection's private cache keeps its nodes' codes the same way, in
** records without links (nLinkCap 0), for the same reason: a walk scores
** a neighbour through one page table read, not through the node's nid
** table entry and then the node (vdb_index_hnsw.c, VdbHnswIndex.codes).
** The per-page aUsed marks are the owner's, for its eviction (the private
** cache's CLOCK; the shared copy's pages that still hold a node).
**
** Lifetimes. A node's code never changes: its vector never does (a new
** vector is a new node, and committed node ids are never reused), so a
** code stays until its page is freed. Its links change with commits: the
** copy clears VDB_REC_LINKS and VDB_REC_NODE when it drops the node and
** sets them again when the node is published anew. Pages and marks are written under the
** copy's publish lock (or its write lock) and read with acquire loads;
** pages are freed and the page table grows under the write lock only,
** when no walk is reading.
*/
#include <string.h>
#include "vdb_index_hnsw.h"

#define VDB_REC_ALIGN 64

void vdbRecordsInit(VdbRecords *a, int nCodeBytes, int nLinkCap, int hasNode, int nVecBytes){
  memset(a, 0, sizeof(*a));
  a->nCodeBytes = nCodeBytes;
  a->nLinkCap = nLinkCap;
  a->hasNode = hasNode;
  a->nVecBytes = nVecBytes;
  a->iCode = hasNode ? (int)sizeof(VdbRecordHead) : VDB_REC_HEAD_BYTES;
  if( hasNode && nCodeBytes==0 ){
    a->iAux = a->iCode;
    a->iCode += 8;
  }
  a->iLinks = a->iCode + ((nCodeBytes + 7) & ~7);
  a->nStride = (a->iLinks + (int)sizeof(unsigned int)*nLinkCap + VDB_REC_ALIGN-1) & ~(VDB_REC_ALIGN-1);
}

/* Bytes of one page as allocated: its records and room to align them. */
sqlite3_int64 vdbRecordsPageBytes(const VdbRecords *a){
  return ((sqlite3_int64)a->nStride << VDB_REC_PAGE_SHIFT) + VDB_REC_ALIGN;
}

int vdbRecordsCover(VdbRecords *a, sqlite3_int64 nNid){
  sqlite3_int64 nNeed = (nNid + VDB_REC_PAGE_NODES - 1) >> VDB_REC_PAGE_SHIFT, n;
  unsigned char **apNew, *aUsedNew;
  void **apRawNew;
  if( nNeed<=a->nPage ) return SQLITE_OK;
  n = a->nPage ? a->nPage : 16;
  while( n<nNeed ) n *= 2;
  apNew = (unsigned char**)sqlite3_realloc64(a->apPage, sizeof(unsigned char*)*(sqlite3_uint64)n);
  if( apNew==0 ) return SQLITE_NOMEM;
  a->apPage = apNew;
  apRawNew = (void**)sqlite3_realloc64(a->apRaw, sizeof(void*)*(sqlite3_uint64)n);
  if( apRawNew==0 ) return SQLITE_NOMEM;   /* apPage is merely larger than needed */
  a->apRaw = apRawNew;
  aUsedNew = (unsigned char*)sqlite3_realloc64(a->aUsed, (sqlite3_uint64)n);
  if( aUsedNew==0 ) return SQLITE_NOMEM;   /* so are the others */
  a->aUsed = aUsedNew;
  memset(a->apPage + a->nPage, 0, sizeof(unsigned char*)*(size_t)(n - a->nPage));
  memset(a->apRaw + a->nPage, 0, sizeof(void*)*(size_t)(n - a->nPage));
  memset(a->aUsed + a->nPage, 0, (size_t)(n - a->nPage));
  a->nPage = n;
  return SQLITE_OK;
}

/* Node nid's record, allocating its page (all marks 0) if needed; NULL
** when nid is not covered or memory ran out. *pnNew: bytes allocated. */
static unsigned char *vdbRecordsAt(VdbRecords *a, sqlite3_int64 nid, sqlite3_int64 *pnNew){
  sqlite3_int64 iPage = nid >> VDB_REC_PAGE_SHIFT;
  unsigned char *aPage;
  if( nid<0 || iPage>=a->nPage ) return 0;
  aPage = a->apPage[iPage];
  if( aPage==0 ){
    sqlite3_int64 nByte = vdbRecordsPageBytes(a);
    void *pRaw = sqlite3_malloc64((sqlite3_uint64)nByte);
    if( pRaw==0 ) return 0;
    vdbPrefault(pRaw, (size_t)nByte);
    memset(pRaw, 0, (size_t)nByte);
    aPage = (unsigned char*)(((sqlite3_uint64)(size_t)pRaw + VDB_REC_ALIGN-1)
                             & ~(sqlite3_uint64)(VDB_REC_ALIGN-1));
    a->apRaw[iPage] = pRaw;
    /* Everything of the page is written before a walk can find it. */
    __atomic_store_n(&a->apPage[iPage], aPage, __ATOMIC_RELEASE);
    a->nPageAlloc++;
    *pnNew += nByte;
  }
  return aPage + (size_t)(nid & (VDB_REC_PAGE_NODES-1))*(size_t)a->nStride;
}

const void *vdbRecordsPublish(VdbRecords *a, sqlite3_int64 nid, const void *pCode,
                              const sqlite3_int64 *aLink, int nLink, sqlite3_int64 *pnNew){
  unsigned char *pRec = vdbRecordsAt(a, nid, pnNew);
  VdbRecordHead *h = (VdbRecordHead*)pRec;
  unsigned int *aRecLink, mark, i;
  if( pRec==0 ) return 0;
  aRecLink = (unsigned int*)(pRec + a->iLinks);
  mark = h->mark;                   /* only publishers write it, under one lock */
  if( a->nCodeBytes && !(mark & VDB_REC_CODE) ){
    if( pCode==0 ) return 0;
    memcpy(pRec + a->iCode, pCode, (size_t)a->nCodeBytes);
    mark |= VDB_REC_CODE;
  }
  if( aLink && !(mark & VDB_REC_LINKS) && nLink<=a->nLinkCap ){
    /* A node id that does not fit (only a damaged table has one) leaves
    ** the links out: the walk then reads the node, and reports it. */
    for(i=0; i<(unsigned)nLink && aLink[i]>0 && aLink[i]<=0xffffffff; i++){
      aRecLink[i] = (unsigned int)aLink[i];
    }
    if( i==(unsigned)nLink ){
      h->nLink = (unsigned short)nLink;
      mark |= VDB_REC_LINKS;
    }
  }
  __atomic_store_n(&h->mark, mark, __ATOMIC_RELEASE);
  return pRec + a->iCode;
}

void vdbRecordsSetNode(VdbRecords *a, sqlite3_int64 nid, void *pNode, sqlite3_int64 rowid,
                       const VdbSlot *pSlot, const void *pVec, float aux){
  VdbRecordHead *h = (VdbRecordHead*)vdbRecordsAddress(a, nid);
  if( h==0 || !a->hasNode ) return;
  /* Everything before the mark's release store: a walk that sees
  ** VDB_REC_NODE (acquire) sees the fields it covers. */
  h->rowid = rowid;
  h->slot = ((sqlite3_uint64)pSlot->chunkId << VDB_REC_SLOT_SHIFT) | (sqlite3_uint64)pSlot->offset;
  /* A walk may already touch the record: its links were published first. */
  __atomic_store_n(&h->isReferenced, 1, __ATOMIC_RELAXED);
  if( pVec && a->iAux ) *(float*)((unsigned char*)h + a->iAux) = aux;
  __atomic_store_n(&h->pVec, pVec, __ATOMIC_RELEASE);
  __atomic_store_n(&h->pNode, pNode, __ATOMIC_RELEASE);
  __atomic_store_n(&h->mark, h->mark | VDB_REC_NODE, __ATOMIC_RELEASE);
}

void vdbRecordsSetFullNode(VdbRecords *a, sqlite3_int64 nid, void *pNode){
  VdbRecordHead *h = (VdbRecordHead*)vdbRecordsAddress(a, nid);
  if( h && a->hasNode ) __atomic_store_n(&h->pNode, pNode, __ATOMIC_RELEASE);
}

void vdbRecordsClearNode(VdbRecords *a, sqlite3_int64 nid){
  VdbRecordHead *h = (VdbRecordHead*)vdbRecordsAddress(a, nid);
  if( h==0 || !a->hasNode ) return;
  h->pNode = 0;
  h->pVec = 0;
  h->isReferenced = 0;
  h->mark &= ~(VDB_REC_NODE|VDB_REC_LINKS);
}

const void *vdbRecordsSetVector(VdbRecords *a, sqlite3_int64 nid, const void *pVec, float *pAux){
  VdbRecordHead *h = (VdbRecordHead*)vdbRecordsAddress(a, nid);
  if( h==0 || !a->hasNode ) return 0;
  if( h->pVec ){
    *pAux = vdbRecordsAux(a, h, h->pVec);
    return h->pVec;
  }
  /* The aux value where vdbRecordsAux looks, then the vector. */
  if( a->iAux ){
    *(float*)((unsigned char*)h + a->iAux) = *pAux;
  }else{
    memcpy((unsigned char*)pVec + a->nVecBytes, pAux, sizeof(float));
  }
  __atomic_store_n(&h->pVec, pVec, __ATOMIC_RELEASE);
  return pVec;
}

void vdbRecordsDropLinks(VdbRecords *a, sqlite3_int64 nid){
  sqlite3_int64 iPage = nid >> VDB_REC_PAGE_SHIFT;
  VdbRecordHead *h;
  if( nid<0 || iPage>=a->nPage || a->apPage[iPage]==0 ) return;
  h = (VdbRecordHead*)(a->apPage[iPage] + (size_t)(nid & (VDB_REC_PAGE_NODES-1))*(size_t)a->nStride);
  __atomic_store_n(&h->mark, h->mark & ~(unsigned)VDB_REC_LINKS, __ATOMIC_RELAXED);
}

static sqlite3_int64 vdbRecordsFreePage(VdbRecords *a, sqlite3_int64 i){
  if( a->apRaw[i]==0 ) return 0;
  sqlite3_free(a->apRaw[i]);
  a->apRaw[i] = 0;
  a->apPage[i] = 0;
  a->nPageAlloc--;
  return vdbRecordsPageBytes(a);
}

sqlite3_int64 vdbRecordsClear(VdbRecords *a){
  sqlite3_int64 i, nFreed = 0;
  for(i=0; i<a->nPage; i++) nFreed += vdbRecordsFreePage(a, i);
  return nFreed;
}

void vdbRecordsFree(VdbRecords *a){
  vdbRecordsClear(a);
  sqlite3_free(a->apPage);
  sqlite3_free(a->apRaw);
  sqlite3_free(a->aUsed);
  a->apPage = 0;
  a->apRaw = 0;
  a->aUsed = 0;
  a->nPage = 0;
}

sqlite3_int64 vdbRecordsKeep(VdbRecords *a, const unsigned char *aLive){
  sqlite3_int64 i, nFreed = 0;
  for(i=0; i<a->nPage; i++){
    if( !aLive[i] ) nFreed += vdbRecordsFreePage(a, i);
  }
  return nFreed;
}
