/*
** Shadow-table storage of a vectordb table.
**
** For a table T in schema S:
**
**   T_info(key TEXT PRIMARY KEY, value) WITHOUT ROWID
**       format version and the layout parameters, checked on connect.
**   T_rows(rowid INTEGER PRIMARY KEY, chunk_id, chunk_offset, [pk TEXT UNIQUE],
**          c<i> ...)
**       one row per user row: where its vectors live, and the values of
**       every non-vector column i (partition, metadata, auxiliary) as c<i>.
**   T_chunks(chunk_id INTEGER PRIMARY KEY, validity BLOB, rowids BLOB)
**       slot allocation: bit j of validity says slot j holds a row, whose
**       rowid is the j-th little-endian int64 of rowids.
**   T_free(chunk_id INTEGER PRIMARY KEY)
**       chunks with at least one free slot, so inserts fill the holes
**       that deletes leave before a new chunk is added.
**   T_vectorsNN(chunk_id INTEGER PRIMARY KEY, vectors BLOB)
**       one table per vector column NN: chunk_size vectors back to back,
**       so an exact scan reads large contiguous blobs.
**   T_hnswNN
**       the HNSW graph of column NN when it is indexed (vdb_hnsw_store.h).
**
** Every value read back is validated: a blob of the wrong size, a slot
** outside the chunk or a chunk that is missing yields SQLITE_CORRUPT_VTAB.
*/
#ifndef VDB_STORE_H
#define VDB_STORE_H
#include "vdb_schema.h"

#define VDB_FORMAT_VERSION 1

typedef enum VdbStmtId {
  VDB_STMT_ROW_INSERT = 0,
  VDB_STMT_ROW_LOCATE,
  VDB_STMT_ROW_LOCATE_PK,
  VDB_STMT_ROW_DELETE,
  VDB_STMT_ROW_SELECT,
  VDB_STMT_ROW_MOVE,
  VDB_STMT_FREE_FIRST,
  VDB_STMT_FREE_ADD,
  VDB_STMT_FREE_REMOVE,
  VDB_STMT_CHUNK_INSERT,
  VDB_STMT_CHUNK_DELETE,
  VDB_STMT_MAX_ROWID,
  VDB_STMT_COUNT
} VdbStmtId;

typedef struct VdbStore {
  sqlite3 *db;
  char *zDb;                    /* schema name, e.g. "main" */
  char *zName;                  /* the virtual table's name */
  const VdbTableDef *pDef;
  int nVec;                     /* vector columns */
  int aVecCol[VDB_MAX_VECTOR_COLUMNS];     /* their index in pDef->aCol */
  int aVecBytes[VDB_MAX_VECTOR_COLUMNS];   /* bytes per vector */
  sqlite3_stmt *aStmt[VDB_STMT_COUNT];
  sqlite3_stmt *aVecDelete[VDB_MAX_VECTOR_COLUMNS];
  sqlite3_stmt *aVecInsert[VDB_MAX_VECTOR_COLUMNS];
} VdbStore;

/* Little-endian 64-bit integers, the byte order of every integer stored
** in a shadow-table BLOB (slot rowids, graph links). */
static inline sqlite3_int64 vdbGetLe64(const unsigned char *a){
  sqlite3_uint64 v = 0;
  int i;
  for(i=7; i>=0; i--) v = (v<<8) | a[i];
  return (sqlite3_int64)v;
}
static inline void vdbPutLe64(unsigned char *a, sqlite3_int64 x){
  int i;
  for(i=0; i<8; i++) a[i] = (unsigned char)((sqlite3_uint64)x >> (8*i));
}

/* A slot: where one row's vectors live. */
typedef struct VdbSlot {
  sqlite3_int64 chunkId;
  int offset;
} VdbSlot;

int vdbStoreInit(VdbStore *p, sqlite3 *db, const char *zDb, const char *zName,
                 const VdbTableDef *pDef);
void vdbStoreClose(VdbStore *p);

/* Create the shadow tables (xCreate) / check them (xConnect). */
int vdbStoreCreate(VdbStore *p, char **pzErr);
int vdbStoreCheck(VdbStore *p, char **pzErr);
int vdbStoreDrop(VdbStore *p);
int vdbStoreRename(VdbStore *p, const char *zNewName);

/* Is zSuffix (the part after "T_") one of our shadow tables? */
int vdbStoreIsShadowName(const char *zSuffix);

/* Where rowid lives. SQLITE_OK with the slot, SQLITE_DONE if no such row. */
int vdbStoreLocate(VdbStore *p, sqlite3_int64 rowid, VdbSlot *pSlot);
/* The rowid of a text primary key; SQLITE_DONE if absent. */
int vdbStoreLocatePk(VdbStore *p, sqlite3_value *pPk, sqlite3_int64 *pRowid);
/* The largest rowid in use, 0 when empty. */
int vdbStoreMaxRowid(VdbStore *p, sqlite3_int64 *pRowid);

/* Add a row. apVal has pDef->nCol entries (vector entries unused); aVec
** has one decoded vector per vector column. Must be called only after all
** input has been validated. */
int vdbStoreInsert(VdbStore *p, sqlite3_int64 rowid, sqlite3_value *pPk,
                   sqlite3_value **apVal, const VdbVector *aVec, VdbSlot *pSlot);

/* Consistency of rows and slots; SQLITE_CORRUPT with *pzErr on a finding. */
int vdbStoreIntegrity(VdbStore *p, char **pzErr);
int vdbStoreDelete(VdbStore *p, sqlite3_int64 rowid);
/* Give a row a new rowid, keeping its slot and values. */
int vdbStoreMove(VdbStore *p, sqlite3_int64 oldRowid, sqlite3_int64 newRowid);
/* Overwrite one vector of an existing row. */
int vdbStoreWriteVector(VdbStore *p, int iVec, const VdbSlot *pSlot, const VdbVector *pVec);
/* Set the non-vector columns whose apVal entry is non-NULL pointer. */
int vdbStoreUpdateColumns(VdbStore *p, sqlite3_int64 rowid, sqlite3_value **apVal,
                          const unsigned char *aChanged);

/* Read one vector (aVecBytes[iVec] bytes) into pBuf. */
int vdbStoreReadVector(VdbStore *p, int iVec, const VdbSlot *pSlot, void *pBuf);
/* Every vector slot of a chunk (chunkSize x vector bytes), one sequential read. */
int vdbStoreReadChunk(VdbStore *p, int iVec, sqlite3_int64 chunkId, void *pBuf);

/* Prepare a statement against the shadow tables (zSql from sqlite3_mprintf
** is consumed). */
int vdbStorePrepare(VdbStore *p, char *zSql, sqlite3_stmt **ppStmt);

/* Set the store's error message on pzErr for a corrupt shadow table. */
int vdbStoreCorrupt(VdbStore *p, char **pzErr, const char *zWhat);

#endif
