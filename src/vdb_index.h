/*
** Index kinds: how a vector column answers KNN queries.
**
** Every vector column has an index of some kind: "flat" (exact search
** over the chunk storage, the default) or "hnsw" (a graph in its own
** shadow table). The virtual table and the store name no kind: they reach
** a column's index only through the method table below, the way
** PostgreSQL hands an index access method a struct of callbacks.
**
** Adding a kind: write src/vdb_index_NAME.c defining a const VdbIndexKind
** (its parameters, shadow tables and methods), add one line to the
** registry in vdb_index.c and the file to SRCS in the Makefile, and
** describe its shadow tables and T_info keys in vdb_format.h.
**
** Lifetimes: the table-level methods (xCreate, xDrop, xRename) run on the
** connection's store with no index open; an index is opened per
** connection (xOpen) after the store, and closed before it. Errors carry
** their message on the store (vdbStoreError, vdbStoreCorrupt), the one
** channel through which messages reach the user.
*/
#ifndef VDB_INDEX_H
#define VDB_INDEX_H
#include "vdb_knn.h"

typedef struct VdbIndexKind VdbIndexKind;
typedef struct VdbIndex VdbIndex;

/* What one open index is. Each kind's own state starts with this. */
struct VdbIndex {
  const VdbIndexKind *pKind;
  VdbStore *pStore;
  int iVec;                      /* which vector column of the store */
  const VdbColumnDef *pCol;
};

/* A parameter of a kind: INDEXED BY kind(name=value) when DECLARED, and a
** table command 'name=value' that the store keeps in T_info when STORED
** (it then applies to every index of the table that has the parameter).
** Values are integers from iMin to iMax; a parameter with names (azName)
** is given as one of them, and its value is the name's position. */
#define VDB_PARAM_DECLARED 0x01
#define VDB_PARAM_STORED   0x02
typedef struct VdbIndexParam {
  const char *zName;
  int iDefault, iMin, iMax;
  unsigned flags;
  const char *zDoc;              /* one line, for messages and the README */
  const char *const *azName;     /* NULL-terminated names of iMin..iMax, or NULL */
} VdbIndexParam;

/* Where an index reports its statistics (vectordb_stats): one call per
** figure, a text value or (zText NULL) a number; a non-OK return stops the
** report. */
typedef int (*VdbStatFn)(void *pCtx, const char *zKey, const char *zText, double rValue);

struct VdbIndexKind {
  const char *zName;             /* as in INDEXED BY name(...) */
  int nParam;
  const VdbIndexParam *aParam;   /* at most VDB_MAX_INDEX_PARAMS */
  /* The largest chunk of vectors (bytes of one column's chunk blob) a
  ** table's default chunk_size should give this kind, or 0 for the
  ** store's own target (VDB_CHUNK_TARGET_BYTES, which suits scans). A
  ** kind that reads chunks for single vectors asks for less. */
  int nChunkTargetBytes;

  /* ---- the declaration (no database) ---- */
  /* The column may carry this kind with these parameter values (pCol's
  ** index.aParam is filled in); SQLITE_OK, or an error with *pzErr set to
  ** a message without the "vectordb: " prefix. */
  int (*xValidate)(const VdbColumnDef *pCol, char **pzErr);
  /* The kind's part of the layout signature (vdb_format.h); appended to s. */
  void (*xSignature)(const VdbColumnDef *pCol, sqlite3_str *s);
  /* Is zSuffix (the part after "T_") one of this kind's shadow tables? */
  int (*xShadowName)(const char *zSuffix);

  /* ---- the kind's shadow tables (no index open) ---- */
  int (*xCreate)(VdbStore *pStore, int iVec);
  int (*xDrop)(VdbStore *pStore, int iVec);
  /* Rename to the tables of zNew; the store still has the old name. */
  int (*xRename)(VdbStore *pStore, int iVec, const char *zNew);

  /* ---- one connection's index ---- */
  int (*xOpen)(VdbStore *pStore, int iVec, const VdbKernels *pK, VdbIndex **ppOut);
  void (*xClose)(VdbIndex *pIdx);
  /* Set a parameter (a stored setting, or its default again):
  ** SQLITE_NOTFOUND if the kind has no such parameter. */
  int (*xConfigure)(VdbIndex *pIdx, const char *zParam, int value);
  /* Start of a statement's use. bOtherCommit: another connection
  ** committed since the last call, so cached state may be stale. */
  int (*xSync)(VdbIndex *pIdx, int bOtherCommit);
  /* A row's vector was stored at pSlot (pVec: the column's element type). */
  int (*xInsert)(VdbIndex *pIdx, sqlite3_int64 rowid, const VdbSlot *pSlot, const void *pVec);
  /* The row is about to leave the store (or to get a new vector). */
  int (*xDelete)(VdbIndex *pIdx, sqlite3_int64 rowid);
  int (*xMoveRowid)(VdbIndex *pIdx, sqlite3_int64 oldRowid, sqlite3_int64 newRowid);
  /* The q->k nearest rows among those q->pFilter yields (all rows when it
  ** is NULL), with breadth ef (the kind's meaning; > 0; -1: the table's
  ** default). Never called for a distance range or ef_search = 0, which
  ** the exact scan answers. Results as vdbKnnSearch gives them. */
  int (*xSearch)(VdbIndex *pIdx, VdbKnnQuery *q, int ef, VdbHit **paHit, int *pnHit);
  /* Write back what is pending (xSync of the transaction, xSavepoint). */
  int (*xFlush)(VdbIndex *pIdx);
  /* Forget pending and cached state: the shadow tables were rolled back. */
  void (*xDiscard)(VdbIndex *pIdx);
  /* Verify the stored index against the store: SQLITE_OK, or
  ** SQLITE_CORRUPT_VTAB with the finding on the store (vdbStoreCorrupt). */
  int (*xCheck)(VdbIndex *pIdx);
  /* Report the index's figures through xAdd (README, "Statistics"). May
  ** read the whole shadow table: it is for people, not for queries. */
  int (*xStats)(VdbIndex *pIdx, VdbStatFn xAdd, void *pCtx);
  /* The transaction that wrote through this index ended (xCommit, after
  ** the commit, or xRollback, after xDiscard). NULL: nothing to do. */
  void (*xEndTransaction)(VdbIndex *pIdx);
};

/* The registry. */
const VdbIndexKind *vdbIndexKindFind(const char *zName, int nName);
const VdbIndexKind *vdbIndexKindDefault(void);
int vdbIndexKindCount(void);
const VdbIndexKind *vdbIndexKindAt(int i);

/* Is zSuffix a shadow table of any kind? */
int vdbIndexIsShadowName(const char *zSuffix);

/* The parameter zName of a kind, and its position; NULL/-1 if none. */
const VdbIndexParam *vdbIndexParamFind(const VdbIndexKind *pKind, const char *zName, int *piParam);
/* A parameter's value in a column's index declaration; -1 if it has none. */
int vdbIndexParamValue(const VdbIndexDef *pDef, const char *zName);
/* A STORED parameter named zName of any kind, or NULL. */
const VdbIndexParam *vdbIndexStoredParam(const char *zName);

#endif
