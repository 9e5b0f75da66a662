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
** Slabs. Pages are carved from slabs, larger allocations each holding
** many pages, and the slabs ask for transparent huge pages (vdbAdviseHuge):
** a walk reads records scattered over the whole copy, and with 4 KiB
** pages nearly every record it scores cost a TLB miss and a page walk on
** top of the cache miss. A slab's size follows the records' own (as many
** pages as are already allocated, at least VDB_REC_SLAB_MIN_PAGES, at most
** VDB_REC_SLAB_MAX_BYTES), so a small table takes small slabs and a large
** one a few dozen 32 MiB slabs; pages are handed out of the oldest slab
** with room, so a cold copy fills slabs in the order it meets nodes, and
** memory follows the pages in use to within one huge page per slab being
** filled. A freed page goes back to its slab, and a slab whose pages are
** all free is freed. The owner's accounting counts pages, not slabs: after
** an eviction that freed scattered pages, the process keeps the partly
** used slabs until their pages are reused or all freed.
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
#define VDB_REC_SLAB_MIN_PAGES 4
#ifndef VDB_REC_SLAB_MAX_BYTES
# define VDB_REC_SLAB_MAX_BYTES (32*1024*1024)
#endif

struct VdbRecSlab {
  void *pRaw;                       /* the allocation (sqlite3_malloc64) */
  unsigned char *aFirst;            /* its first page, VDB_REC_ALIGN-aligned */
  int nPage;                        /* pages it holds */
  int nFree;                        /* of which free: aFree[0..nFree-1] */
  int aFree[1];                     /* indexes of the free pages, a stack */
};

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

/* Bytes of one page: its records (a multiple of VDB_REC_ALIGN). */
sqlite3_int64 vdbRecordsPageBytes(const VdbRecords *a){
  return (sqlite3_int64)a->nStride << VDB_REC_PAGE_SHIFT;
}

/* A new slab for about as many pages as are allocated already, appended
** to aSlab; NULL when memory ran out. A whole slab with its alignment room
** and the allocator's header stays within VDB_REC_SLAB_MAX_BYTES, so that
** an allocator that rounds up to a power of two (SQLite's memsys5) does
** not double it. */
static VdbRecSlab *vdbRecSlabNew(VdbRecords *a){
  sqlite3_int64 nPageBytes = vdbRecordsPageBytes(a);
  sqlite3_int64 nMax = (VDB_REC_SLAB_MAX_BYTES - 2*VDB_REC_ALIGN) / nPageBytes, nByte;
  int nPage = (int)(a->nPageAlloc < nMax ? a->nPageAlloc : nMax), i;
  VdbRecSlab *pSlab;
  if( nPage<VDB_REC_SLAB_MIN_PAGES ) nPage = VDB_REC_SLAB_MIN_PAGES;
  if( a->nSlab>=a->nSlabAlloc ){
    int nNew = a->nSlabAlloc ? 2*a->nSlabAlloc : 8;
    VdbRecSlab **aNew = (VdbRecSlab**)sqlite3_realloc64(a->aSlab, sizeof(VdbRecSlab*)*(sqlite3_uint64)nNew);
    if( aNew==0 ) return 0;
    a->aSlab = aNew;
    a->nSlabAlloc = nNew;
  }
  pSlab = (VdbRecSlab*)sqlite3_malloc64(sizeof(VdbRecSlab) + sizeof(int)*(sqlite3_uint64)nPage);
  if( pSlab==0 ) return 0;
  nByte = nPageBytes*nPage + VDB_REC_ALIGN;
  pSlab->pRaw = sqlite3_malloc64((sqlite3_uint64)nByte);
  if( pSlab->pRaw==0 ){
    sqlite3_free(pSlab);
    return 0;
  }
  vdbAdviseHuge(pSlab->pRaw, (size_t)nByte);
  pSlab->aFirst = (unsigned char*)(((sqlite3_uint64)(size_t)pSlab->pRaw + VDB_REC_ALIGN-1)
                                   & ~(sqlite3_uint64)(VDB_REC_ALIGN-1));
  pSlab->nPage = nPage;
  /* Popped from the end: pages are handed out in address order. */
  for(i=0; i<nPage; i++) pSlab->aFree[i] = nPage-1-i;
  pSlab->nFree = nPage;
  a->aSlab[a->nSlab++] = pSlab;
  return pSlab;
}

/* A free page for nid page iPage, from the oldest slab with room. */
static unsigned char *vdbRecPageAlloc(VdbRecords *a, sqlite3_int64 iPage){
  VdbRecSlab *pSlab = 0;
  int i;
  for(i=0; i<a->nSlab && pSlab==0; i++){
    if( a->aSlab[i]->nFree>0 ) pSlab = a->aSlab[i];
  }
  if( pSlab==0 && (pSlab = vdbRecSlabNew(a))==0 ) return 0;
  a->apSlab[iPage] = pSlab;
  return pSlab->aFirst + (size_t)pSlab->aFree[--pSlab->nFree]*(size_t)vdbRecordsPageBytes(a);
}

/* Page iPage goes back to its slab; the slab goes when all of it is free. */
static void vdbRecPageFree(VdbRecords *a, sqlite3_int64 iPage){
  VdbRecSlab *pSlab = a->apSlab[iPage];
  int i;
  pSlab->aFree[pSlab->nFree++] = (int)((a->apPage[iPage] - pSlab->aFirst) / vdbRecordsPageBytes(a));
  a->apSlab[iPage] = 0;
  if( pSlab->nFree<pSlab->nPage ) return;
  for(i=0; a->aSlab[i]!=pSlab; i++){}
  memmove(&a->aSlab[i], &a->aSlab[i+1], sizeof(VdbRecSlab*)*(size_t)(a->nSlab - i - 1));
  a->nSlab--;
  sqlite3_free(pSlab->pRaw);
  sqlite3_free(pSlab);
}

int vdbRecordsSlabs(const VdbRecords *a, sqlite3_int64 *pnByte){
  sqlite3_int64 n = 0;
  int i;
  for(i=0; i<a->nSlab; i++) n += (sqlite3_int64)a->aSlab[i]->nPage*vdbRecordsPageBytes(a);
  *pnByte = n;
  return a->nSlab;
}

int vdbRecordsCover(VdbRecords *a, sqlite3_int64 nNid){
  sqlite3_int64 nNeed = (nNid + VDB_REC_PAGE_NODES - 1) >> VDB_REC_PAGE_SHIFT, n;
  unsigned char **apNew, *aUsedNew;
  VdbRecSlab **apSlabNew;
  if( nNeed<=a->nPage ) return SQLITE_OK;
  n = a->nPage ? a->nPage : 16;
  while( n<nNeed ) n *= 2;
  apNew = (unsigned char**)sqlite3_realloc64(a->apPage, sizeof(unsigned char*)*(sqlite3_uint64)n);
  if( apNew==0 ) return SQLITE_NOMEM;
  a->apPage = apNew;
  apSlabNew = (VdbRecSlab**)sqlite3_realloc64(a->apSlab, sizeof(VdbRecSlab*)*(sqlite3_uint64)n);
  if( apSlabNew==0 ) return SQLITE_NOMEM;  /* apPage is merely larger than needed */
  a->apSlab = apSlabNew;
  aUsedNew = (unsigned char*)sqlite3_realloc64(a->aUsed, (sqlite3_uint64)n);
  if( aUsedNew==0 ) return SQLITE_NOMEM;   /* so are the others */
  a->aUsed = aUsedNew;
  memset(a->apPage + a->nPage, 0, sizeof(unsigned char*)*(size_t)(n - a->nPage));
  memset(a->apSlab + a->nPage, 0, sizeof(VdbRecSlab*)*(size_t)(n - a->nPage));
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
    aPage = vdbRecPageAlloc(a, iPage);
    if( aPage==0 ) return 0;
    vdbPrefault(aPage, (size_t)nByte);
    memset(aPage, 0, (size_t)nByte);
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
  if( a->apPage[i]==0 ) return 0;
  vdbRecPageFree(a, i);
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
  sqlite3_free(a->apSlab);
  sqlite3_free(a->aUsed);
  sqlite3_free(a->aSlab);
  a->apPage = 0;
  a->apSlab = 0;
  a->aSlab = 0;
  a->nSlabAlloc = 0;
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
