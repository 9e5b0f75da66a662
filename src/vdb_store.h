/*
** The store: the owner of a table's own shadow tables (T_info, T_rows,
** T_chunks, T_free, T_vectorsNN; vdb_format.h describes them). No other
** module issues SQL against them: the virtual table, the exact scan and
** the index kinds ask the store.
**
** The store also carries the one error channel of a table: every layer
** below the virtual table reports a message with vdbStoreError or
** vdbStoreCorrupt, and the virtual table hands it to SQLite.
**
** Every value read back is validated: a blob of the wrong size, a slot
** outside its chunk or a chunk that is missing yields SQLITE_CORRUPT_VTAB.
*/
#ifndef VDB_STORE_H
#define VDB_STORE_H
#include <stdarg.h>
#include "vdb_format.h"
#include "vdb_schema.h"

typedef enum VdbStmtId {
  VDB_STMT_ROW_INSERT = 0,
  VDB_STMT_ROW_LOCATE,
  VDB_STMT_ROW_LOCATE_PK,
  VDB_STMT_ROW_DELETE,
  VDB_STMT_ROW_MOVE,
  VDB_STMT_FREE_FIRST,
  VDB_STMT_FREE_ADD,
  VDB_STMT_FREE_REMOVE,
  VDB_STMT_CHUNK_INSERT,
  VDB_STMT_CHUNK_DELETE,
  VDB_STMT_MAX_ROWID,
  VDB_STMT_INFO_GET,
  VDB_STMT_INFO_SET,
  VDB_STMT_INFO_DELETE,
  VDB_STMT_DATA_VERSION,
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
  int maxVecBytes;
  int aRowCol[VDB_MAX_COLUMNS]; /* aCol[i]'s column in the rows a VdbRows yields; -1: a vector */
  int iRowPk;                   /* the text primary key's column there */
  /* Table names for sqlite3_blob_open (the schema is passed apart). */
  char *zChunksTable;
  char *azVecTable[VDB_MAX_VECTOR_COLUMNS];
  char *zErrMsg;                /* the pending error message, or NULL */
  int formatVersion;
  int corruptLogged;            /* a corruption was reported to sqlite3_log */            /* the table's, VDB_FORMAT_OLDEST..VDB_FORMAT_VERSION */
  int haveDataVersion;
  sqlite3_int64 dataVersion;
  sqlite3_stmt *aStmt[VDB_STMT_COUNT];
  sqlite3_stmt *aVecDelete[VDB_MAX_VECTOR_COLUMNS];
  sqlite3_stmt *aVecInsert[VDB_MAX_VECTOR_COLUMNS];
} VdbStore;

/* A slot: where one row's vectors live. */
typedef struct VdbSlot {
  sqlite3_int64 chunkId;
  int offset;
} VdbSlot;

int vdbStoreInit(VdbStore *p, sqlite3 *db, const char *zDb, const char *zName,
                 const VdbTableDef *pDef);
void vdbStoreClose(VdbStore *p);

/* ---- errors ---- */
/* Set the pending message (printf-style; replaces any earlier one) and
** return rc. */
int vdbStoreError(VdbStore *p, int rc, const char *zFmt, ...);
int vdbStoreErrorV(VdbStore *p, int rc, const char *zFmt, va_list ap);
/* "vectordb table T is corrupt: <what>"; returns SQLITE_CORRUPT_VTAB. */
int vdbStoreCorrupt(VdbStore *p, const char *zFmt, ...);
/* The pending message (sqlite3_malloc'd; the caller owns it), cleared. */
char *vdbStoreTakeError(VdbStore *p);

/* ---- statements (for the store and the index kinds' own tables) ---- */
/* Prepare a persistent statement; zSql from sqlite3_mprintf is consumed. */
int vdbStorePrepare(VdbStore *p, char *zSql, sqlite3_stmt **ppStmt);
/* Run one statement built with sqlite3_mprintf (consumed). */
int vdbStoreExec(VdbStore *p, char *zSql);
/* Step a statement whose rows are not wanted, then reset it so it holds
** no lock; the step's error if it failed. */
int vdbStepReset(sqlite3_stmt *pStmt);
/* Finalize pStmt and combine: rc if it is an error, else finalize's. */
int vdbFinalize(sqlite3_stmt *pStmt, int rc);
/* A random token of VDB_INDEX_TOKEN_CHARS hex digits for index names. */
void vdbStoreRandomToken(char *zToken);

/* ---- the table ---- */
/* Create the shadow tables (xCreate) / check them on connect (xConnect). */
int vdbStoreCreate(VdbStore *p);
int vdbStoreCheck(VdbStore *p);
/* The chunk size in the stored layout signature (vdb_format.h), if it is
** one this declaration's columns could have: *pn is 0 otherwise (no
** layout, a malformed one, or a size out of bounds). */
int vdbStoreLayoutChunkSize(VdbStore *p, int *pn);
int vdbStoreDrop(VdbStore *p);
int vdbStoreRename(VdbStore *p, const char *zNewName);
/* Is zSuffix (the part after "T_") one of the store's shadow tables? */
int vdbStoreIsShadowName(const char *zSuffix);
/* Start of a statement: *pOtherCommit tells whether another connection
** committed to the database since the last call (PRAGMA data_version). */
int vdbStoreSync(VdbStore *p, int *pOtherCommit);

/* ---- T_info ---- */
/* The value under zKey (a copy, sqlite3_value_free it) or NULL if absent. */
int vdbStoreInfoGet(VdbStore *p, const char *zKey, sqlite3_value **ppVal);
int vdbStoreInfoSet(VdbStore *p, const char *zKey, sqlite3_int64 value);
int vdbStoreInfoDelete(VdbStore *p, const char *zKey);

/* ---- rows ---- */
/* Where rowid lives. SQLITE_OK with the slot, SQLITE_DONE if no such row. */
int vdbStoreLocate(VdbStore *p, sqlite3_int64 rowid, VdbSlot *pSlot);
/* The rowid of a text primary key; SQLITE_DONE if absent. */
int vdbStoreLocatePk(VdbStore *p, sqlite3_value *pPk, sqlite3_int64 *pRowid);
/* The largest rowid in use, 0 when empty. */
int vdbStoreMaxRowid(VdbStore *p, sqlite3_int64 *pRowid);
int vdbStoreRowCount(VdbStore *p, sqlite3_int64 *pCount);
/* Add a row. apVal has pDef->nCol entries (vector entries unused); aVec
** has one decoded vector per vector column. Must be called only after all
** input has been validated. */
int vdbStoreInsert(VdbStore *p, sqlite3_int64 rowid, sqlite3_value *pPk,
                   sqlite3_value **apVal, const VdbVector *aVec, VdbSlot *pSlot);
int vdbStoreDelete(VdbStore *p, sqlite3_int64 rowid);
/* Give a row a new rowid, keeping its slot and values. */
int vdbStoreMove(VdbStore *p, sqlite3_int64 oldRowid, sqlite3_int64 newRowid);
/* Overwrite one vector of an existing row. */
int vdbStoreWriteVector(VdbStore *p, int iVec, const VdbSlot *pSlot, const VdbVector *pVec);
/* Set the non-vector columns i with aChanged[i] to apVal[i], and the text
** primary key to pPk unless it is NULL. */
int vdbStoreUpdateColumns(VdbStore *p, sqlite3_int64 rowid, sqlite3_value **apVal,
                          const unsigned char *aChanged, sqlite3_value *pPk);
/* Consistency of rows and slots: SQLITE_OK, or SQLITE_CORRUPT_VTAB with
** the first finding as the pending message. */
int vdbStoreIntegrity(VdbStore *p);

/* ---- vectors ---- */
/* Read one vector (aVecBytes[iVec] bytes) into pBuf. */
int vdbStoreReadVector(VdbStore *p, int iVec, const VdbSlot *pSlot, void *pBuf);
/* Every vector slot of a chunk (chunkSize x vector bytes), one sequential
** read, through *ppBlob: a read handle the caller keeps from one call to
** the next (NULL at first), moved with sqlite3_blob_reopen, which costs a
** fraction of sqlite3_blob_open. An open handle is an active statement of
** the connection: the caller closes it (sqlite3_blob_close) before the
** SQL statement it runs in ends. After an error *ppBlob is closed and
** NULL. */
int vdbStoreReadChunk(VdbStore *p, int iVec, sqlite3_int64 chunkId, void *pBuf,
                      sqlite3_blob **ppBlob);
/* The same for nRow slots from slot iFirst of the chunk. */
int vdbStoreReadRows(VdbStore *p, int iVec, sqlite3_int64 chunkId, int iFirst, int nRow,
                     void *pBuf, sqlite3_blob **ppBlob);

/* ---- row queries ----
** Rows selected by constraints on the rowid, the text primary key or
** non-vector columns, compared by SQLite's own rules. */
#define VDB_COL_ROWID (-1)
#define VDB_COL_PK    (-2)
typedef struct VdbRowConstraint {
  int iCol;                     /* aCol index, VDB_COL_ROWID or VDB_COL_PK */
  char op;                      /* '=' '!' '<' '{'(<=) '>' '}'(>=) 'N'(IS NULL)
                                ** 'n'(IS NOT NULL) 'k'(LIKE) 'g'(GLOB) 's'(IS)
                                ** 'S'(IS NOT) 'i'(IN: every value of apVal) */
  int nVal;
  sqlite3_value **apVal;        /* the operands; valid while the query is prepared */
} VdbRowConstraint;

typedef enum VdbRowsShape {
  VDB_ROWS_BY_ROWID = 1,        /* whole rows, in rowid order */
  VDB_ROWS_BY_SLOT              /* rowid and slot only, in slot order */
} VdbRowsShape;

typedef struct VdbRows VdbRows;
/* The rows matching every constraint (all rows when nCons is 0). */
int vdbStoreRowsOpen(VdbStore *p, VdbRowsShape eShape, const VdbRowConstraint *aCons,
                     int nCons, VdbRows **ppRows);
/* Whole rows looked up one rowid at a time with vdbRowsSeek. */
int vdbStoreRowsOpenSeek(VdbStore *p, VdbRows **ppRows);
/* SQLITE_ROW with the cursor on a row, SQLITE_DONE at the end, or an error. */
int vdbRowsStep(VdbRows *pRows);
int vdbRowsSeek(VdbRows *pRows, sqlite3_int64 rowid);
sqlite3_int64 vdbRowsRowid(VdbRows *pRows);
/* The current row's slot; SQLITE_CORRUPT_VTAB if it is not a valid one. */
int vdbRowsSlot(VdbRows *pRows, VdbSlot *pSlot);
/* A non-vector column (aCol index) or VDB_COL_PK of the current row. */
sqlite3_value *vdbRowsValue(VdbRows *pRows, int iCol);
/* Back to before the first row; the error of the last step, if any. */
int vdbRowsReset(VdbRows *pRows);
void vdbRowsClose(VdbRows *pRows);

/* ---- chunk scans ----
** Every chunk in chunk_id order with one vector column's vectors, read a
** whole chunk BLOB at a time through one reused blob handle. */
typedef struct VdbChunkScan {
  VdbStore *pStore;
  int iVec;
  sqlite3_stmt *pStmt;
  sqlite3_blob *pBlob;
  /* The current chunk, after vdbChunkScanNext returned SQLITE_ROW: */
  sqlite3_int64 chunkId;
  const unsigned char *aValid;   /* chunkSize/8 bytes */
  const unsigned char *aRowid;   /* chunkSize little-endian int64 */
  unsigned char *aVec;           /* chunkSize x aVecBytes[iVec] bytes */
} VdbChunkScan;
int vdbChunkScanOpen(VdbStore *p, int iVec, VdbChunkScan *pScan);
int vdbChunkScanNext(VdbChunkScan *pScan);
/* Only the vectors of chunk chunkId into pScan->aVec (no stepping). */
int vdbChunkScanRead(VdbChunkScan *pScan, sqlite3_int64 chunkId);
void vdbChunkScanClose(VdbChunkScan *pScan);

#endif
