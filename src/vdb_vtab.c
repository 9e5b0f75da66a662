/*
** The vectordb virtual table module.
**
**   CREATE VIRTUAL TABLE items USING vectordb(embedding float[768], genre text);
**   SELECT rowid, distance FROM items WHERE embedding MATCH :q AND k = 10;
**
** Declared columns, in order: the primary key (if declared), the user's
** columns, then hidden columns named after the table (for commands),
** "distance", "k" and "ef_search" -- the shape of sqlite-vec's vec0.
**
** Two query plans:
**   scan  every row (or those the pushed-down filters select), by rowid;
**   knn   the k nearest rows to the MATCH vector among those the filters
**         select, ordered by distance then rowid.
** Filters on the rowid, the primary key and every non-vector column
** (=, !=, <, <=, >, >=, IN, IS [NOT] NULL, LIKE, GLOB) become one query
** of the store's rows, so SQLite's own planner and comparison rules apply
** and a filtered KNN query returns k rows whenever k rows match.
**
** The table is the glue between SQLite and two layers it names no kind
** of: the store (vdb_store.h), which owns the rows, and one index per
** vector column (vdb_index.h), which answers KNN queries. Rows are written
** through to the shadow tables at once; an index may batch its writes, and
** the transaction methods tell it when to write them (xSync, xSavepoint)
** and when to forget them (xRollback, xRollbackTo). Each write validates
** all of its input before its first shadow-table write, so a rejected
** statement leaves nothing behind even inside BEGIN ... COMMIT.
**
** Errors: every layer leaves its message on the store (vdbStoreError);
** each method hands it to SQLite on its way out (vdbVtabResult).
*/
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "vdb_vtab.h"
#include "vdb_index.h"

#define VDB_MIN_VTAB_VERSION 3038000   /* sqlite3_vtab_in() */

#ifndef SQLITE_INDEX_CONSTRAINT_LIMIT
# define SQLITE_INDEX_CONSTRAINT_LIMIT 73
#endif
#ifndef SQLITE_INDEX_CONSTRAINT_OFFSET
# define SQLITE_INDEX_CONSTRAINT_OFFSET 74
#endif
#ifndef SQLITE_VTAB_DIRECTONLY
# define SQLITE_VTAB_DIRECTONLY 3
#endif

#define VDB_PLAN_SCAN 1
#define VDB_PLAN_KNN  2

/* Roles of the declared columns. */
#define VDB_ROLE_PK       1
#define VDB_ROLE_USER     2
#define VDB_ROLE_COMMAND  3
#define VDB_ROLE_DISTANCE 4
#define VDB_ROLE_K        5
#define VDB_ROLE_EF       6

/* The hidden columns after the user's, in order. */
static const char *const vdbHiddenColumns[] = { "distance", "k", "ef_search" };
#define VDB_N_HIDDEN 3
#define VDB_HIDDEN_EF 2

typedef struct VdbVtab VdbVtab;

struct VdbVtab {
  sqlite3_vtab base;
  VdbVtab *pNextTable;          /* vdbTables */
  sqlite3 *db;
  const VdbKernels *pK;
  VdbTableDef *pDef;
  VdbStore store;
  int nUserStart;               /* declared index of aCol[0] */
  int iColCommand, iColDistance, iColK, iColEf;
  VdbIndex *apIndex[VDB_MAX_VECTOR_COLUMNS];  /* per vector column */
  int aVecIndex[VDB_MAX_COLUMNS];             /* aCol[i]'s vector column in the store; -1: none */
  int inUpdate;                 /* inside xUpdate: savepoints are our own statements' */
  int iFailedSavepoint;         /* 1 + the savepoint whose xSavepoint flush failed; 0: none */
  int settingsStale;            /* stored settings may have changed since they were read */
};

typedef struct VdbCursor {
  sqlite3_vtab_cursor base;
  int plan;
  VdbRows *pRows;               /* scan: the selected rows; knn: rows looked up by rowid */
  int rowReady;                 /* pRows is positioned on the current row */
  int eof;
  VdbHit *aHit;                 /* knn results */
  int nHit, iHit;
  void *pVecBuf;
} VdbCursor;

/* Set the message of an error found here; returns rc. */
static int vdbVtabError(VdbVtab *p, int rc, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  rc = vdbStoreErrorV(&p->store, rc, zFmt, ap);
  va_end(ap);
  return rc;
}

/* The way out of every method that can fail: the pending message goes to
** SQLite, and a bare SQLITE_CORRUPT_VTAB gets one naming the table. */
static int vdbVtabResult(VdbVtab *p, int rc){
  char *zErr;
  if( rc==SQLITE_OK && p->store.zErrMsg==0 ) return rc;
  zErr = vdbStoreTakeError(&p->store);
  if( rc==SQLITE_OK ){
    sqlite3_free(zErr);             /* an operation that recovered */
    return rc;
  }
  if( zErr==0 && rc==SQLITE_CORRUPT_VTAB ){
    zErr = sqlite3_mprintf("vectordb table %s is corrupt: its shadow tables disagree", p->store.zName);
  }
  if( zErr ){
    sqlite3_free(p->base.zErrMsg);
    p->base.zErrMsg = zErr;
  }
  return rc;
}

static int vdbColumnRole(const VdbVtab *p, int iCol, int *piUser){
  if( p->pDef->zPkName && iCol==0 ) return VDB_ROLE_PK;
  if( iCol>=p->nUserStart && iCol<p->nUserStart+p->pDef->nCol ){
    *piUser = iCol - p->nUserStart;
    return VDB_ROLE_USER;
  }
  if( iCol==p->iColCommand ) return VDB_ROLE_COMMAND;
  if( iCol==p->iColDistance ) return VDB_ROLE_DISTANCE;
  if( iCol==p->iColEf ) return VDB_ROLE_EF;
  return VDB_ROLE_K;
}

/* The index kind of vector column iVec. */
static const VdbIndexKind *vdbKindOf(const VdbVtab *p, int iVec){
  return p->pDef->aCol[p->store.aVecCol[iVec]].index.pKind;
}

/* ---- stored settings ---------------------------------------------------------
** Commands store some index parameters for the whole table in T_info
** (VDB_PARAM_STORED); they apply to every index that has the parameter. */

/* The i-th distinct stored parameter of the registry, or NULL past the end. */
static const VdbIndexParam *vdbStoredParamAt(int i){
  int k, j;
  for(k=0; k<vdbIndexKindCount(); k++){
    const VdbIndexKind *pKind = vdbIndexKindAt(k);
    for(j=0; j<pKind->nParam; j++){
      const VdbIndexParam *pParam = &pKind->aParam[j];
      /* The first kind with a name speaks for it. */
      if( !(pParam->flags & VDB_PARAM_STORED) || vdbIndexStoredParam(pParam->zName)!=pParam ) continue;
      if( i--==0 ) return pParam;
    }
  }
  return 0;
}

/* Is pVal, stored under pParam's name, an integer within its range? A
** value out of range is left unused on connect and reported by the
** integrity check. */
static int vdbStoredValueOk(const VdbIndexParam *pParam, sqlite3_value *pVal){
  sqlite3_int64 v = sqlite3_value_int64(pVal);
  return sqlite3_value_type(pVal)==SQLITE_INTEGER && v>=pParam->iMin && v<=pParam->iMax;
}

/* Give every index that has parameter zName the value v. */
static void vdbConfigureAll(VdbVtab *p, const char *zName, int v){
  int i;
  for(i=0; i<p->store.nVec; i++){
    if( p->apIndex[i] ) vdbKindOf(p, i)->xConfigure(p->apIndex[i], zName, v);
  }
}

/* Each index's stored parameters: the stored setting where there is a
** valid one, else the declared value. Run again whenever the stored ones
** may have changed (another connection committed, or a rollback), so a
** setting a rollback removed goes back to the declared value. Each
** parameter is given its final value once: passing through the declared
** one first (as this did until 2026-12) told the process's shared graph
** copy a default cache_mb of 256 after every commit of another
** connection, and it evicted down to that, losing most of a 550 MiB
** index (cosine 200k x 384) to every commit. */
static int vdbLoadSettings(VdbVtab *p){
  int i, j, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    const VdbIndexDef *pDef = &p->pDef->aCol[p->store.aVecCol[i]].index;
    if( p->apIndex[i]==0 ) continue;
    for(j=0; rc==SQLITE_OK && j<pDef->pKind->nParam; j++){
      const char *zName = pDef->pKind->aParam[j].zName;
      const VdbIndexParam *pParam = vdbIndexStoredParam(zName);   /* whose range a stored value keeps */
      sqlite3_value *pVal = 0;
      int v = pDef->aParam[j];
      if( !(pDef->pKind->aParam[j].flags & VDB_PARAM_STORED) || pParam==0 ) continue;
      rc = vdbStoreInfoGet(&p->store, zName, &pVal);
      if( rc==SQLITE_OK && pVal && vdbStoredValueOk(pParam, pVal) ) v = sqlite3_value_int(pVal);
      sqlite3_value_free(pVal);
      if( rc==SQLITE_OK ) pDef->pKind->xConfigure(p->apIndex[i], zName, v);
    }
  }
  if( rc==SQLITE_OK ) p->settingsStale = 0;
  return rc;
}

/* ---- create, connect, destroy ----------------------------------------------- */

static const char *vdbDeclType(const VdbColumnDef *c){
  if( c->eKind==VDB_COL_VECTOR ) return "BLOB";
  switch( c->eValType ){
    case VDB_VAL_INTEGER: case VDB_VAL_BOOLEAN: return "INTEGER";
    case VDB_VAL_FLOAT: return "REAL";
    case VDB_VAL_TEXT: return "TEXT";
    case VDB_VAL_BLOB: return "BLOB";
    default: return "";
  }
}

static void vdbCloseIndexes(VdbVtab *p){
  int i;
  for(i=0; i<VDB_MAX_VECTOR_COLUMNS; i++){
    if( p->apIndex[i] ) p->apIndex[i]->pKind->xClose(p->apIndex[i]);
    p->apIndex[i] = 0;
  }
}

/* Open every vector column's index, then apply the stored settings.
** Either every index is open or none is (apIndex[0] tells): a rename
** closes them and one that fails to reopen leaves them closed, to be
** opened again by the next statement (vdbSyncIndexes). */
static int vdbOpenIndexes(VdbVtab *p){
  int i, rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    rc = vdbKindOf(p, i)->xOpen(&p->store, i, p->pK, &p->apIndex[i]);
  }
  if( rc==SQLITE_OK ) rc = vdbLoadSettings(p);
  if( rc!=SQLITE_OK ) vdbCloseIndexes(p);
  return rc;
}

static int vdbIndexesOpen(const VdbVtab *p){
  return p->apIndex[0]!=0;
}

/* Every vectordb table connected in the process, on any connection, for
** vectordb_stats: process-wide rather than per module registration, so
** that loading the extension twice on a connection (which replaces the
** module while its tables live on) loses none. Guarded by vdbTablesMutex;
** a table found for a connection stays valid while that connection runs
** the statement that looks for it, since SQLite serialises a connection. */
static pthread_mutex_t vdbTablesMutex = PTHREAD_MUTEX_INITIALIZER;
static VdbVtab *vdbTables;

static void vdbTablesAdd(VdbVtab *p){
  pthread_mutex_lock(&vdbTablesMutex);
  p->pNextTable = vdbTables;
  vdbTables = p;
  pthread_mutex_unlock(&vdbTablesMutex);
}

static void vdbTablesRemove(VdbVtab *p){
  VdbVtab **pp;
  pthread_mutex_lock(&vdbTablesMutex);
  for(pp=&vdbTables; *pp; pp=&(*pp)->pNextTable){
    if( *pp==p ){ *pp = p->pNextTable; break; }
  }
  pthread_mutex_unlock(&vdbTablesMutex);
}

/* The table schema.name connected on db, or NULL. */
static VdbVtab *vdbTablesFind(sqlite3 *db, const char *zSchema, const char *zTable){
  VdbVtab *p;
  pthread_mutex_lock(&vdbTablesMutex);
  for(p=vdbTables; p; p=p->pNextTable){
    if( p->db==db && sqlite3_stricmp(p->store.zDb, zSchema)==0
     && sqlite3_stricmp(p->store.zName, zTable)==0 ) break;
  }
  pthread_mutex_unlock(&vdbTablesMutex);
  return p;
}

static void vdbVtabFree(VdbVtab *p){
  if( p==0 ) return;
  vdbTablesRemove(p);
  vdbCloseIndexes(p);
  vdbStoreClose(&p->store);
  vdbSchemaFree(p->pDef);
  sqlite3_free(p->base.zErrMsg);
  sqlite3_free(p);
}

/* The hidden command column takes the table's name, next to the hidden
** distance, k and ef_search columns: a table name equal to any declared
** or hidden column name would make the declaration invalid. Returns the
** clashing column name, or NULL. */
static const char *vdbTableNameClash(const VdbTableDef *pDef, const char *zTable){
  int i;
  for(i=0; i<VDB_N_HIDDEN; i++){
    if( sqlite3_stricmp(zTable, vdbHiddenColumns[i])==0 ) return vdbHiddenColumns[i];
  }
  if( pDef->zPkName && sqlite3_stricmp(zTable, pDef->zPkName)==0 ) return pDef->zPkName;
  for(i=0; i<pDef->nCol; i++){
    if( sqlite3_stricmp(zTable, pDef->aCol[i].zName)==0 ) return pDef->aCol[i].zName;
  }
  return 0;
}

/* The store's tables, then each index kind's. */
static int vdbCreateTables(VdbVtab *p){
  int i, rc = vdbStoreCreate(&p->store);
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    rc = vdbKindOf(p, i)->xCreate(&p->store, i);
  }
  return rc;
}

static int vdbVtabInit(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                       sqlite3_vtab **ppVtab, char **pzErr, int isCreate){
  VdbVtab *p;
  sqlite3_str *s;
  char *zDecl;
  int rc, i, nVec = 0;
  *ppVtab = 0;
  if( sqlite3_libversion_number()<VDB_MIN_VTAB_VERSION ){
    *pzErr = sqlite3_mprintf("vectordb tables need SQLite 3.38.0 or later; this is %s",
                             sqlite3_libversion());
    return SQLITE_ERROR;
  }
  p = (VdbVtab*)sqlite3_malloc(sizeof(*p));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->pK = (const VdbKernels*)pAux;
  rc = vdbSchemaParse(argc-3, argv+3, &p->pDef, pzErr);
  if( rc!=SQLITE_OK ){ vdbVtabFree(p); return rc; }
  if( vdbTableNameClash(p->pDef, argv[2]) ){
    *pzErr = sqlite3_mprintf("vectordb: a table cannot be named %s: it has a column %s, "
                             "and its hidden command column takes the table's name",
                             argv[2], vdbTableNameClash(p->pDef, argv[2]));
    vdbVtabFree(p);
    return SQLITE_ERROR;
  }

  p->nUserStart = p->pDef->zPkName ? 1 : 0;
  p->iColCommand = p->nUserStart + p->pDef->nCol;
  p->iColDistance = p->iColCommand + 1;
  p->iColK = p->iColCommand + 2;
  p->iColEf = p->iColCommand + 3;
  for(i=0; i<p->pDef->nCol; i++){
    p->aVecIndex[i] = p->pDef->aCol[i].eKind==VDB_COL_VECTOR ? nVec++ : -1;
  }

  s = sqlite3_str_new(db);
  sqlite3_str_appendall(s, "CREATE TABLE x(");
  if( p->pDef->zPkName ){
    sqlite3_str_appendf(s, "\"%w\" %s, ", p->pDef->zPkName, p->pDef->pkIsText ? "TEXT" : "INTEGER");
  }
  for(i=0; i<p->pDef->nCol; i++){
    sqlite3_str_appendf(s, "\"%w\" %s, ", p->pDef->aCol[i].zName, vdbDeclType(&p->pDef->aCol[i]));
  }
  sqlite3_str_appendf(s, "\"%w\" HIDDEN, %s REAL HIDDEN, %s INTEGER HIDDEN, "
                         "%s INTEGER HIDDEN)", argv[2], vdbHiddenColumns[0], vdbHiddenColumns[1],
                      vdbHiddenColumns[2]);
  zDecl = sqlite3_str_finish(s);
  rc = zDecl ? sqlite3_declare_vtab(db, zDecl) : SQLITE_NOMEM;
  sqlite3_free(zDecl);
  if( rc==SQLITE_OK ){
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    /* A KNN scan can be costly: keep it out of triggers and views that
    ** an untrusted schema could define. */
    if( sqlite3_libversion_number()>=3031000 ) sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    rc = vdbStoreInit(&p->store, db, argv[1], argv[2], p->pDef);
  }
  if( rc==SQLITE_OK && !isCreate && !p->pDef->chunkSizeDeclared ){
    /* The default chunk size has changed between builds (vdb_schema.h):
    ** a table declared without chunk_size keeps the one it was made with.
    ** A read that fails fails the connect: after an I/O error SQLite may
    ** have ended the transaction, and going on would hide that. */
    int nStored = 0;
    rc = vdbStoreLayoutChunkSize(&p->store, &nStored);
    if( rc==SQLITE_OK && nStored>0 ) p->pDef->chunkSize = nStored;
  }
  if( rc==SQLITE_OK ) rc = isCreate ? vdbCreateTables(p) : vdbStoreCheck(&p->store);
  if( rc==SQLITE_OK ) rc = vdbOpenIndexes(p);
  if( rc!=SQLITE_OK ){
    char *zErr = vdbStoreTakeError(&p->store);
    *pzErr = zErr ? zErr : sqlite3_mprintf("vectordb: %s", sqlite3_errmsg(db));
    vdbVtabFree(p);
    return rc;
  }
  vdbTablesAdd(p);
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int vdbVtabCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                         sqlite3_vtab **ppVtab, char **pzErr){
  return vdbVtabInit(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

static int vdbVtabConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                          sqlite3_vtab **ppVtab, char **pzErr){
  return vdbVtabInit(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

static int vdbVtabDisconnect(sqlite3_vtab *pVtab){
  vdbVtabFree((VdbVtab*)pVtab);
  return SQLITE_OK;
}

static int vdbVtabDestroy(sqlite3_vtab *pVtab){
  VdbVtab *p = (VdbVtab*)pVtab;
  int i, rc = SQLITE_OK;
  vdbCloseIndexes(p);
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    rc = vdbKindOf(p, i)->xDrop(&p->store, i);
  }
  if( rc==SQLITE_OK ) rc = vdbStoreDrop(&p->store);
  if( rc==SQLITE_OK ) vdbVtabFree(p);
  return rc;
}

/* Write back what every index has pending. Writing shadow rows sets
** last_insert_rowid(); at xSync of an autocommit INSERT that comes after
** SQLite set it to the user's new rowid, which must survive the flush. */
static int vdbFlushIndexes(VdbVtab *p){
  sqlite3_int64 iSavedRowid = sqlite3_last_insert_rowid(p->db);
  int i, rc = SQLITE_OK;
  /* Closed (during a rename): nothing is pending. */
  for(i=0; rc==SQLITE_OK && vdbIndexesOpen(p) && i<p->store.nVec; i++){
    rc = p->apIndex[i]->pKind->xFlush(p->apIndex[i]);
  }
  sqlite3_set_last_insert_rowid(p->db, iSavedRowid);
  return rc;
}

/* Pending index changes are written under the old names; the indexes are
** then reopened so their statements name the renamed tables. */
static int vdbVtabRename(sqlite3_vtab *pVtab, const char *zNew){
  VdbVtab *p = (VdbVtab*)pVtab;
  int i, rc = SQLITE_OK;
  /* Refused before anything changes: under such a name the table could not
  ** be connected again, not even to be dropped. */
  if( vdbTableNameClash(p->pDef, zNew) ){
    rc = vdbVtabError(p, SQLITE_ERROR, "vectordb: cannot rename %s to %s: it has a column %s, "
                      "and its hidden command column takes the table's name",
                      p->store.zName, zNew, vdbTableNameClash(p->pDef, zNew));
    return vdbVtabResult(p, rc);
  }
  rc = vdbFlushIndexes(p);
  vdbCloseIndexes(p);
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    rc = vdbKindOf(p, i)->xRename(&p->store, i, zNew);
  }
  if( rc==SQLITE_OK ) rc = vdbStoreRename(&p->store, zNew);
  if( rc==SQLITE_OK ) rc = vdbOpenIndexes(p);
  return vdbVtabResult(p, rc);
}

static int vdbVtabShadowName(const char *zSuffix){
  return vdbStoreIsShadowName(zSuffix) || vdbIndexIsShadowName(zSuffix);
}

/* ---- transactions ---------------------------------------------------------------
** Rows are written through to the shadow tables at once, so SQLite's
** journal commits and rolls them back. An index may batch its writes:
** they reach the shadow tables at xSync (before the commit) and at
** xSavepoint (so a later ROLLBACK TO restores exactly that point), and
** what it holds is dropped on xRollback and xRollbackTo, after which it
** reloads from the restored tables. */

static void vdbDiscardIndexes(VdbVtab *p){
  int i;
  for(i=0; vdbIndexesOpen(p) && i<p->store.nVec; i++) p->apIndex[i]->pKind->xDiscard(p->apIndex[i]);
  p->settingsStale = 1;
}

static int vdbVtabBegin(sqlite3_vtab *pVtab){ (void)pVtab; return SQLITE_OK; }
static int vdbVtabSync(sqlite3_vtab *pVtab){
  VdbVtab *p = (VdbVtab*)pVtab;
  return vdbVtabResult(p, vdbFlushIndexes(p));
}
/* The transaction is over: indexes may share again what they kept
** private while it had changes of its own. */
static void vdbEndIndexes(VdbVtab *p){
  int i;
  for(i=0; vdbIndexesOpen(p) && i<p->store.nVec; i++){
    if( p->apIndex[i]->pKind->xEndTransaction ) p->apIndex[i]->pKind->xEndTransaction(p->apIndex[i]);
  }
}
static int vdbVtabCommit(sqlite3_vtab *pVtab){
  vdbEndIndexes((VdbVtab*)pVtab);
  return SQLITE_OK;
}
static int vdbVtabRollback(sqlite3_vtab *pVtab){
  ((VdbVtab*)pVtab)->iFailedSavepoint = 0;
  vdbDiscardIndexes((VdbVtab*)pVtab);
  vdbEndIndexes((VdbVtab*)pVtab);
  return SQLITE_OK;
}
/* Savepoints that SQLite opens for this module's own shadow-table
** statements (inside xUpdate) are not user savepoints: flushing there would
** write every index's pending changes on every row, and a failure there
** fails the enclosing statement, whose own rollback discards them.
**
** A flush that fails fails the statement about to start, and SQLite then
** calls xRollbackTo for that same savepoint. Nothing of the statement has
** run, and the flush's own writes happened before its savepoint began, so
** they stay; what was not yet written is still pending in the indexes. So
** that rollback must keep them: discarding would lose the changes of the
** transaction's earlier statements while their rows stay. */
static int vdbVtabSavepoint(sqlite3_vtab *pVtab, int iSavepoint){
  VdbVtab *p = (VdbVtab*)pVtab;
  int rc;
  if( p->inUpdate ) return SQLITE_OK;
  rc = vdbFlushIndexes(p);
  p->iFailedSavepoint = rc==SQLITE_OK ? 0 : iSavepoint+1;
  return vdbVtabResult(p, rc);
}
static int vdbVtabRelease(sqlite3_vtab *pVtab, int iSavepoint){
  (void)pVtab; (void)iSavepoint;
  return SQLITE_OK;
}
static int vdbVtabRollbackTo(sqlite3_vtab *pVtab, int iSavepoint){
  VdbVtab *p = (VdbVtab*)pVtab;
  if( p->inUpdate ) return SQLITE_OK;
  if( p->iFailedSavepoint>0 && p->iFailedSavepoint==iSavepoint+1 ){   /* ROLLBACK TO a transaction savepoint is -1 */
    p->iFailedSavepoint = 0;        /* the statement whose xSavepoint failed: see above */
  }else{
    vdbDiscardIndexes(p);
  }
  return SQLITE_OK;
}

/* Start of a statement's use of the table: indexes drop state that another
** connection's commit made stale, and stored settings are read again when
** they may have changed. */
static int vdbSyncIndexes(VdbVtab *p){
  int i, bOther = 0, rc = vdbStoreSync(&p->store, &bOther);
  if( bOther ) p->settingsStale = 1;
  if( rc==SQLITE_OK && !vdbIndexesOpen(p) ) rc = vdbOpenIndexes(p);
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    rc = p->apIndex[i]->pKind->xSync(p->apIndex[i], bOther);
  }
  if( rc==SQLITE_OK && p->settingsStale ) rc = vdbLoadSettings(p);
  return rc;
}

/* ---- planning ------------------------------------------------------------------
** idxStr holds one 4-character entry per argv value: kind, operator and a
** two-digit hex column number.
**   kind: 'M' MATCH (column = vector index), 'K' k, 'L' LIMIT, 'O' OFFSET,
**         'E' ef_search, 'D' distance,
**         'R' rowid, 'P' text primary key, 'C' non-vector column (aCol index)
**   op:   '=' EQ, '!' NE, '<' LT, '{' LE, '>' GT, '}' GE, 'N' IS NULL,
**         'n' IS NOT NULL, 'i' IN (all values at once), 'k' LIKE, 'g' GLOB,
**         's' IS, 'S' IS NOT
*/

/* The two-digit hex column number of an idxStr entry. */
static int vdbHex2(const char *z){
  int v = 0, i;
  for(i=0; i<2; i++){
    char c = z[i];
    v = v*16 + (c>='0' && c<='9' ? c-'0' : (c|0x20)-'a'+10);
  }
  return v;
}

static char vdbOpCode(int op){
  switch( op ){
    case SQLITE_INDEX_CONSTRAINT_EQ: return '=';
    case SQLITE_INDEX_CONSTRAINT_NE: return '!';
    case SQLITE_INDEX_CONSTRAINT_LT: return '<';
    case SQLITE_INDEX_CONSTRAINT_LE: return '{';
    case SQLITE_INDEX_CONSTRAINT_GT: return '>';
    case SQLITE_INDEX_CONSTRAINT_GE: return '}';
    case SQLITE_INDEX_CONSTRAINT_ISNULL: return 'N';
    case SQLITE_INDEX_CONSTRAINT_ISNOTNULL: return 'n';
    case SQLITE_INDEX_CONSTRAINT_LIKE: return 'k';
    case SQLITE_INDEX_CONSTRAINT_GLOB: return 'g';
    case SQLITE_INDEX_CONSTRAINT_IS: return 's';
    case SQLITE_INDEX_CONSTRAINT_ISNOT: return 'S';
  }
  return 0;
}

static int vdbVtabBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  VdbVtab *p = (VdbVtab*)pVtab;
  sqlite3_str *s;
  int i, nArg = 0, iMatch = -1, hasK = 0, hasLimit = 0, hasRowidEq = 0, nFilter = 0;
  int matchUnusable = 0;

  /* First: is this a KNN query? */
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
    int iUser, role;
    if( c->op!=SQLITE_INDEX_CONSTRAINT_MATCH || c->iColumn<0 ) continue;
    role = vdbColumnRole(p, c->iColumn, &iUser);
    if( role!=VDB_ROLE_USER || p->pDef->aCol[iUser].eKind!=VDB_COL_VECTOR ){
      return vdbVtabResult(p, vdbVtabError(p, SQLITE_ERROR, "vectordb: MATCH works on vector columns only"));
    }
    if( !c->usable ){ matchUnusable = 1; continue; }
    if( iMatch>=0 ){
      return vdbVtabResult(p, vdbVtabError(p, SQLITE_ERROR, "vectordb: a KNN query takes one MATCH constraint"));
    }
    iMatch = i;
  }
  /* The MATCH vector comes from a table not yet scanned: ask for another
  ** join order rather than a plan that cannot evaluate MATCH. */
  if( iMatch<0 && matchUnusable ) return SQLITE_CONSTRAINT;

  s = sqlite3_str_new(0);
  if( iMatch>=0 ){
    int iUser = 0;
    vdbColumnRole(p, pInfo->aConstraint[iMatch].iColumn, &iUser);
    pInfo->aConstraintUsage[iMatch].argvIndex = ++nArg;
    pInfo->aConstraintUsage[iMatch].omit = 1;
    sqlite3_str_appendf(s, "M=%02x", p->aVecIndex[iUser]);
  }
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
    int iUser = 0, role;
    char kind = 0, op;
    if( !c->usable || i==iMatch ) continue;
    if( c->op==SQLITE_INDEX_CONSTRAINT_LIMIT || c->op==SQLITE_INDEX_CONSTRAINT_OFFSET ){
      /* SQLite offers LIMIT (3.41+) only with OFFSET when both are
      ** present; a KNN plan takes both and skips OFFSET rows itself. */
      if( iMatch<0 ) continue;
      op = '=';
      if( c->op==SQLITE_INDEX_CONSTRAINT_LIMIT ){ kind = 'L'; hasLimit = 1; }
      else kind = 'O';
    }else{
      op = vdbOpCode(c->op);
      if( op==0 ) continue;         /* left to SQLite */
      role = c->iColumn<0 ? VDB_ROLE_PK : vdbColumnRole(p, c->iColumn, &iUser);
      if( c->iColumn<0 || (role==VDB_ROLE_PK && !p->pDef->pkIsText) ){
        kind = 'R';
      }else if( role==VDB_ROLE_PK ){
        kind = 'P';
      }else if( role==VDB_ROLE_USER && p->pDef->aCol[iUser].eKind!=VDB_COL_VECTOR ){
        kind = 'C';
      }else if( role==VDB_ROLE_K && op=='=' ){
        kind = 'K'; hasK = 1;
      }else if( role==VDB_ROLE_EF && op=='=' ){
        if( iMatch<0 ) continue;
        kind = 'E';
      }else if( role==VDB_ROLE_DISTANCE && strchr("<{>}", op) ){
        if( iMatch<0 ) continue;
        kind = 'D';
      }else{
        continue;
      }
      if( (kind=='R' || kind=='P' || kind=='C') && op=='='
       && sqlite3_vtab_in(pInfo, i, -1) ){
        /* Receive the whole IN list at once instead of one xFilter call
        ** per value, which would break KNN semantics. */
        sqlite3_vtab_in(pInfo, i, 1);
        op = 'i';
      }
      if( kind=='R' && op=='=' ) hasRowidEq = 1;
      if( kind=='R' || kind=='P' || kind=='C' ) nFilter++;
    }
    pInfo->aConstraintUsage[i].argvIndex = ++nArg;
    pInfo->aConstraintUsage[i].omit = 1;
    sqlite3_str_appendf(s, "%c%c%02x", kind, op, kind=='C' ? iUser : 0);
  }

  if( iMatch>=0 ){
    if( !hasK && !hasLimit ){
      sqlite3_free(sqlite3_str_finish(s));
      return vdbVtabResult(p, vdbVtabError(p, SQLITE_ERROR,
          "vectordb: a KNN query needs \"AND k = ?\"%s",
          sqlite3_libversion_number()>=3041000 ? " or a LIMIT" :
          " (SQLite before 3.41 does not pass LIMIT to virtual tables with MATCH)"));
    }
    pInfo->idxNum = VDB_PLAN_KNN;
    pInfo->estimatedCost = nFilter ? 1000.0 : 10000.0;
    pInfo->estimatedRows = 10;
    if( pInfo->nOrderBy==1 && pInfo->aOrderBy[0].iColumn==p->iColDistance
     && !pInfo->aOrderBy[0].desc ){
      pInfo->orderByConsumed = 1;
    }
  }else{
    pInfo->idxNum = VDB_PLAN_SCAN;
    if( hasRowidEq ){
      pInfo->estimatedCost = 1.0;
      pInfo->estimatedRows = 1;
      pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    }else{
      pInfo->estimatedCost = nFilter ? 50000.0 : 1000000.0;
      pInfo->estimatedRows = nFilter ? 1000 : 100000;
    }
    if( pInfo->nOrderBy==1 && pInfo->aOrderBy[0].iColumn<0 && !pInfo->aOrderBy[0].desc ){
      pInfo->orderByConsumed = 1;
    }
  }
  pInfo->idxStr = sqlite3_str_finish(s);
  pInfo->needToFreeIdxStr = 1;
  if( pInfo->idxStr==0 && nArg>0 ) return SQLITE_NOMEM;
  return SQLITE_OK;
}

/* ---- cursors ---------------------------------------------------------------------- */

static int vdbVtabOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  VdbCursor *pCur = (VdbCursor*)sqlite3_malloc(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

static void vdbCursorReset(VdbCursor *pCur){
  vdbRowsClose(pCur->pRows);
  pCur->pRows = 0;
  sqlite3_free(pCur->aHit);
  pCur->aHit = 0;
  pCur->nHit = pCur->iHit = 0;
  pCur->rowReady = 0;
  pCur->eof = 1;
}

static int vdbVtabClose(sqlite3_vtab_cursor *cur){
  VdbCursor *pCur = (VdbCursor*)cur;
  vdbCursorReset(pCur);
  sqlite3_free(pCur->pVecBuf);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

/* The row constraints in idxStr, for the store's row query. The values
** are copies: IN list members are transient. */
typedef struct VdbFilterPlan {
  int nCons;
  VdbRowConstraint *aCons;      /* one per idxStr entry at most */
  int *aFirst;                  /* aCons[i]'s first value in apVal */
  int nVal, nAlloc;
  sqlite3_value **apVal;
} VdbFilterPlan;

static int vdbPlanAddValue(VdbFilterPlan *f, sqlite3_value *pVal){
  pVal = sqlite3_value_dup(pVal);
  if( pVal==0 ) return SQLITE_NOMEM;
  if( f->nVal>=f->nAlloc ){
    int nNew = f->nAlloc ? f->nAlloc*2 : 16;
    sqlite3_value **a = (sqlite3_value**)sqlite3_realloc64(f->apVal, sizeof(*a)*(sqlite3_uint64)nNew);
    if( a==0 ){ sqlite3_value_free(pVal); return SQLITE_NOMEM; }
    f->apVal = a;
    f->nAlloc = nNew;
  }
  f->apVal[f->nVal++] = pVal;
  return SQLITE_OK;
}

static void vdbPlanFree(VdbFilterPlan *f){
  int i;
  for(i=0; i<f->nVal; i++) sqlite3_value_free(f->apVal[i]);
  sqlite3_free(f->apVal);
  sqlite3_free(f->aCons);
  sqlite3_free(f->aFirst);
}

/* Collect the 'R' (rowid), 'P' (text primary key) and 'C' (column)
** entries of idxStr. Constraints point into apVal only once all values
** are in (it may move while it grows). */
static int vdbBuildFilter(const char *idxStr, int argc, sqlite3_value **argv, VdbFilterPlan *f){
  int i, rc = SQLITE_OK;
  memset(f, 0, sizeof(*f));
  if( argc==0 ) return SQLITE_OK;
  f->aCons = (VdbRowConstraint*)sqlite3_malloc64(sizeof(VdbRowConstraint)*(sqlite3_uint64)argc);
  f->aFirst = (int*)sqlite3_malloc64(sizeof(int)*(sqlite3_uint64)argc);
  if( f->aCons==0 || f->aFirst==0 ) return SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<argc; i++){
    const char *e = idxStr + 4*i;
    VdbRowConstraint *c;
    if( e[0]!='R' && e[0]!='P' && e[0]!='C' ) continue;
    c = &f->aCons[f->nCons];
    c->iCol = e[0]=='R' ? VDB_COL_ROWID : e[0]=='P' ? VDB_COL_PK : vdbHex2(e+2);
    c->op = e[1];
    f->aFirst[f->nCons++] = f->nVal;
    if( e[1]=='i' ){
      sqlite3_value *pVal = 0;
      for(rc = sqlite3_vtab_in_first(argv[i], &pVal); rc==SQLITE_OK && pVal;
          rc = sqlite3_vtab_in_next(argv[i], &pVal)){
        rc = vdbPlanAddValue(f, pVal);
        if( rc!=SQLITE_OK ) break;
      }
      if( rc==SQLITE_DONE ) rc = SQLITE_OK;
    }else if( e[1]!='N' && e[1]!='n' ){
      rc = vdbPlanAddValue(f, argv[i]);
    }
  }
  for(i=0; i<f->nCons; i++){
    int iEnd = i+1<f->nCons ? f->aFirst[i+1] : f->nVal;
    f->aCons[i].apVal = f->apVal ? &f->apVal[f->aFirst[i]] : 0;
    f->aCons[i].nVal = iEnd - f->aFirst[i];
  }
  return rc;
}

/* The rows the filters in idxStr select, in the given shape; *ppRows is
** NULL when idxStr has no filter and bAll is 0. */
static int vdbOpenFiltered(VdbVtab *p, VdbRowsShape eShape, int bAll, const char *idxStr,
                           int argc, sqlite3_value **argv, VdbRows **ppRows){
  VdbFilterPlan f;
  int rc = vdbBuildFilter(idxStr, argc, argv, &f);
  *ppRows = 0;
  if( rc==SQLITE_OK && (bAll || f.nCons>0) ){
    rc = vdbStoreRowsOpen(&p->store, eShape, f.aCons, f.nCons, ppRows);
  }
  vdbPlanFree(&f);
  return rc;
}

/* Tighten the distance range with one "distance op value" constraint. */
static void vdbAddDistanceBound(VdbKnnQuery *q, char op, double v){
  int inclusive = (op=='{' || op=='}');
  if( op=='<' || op=='{' ){
    if( !q->hasHi || v<q->hi || (v==q->hi && !inclusive) ){
      q->hasHi = 1; q->hi = v; q->hiInclusive = inclusive;
    }
  }else{
    if( !q->hasLo || v>q->lo || (v==q->lo && !inclusive) ){
      q->hasLo = 1; q->lo = v; q->loInclusive = inclusive;
    }
  }
}

/* k and LIMIT must be integers in 0..VDB_MAX_K. */
static int vdbReadK(VdbVtab *p, sqlite3_value *pVal, const char *zWhat, int *pK){
  sqlite3_int64 k;
  if( sqlite3_value_type(pVal)!=SQLITE_INTEGER ){
    return vdbVtabError(p, SQLITE_ERROR, "vectordb: %s must be an integer", zWhat);
  }
  k = sqlite3_value_int64(pVal);
  if( k<0 || k>VDB_MAX_K ){
    return vdbVtabError(p, SQLITE_ERROR, "vectordb: %s must be from 0 to %d, got %lld",
                        zWhat, VDB_MAX_K, k);
  }
  *pK = (int)k;
  return SQLITE_OK;
}

static int vdbFilterKnn(VdbCursor *pCur, VdbVtab *p, const char *idxStr,
                        int argc, sqlite3_value **argv){
  VdbKnnQuery q;
  char *zErr = 0;
  int i, rc = SQLITE_OK, k = -1, limit = -1, offset = 0, ef = -1;
  memset(&q, 0, sizeof(q));
  q.pStore = &p->store;
  q.pK = p->pK;
  for(i=0; rc==SQLITE_OK && i<argc; i++){
    const char *e = idxStr + 4*i;
    if( e[0]=='M' ){
      q.iVec = vdbHex2(e+2);
      q.pCol = &p->pDef->aCol[p->store.aVecCol[q.iVec]];
      if( sqlite3_value_type(argv[i])==SQLITE_NULL ){
        rc = vdbVtabError(p, SQLITE_ERROR, "vectordb: the MATCH vector for %s is NULL", q.pCol->zName);
        break;
      }
      rc = vdbVectorFromValueAs(argv[i], q.pCol->eElem, &q.query, &zErr);
      if( rc!=SQLITE_OK ){
        rc = vdbVtabError(p, rc, "vectordb: query vector for column %s: %s",
                          q.pCol->zName, zErr ? zErr : "out of memory");
        sqlite3_free(zErr);
        zErr = 0;
        break;
      }
      if( q.query.nDim!=q.pCol->nDim ){
        rc = vdbVtabError(p, SQLITE_ERROR,
            "vectordb: query vector for column %s has %d dimensions; the column has %d",
            q.pCol->zName, q.query.nDim, q.pCol->nDim);
      }
    }else if( e[0]=='K' ){
      rc = vdbReadK(p, argv[i], "k", &k);
    }else if( e[0]=='L' ){
      rc = vdbReadK(p, argv[i], "LIMIT", &limit);
    }else if( e[0]=='O' ){
      rc = vdbReadK(p, argv[i], "OFFSET", &offset);
    }else if( e[0]=='E' ){
      /* The hidden column sets, for one query, what the stored setting of
      ** the same name sets for the table; 0 asks for exact search. */
      const VdbIndexParam *pEf = vdbIndexStoredParam(vdbHiddenColumns[VDB_HIDDEN_EF]);
      int efMax = pEf ? pEf->iMax : 0;
      if( sqlite3_value_type(argv[i])!=SQLITE_INTEGER
       || sqlite3_value_int64(argv[i])<0 || sqlite3_value_int64(argv[i])>efMax ){
        rc = vdbVtabError(p, SQLITE_ERROR,
            "vectordb: ef_search must be an integer from 0 (exact search) to %d", efMax);
      }else{
        ef = sqlite3_value_int(argv[i]);
      }
    }else if( e[0]=='D' ){
      int t = sqlite3_value_type(argv[i]);
      if( t!=SQLITE_INTEGER && t!=SQLITE_FLOAT ){
        rc = vdbVtabError(p, SQLITE_ERROR, "vectordb: distance can only be compared with a number");
      }else{
        vdbAddDistanceBound(&q, e[1], sqlite3_value_double(argv[i]));
      }
    }
  }
  if( rc==SQLITE_OK && q.pCol->eMetric==VDB_METRIC_COSINE ){
    double d;
    if( !vdbRawDistance(p->pK, q.pCol->eElem, q.pCol->eMetric, q.pCol->nDim,
                        q.query.pData, q.query.pData, &d) ){
      rc = vdbVtabError(p, SQLITE_ERROR,
          "vectordb: the query vector is all zeros (or so large that its norm overflows "
          "float32); cosine distance is undefined for it");
    }
  }
  /* LIMIT and OFFSET page through the k nearest rows. */
  if( limit>=0 ){
    limit = limit + offset > VDB_MAX_K ? VDB_MAX_K : limit + offset;
    q.k = k>=0 && k<limit ? k : limit;
  }else{
    q.k = k;
  }
  if( rc==SQLITE_OK ) rc = vdbOpenFiltered(p, VDB_ROWS_BY_SLOT, 0, idxStr, argc, argv, &q.pFilter);
  if( rc==SQLITE_OK ) rc = vdbSyncIndexes(p);
  if( rc==SQLITE_OK ){
    VdbIndex *pIdx = p->apIndex[q.iVec];
    /* The index answers unless ef_search = 0 asks for exact search or a
    ** distance range is given (a range needs every row within it, which
    ** only a scan can promise). Without ef_search in the query (ef<0),
    ** the index uses the table's default. */
    if( ef!=0 && !q.hasLo && !q.hasHi && q.k>0 ){
      rc = pIdx->pKind->xSearch(pIdx, &q, ef, &pCur->aHit, &pCur->nHit);
    }else{
      rc = vdbKnnSearch(&q, &pCur->aHit, &pCur->nHit);
    }
  }
  vdbRowsClose(q.pFilter);
  vdbVectorClear(&q.query);
  pCur->iHit = offset;
  pCur->eof = rc!=SQLITE_OK || pCur->iHit>=pCur->nHit;
  return rc;
}

static int vdbVtabFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                         int argc, sqlite3_value **argv){
  VdbCursor *pCur = (VdbCursor*)cur;
  VdbVtab *p = (VdbVtab*)cur->pVtab;
  int rc;
  vdbCursorReset(pCur);
  pCur->plan = idxNum;
  if( idxStr==0 ) idxStr = "";
  if( (int)strlen(idxStr)!=4*argc ) return SQLITE_INTERNAL;
  if( pCur->pVecBuf==0 && p->store.maxVecBytes>0 ){
    pCur->pVecBuf = sqlite3_malloc(p->store.maxVecBytes);
    if( pCur->pVecBuf==0 ) return SQLITE_NOMEM;
  }
  if( idxNum==VDB_PLAN_KNN ) return vdbVtabResult(p, vdbFilterKnn(pCur, p, idxStr, argc, argv));
  rc = vdbOpenFiltered(p, VDB_ROWS_BY_ROWID, 1, idxStr, argc, argv, &pCur->pRows);
  if( rc==SQLITE_OK ){
    rc = vdbRowsStep(pCur->pRows);
    pCur->eof = rc!=SQLITE_ROW;
    pCur->rowReady = rc==SQLITE_ROW;
    if( rc==SQLITE_ROW || rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  return vdbVtabResult(p, rc);
}

static int vdbVtabNext(sqlite3_vtab_cursor *cur){
  VdbCursor *pCur = (VdbCursor*)cur;
  int rc;
  if( pCur->plan==VDB_PLAN_KNN ){
    pCur->iHit++;
    pCur->eof = pCur->iHit>=pCur->nHit;
    pCur->rowReady = 0;
    return pCur->pRows ? vdbRowsReset(pCur->pRows) : SQLITE_OK;
  }
  rc = vdbRowsStep(pCur->pRows);
  pCur->eof = rc!=SQLITE_ROW;
  pCur->rowReady = rc==SQLITE_ROW;
  return rc==SQLITE_ROW || rc==SQLITE_DONE ? SQLITE_OK : rc;
}

static int vdbVtabEof(sqlite3_vtab_cursor *cur){
  return ((VdbCursor*)cur)->eof;
}

static int vdbVtabRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  VdbCursor *pCur = (VdbCursor*)cur;
  if( pCur->plan==VDB_PLAN_KNN ) *pRowid = pCur->aHit[pCur->iHit].rowid;
  else *pRowid = vdbRowsRowid(pCur->pRows);
  return SQLITE_OK;
}

/* Position pRows on the current KNN hit's row. A hit whose row has gone
** means the shadow tables disagree. */
static int vdbCursorLoadRow(VdbCursor *pCur){
  int rc;
  if( pCur->rowReady ) return SQLITE_OK;
  if( pCur->pRows==0 ){
    /* Opened on first need: a KNN query asking only for rowid and
    ** distance never reads the rows. */
    VdbVtab *p = (VdbVtab*)pCur->base.pVtab;
    rc = vdbStoreRowsOpenSeek(&p->store, &pCur->pRows);
    if( rc!=SQLITE_OK ) return rc;
  }
  rc = vdbRowsSeek(pCur->pRows, pCur->aHit[pCur->iHit].rowid);
  if( rc==SQLITE_ROW ){ pCur->rowReady = 1; return SQLITE_OK; }
  return rc==SQLITE_DONE ? SQLITE_CORRUPT_VTAB : rc;
}

static int vdbVtabColumnImpl(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol){
  VdbCursor *pCur = (VdbCursor*)cur;
  VdbVtab *p = (VdbVtab*)cur->pVtab;
  int iUser = 0, rc;
  int role = vdbColumnRole(p, iCol, &iUser);
  if( role==VDB_ROLE_DISTANCE ){
    if( pCur->plan==VDB_PLAN_KNN ) sqlite3_result_double(ctx, pCur->aHit[pCur->iHit].dist);
    return SQLITE_OK;
  }
  if( role==VDB_ROLE_K || role==VDB_ROLE_COMMAND || role==VDB_ROLE_EF ) return SQLITE_OK;
  if( role==VDB_ROLE_PK && !p->pDef->pkIsText ){
    sqlite3_int64 rowid;
    vdbVtabRowid(cur, &rowid);
    sqlite3_result_int64(ctx, rowid);
    return SQLITE_OK;
  }
  /* An UPDATE that does not assign a vector column leaves it unread. */
  if( role==VDB_ROLE_USER && p->aVecIndex[iUser]>=0 && sqlite3_vtab_nochange(ctx) ){
    return SQLITE_OK;
  }
  rc = vdbCursorLoadRow(pCur);
  if( rc!=SQLITE_OK ) return rc;
  if( role==VDB_ROLE_PK ){
    sqlite3_result_value(ctx, vdbRowsValue(pCur->pRows, VDB_COL_PK));
  }else if( p->aVecIndex[iUser]>=0 ){
    const VdbColumnDef *c = &p->pDef->aCol[iUser];
    VdbSlot slot;
    int iVec = p->aVecIndex[iUser];
    rc = vdbRowsSlot(pCur->pRows, &slot);
    if( rc==SQLITE_OK ) rc = vdbStoreReadVector(&p->store, iVec, &slot, pCur->pVecBuf);
    if( rc!=SQLITE_OK ) return rc;
    sqlite3_result_blob(ctx, pCur->pVecBuf, p->store.aVecBytes[iVec], SQLITE_TRANSIENT);
    sqlite3_result_subtype(ctx, (unsigned int)vdbElemTypeSubtype(c->eElem));
  }else{
    sqlite3_result_value(ctx, vdbRowsValue(pCur->pRows, iUser));
  }
  return SQLITE_OK;
}

static int vdbVtabColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol){
  return vdbVtabResult((VdbVtab*)cur->pVtab, vdbVtabColumnImpl(cur, ctx, iCol));
}

/* ---- writes ------------------------------------------------------------------------ */

/* Check a non-vector value against its column's declared type. */
static int vdbCheckValue(VdbVtab *p, const VdbColumnDef *c, sqlite3_value *pVal){
  int t = sqlite3_value_type(pVal);
  int ok;
  static const char *azType[] = { "?", "INTEGER", "REAL", "TEXT", "BLOB", "NULL" };
  if( t==SQLITE_NULL ) return SQLITE_OK;
  switch( c->eValType ){
    case VDB_VAL_INTEGER: ok = t==SQLITE_INTEGER; break;
    case VDB_VAL_FLOAT:   ok = t==SQLITE_INTEGER || t==SQLITE_FLOAT; break;
    case VDB_VAL_TEXT:    ok = t==SQLITE_TEXT; break;
    case VDB_VAL_BLOB:    ok = t==SQLITE_BLOB; break;
    case VDB_VAL_BOOLEAN:
      ok = t==SQLITE_INTEGER && (sqlite3_value_int64(pVal)==0 || sqlite3_value_int64(pVal)==1);
      break;
    default: ok = 1; break;
  }
  if( ok ) return SQLITE_OK;
  return vdbVtabError(p, SQLITE_CONSTRAINT,
      "vectordb: column %s of %s expects %s, got %s", c->zName, p->store.zName,
      c->eValType==VDB_VAL_BOOLEAN ? "a boolean (0 or 1)" : vdbValueTypeName(c->eValType),
      azType[t]);
}

/* Decode and check the vector for column c. */
static int vdbCheckVector(VdbVtab *p, const VdbColumnDef *c, sqlite3_value *pVal, VdbVector *pVec){
  char *zErr = 0;
  int rc;
  if( sqlite3_value_type(pVal)==SQLITE_NULL ){
    return vdbVtabError(p, SQLITE_CONSTRAINT, "vectordb: vector column %s of %s cannot be NULL",
                        c->zName, p->store.zName);
  }
  rc = vdbVectorFromValueAs(pVal, c->eElem, pVec, &zErr);
  if( rc!=SQLITE_OK ){
    rc = vdbVtabError(p, rc, "vectordb: vector for column %s: %s", c->zName,
                      zErr ? zErr : "out of memory");
    sqlite3_free(zErr);
    return rc;
  }
  if( pVec->nDim!=c->nDim ){
    int nGot = pVec->nDim;
    vdbVectorClear(pVec);
    return vdbVtabError(p, SQLITE_CONSTRAINT,
        "vectordb: column %s expects %d dimensions, got %d", c->zName, c->nDim, nGot);
  }
  return SQLITE_OK;
}

/* Decode every column value of an INSERT or UPDATE (argv[2..]) before
** anything is written. Unchanged vectors (UPDATE) are left empty. */
static int vdbValidateRow(VdbVtab *p, sqlite3_value **apCol, VdbVector *aVec, int isUpdate){
  int i, rc = SQLITE_OK;
  if( p->pDef->pkIsText ){
    sqlite3_value *pPk = apCol[0];
    if( !(isUpdate && sqlite3_value_nochange(pPk)) && sqlite3_value_type(pPk)!=SQLITE_TEXT ){
      return vdbVtabError(p, SQLITE_CONSTRAINT, "vectordb: primary key %s of %s must be text",
                          p->pDef->zPkName, p->store.zName);
    }
  }
  for(i=0; rc==SQLITE_OK && i<p->pDef->nCol; i++){
    const VdbColumnDef *c = &p->pDef->aCol[i];
    sqlite3_value *pVal = apCol[p->nUserStart + i];
    if( c->eKind==VDB_COL_VECTOR ){
      if( isUpdate && sqlite3_value_nochange(pVal) ) continue;
      rc = vdbCheckVector(p, c, pVal, &aVec[p->aVecIndex[i]]);
    }else{
      rc = vdbCheckValue(p, c, pVal);
    }
  }
  return rc;
}

/* Delete a row and its index entries. */
static int vdbDeleteRow(VdbVtab *p, sqlite3_int64 rowid){
  VdbSlot slot;
  int i, rc = vdbStoreLocate(&p->store, rowid, &slot);
  if( rc==SQLITE_DONE ) return SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    rc = p->apIndex[i]->pKind->xDelete(p->apIndex[i], rowid);
  }
  if( rc==SQLITE_OK ) rc = vdbStoreDelete(&p->store, rowid);
  return rc;
}

/* Resolve a clash with an existing row under the statement's ON CONFLICT
** mode: *pSkip for IGNORE, delete it for REPLACE, else an error. */
static int vdbResolveConflict(VdbVtab *p, sqlite3_int64 existing, const char *zWhat, int *pSkip){
  int mode = sqlite3_vtab_on_conflict(p->db);
  *pSkip = 0;
  if( mode==SQLITE_IGNORE ){ *pSkip = 1; return SQLITE_OK; }
  if( mode==SQLITE_REPLACE ) return vdbDeleteRow(p, existing);
  return vdbVtabError(p, SQLITE_CONSTRAINT, "UNIQUE constraint failed: %s.%s", p->store.zName, zWhat);
}

static int vdbInsert(VdbVtab *p, sqlite3_value *pRowidVal, sqlite3_value **apCol, sqlite3_int64 *pRowid){
  VdbVector aVec[VDB_MAX_VECTOR_COLUMNS];
  sqlite3_value *apVal[VDB_MAX_COLUMNS];
  sqlite3_value *pPk = p->pDef->pkIsText ? apCol[0] : 0;
  sqlite3_int64 rowid = 0, existing;
  int rc, i, haveRowid = 0, skip = 0;

  memset(aVec, 0, sizeof(aVec));
  /* The rowid comes from "rowid" or the integer primary key column. */
  if( p->pDef->zPkName && !p->pDef->pkIsText && sqlite3_value_type(apCol[0])!=SQLITE_NULL ){
    if( sqlite3_value_type(apCol[0])!=SQLITE_INTEGER ){
      return vdbVtabError(p, SQLITE_MISMATCH, "vectordb: primary key %s must be an integer",
                          p->pDef->zPkName);
    }
    rowid = sqlite3_value_int64(apCol[0]);
    haveRowid = 1;
  }
  if( sqlite3_value_type(pRowidVal)!=SQLITE_NULL ){
    if( sqlite3_value_type(pRowidVal)!=SQLITE_INTEGER ){
      return vdbVtabError(p, SQLITE_MISMATCH, "vectordb: rowid must be an integer");
    }
    if( haveRowid && rowid!=sqlite3_value_int64(pRowidVal) ){
      return vdbVtabError(p, SQLITE_CONSTRAINT, "vectordb: rowid and %s disagree", p->pDef->zPkName);
    }
    rowid = sqlite3_value_int64(pRowidVal);
    haveRowid = 1;
  }
  rc = vdbValidateRow(p, apCol, aVec, 0);

  /* Conflicts: the rowid, then the text primary key. */
  if( rc==SQLITE_OK && haveRowid ){
    VdbSlot slot;
    rc = vdbStoreLocate(&p->store, rowid, &slot);
    if( rc==SQLITE_OK ) rc = vdbResolveConflict(p, rowid, "rowid", &skip);
    else if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  if( rc==SQLITE_OK && !skip && pPk ){
    rc = vdbStoreLocatePk(&p->store, pPk, &existing);
    if( rc==SQLITE_OK ) rc = vdbResolveConflict(p, existing, p->pDef->zPkName, &skip);
    else if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  if( rc==SQLITE_OK && !skip && !haveRowid ){
    rc = vdbStoreMaxRowid(&p->store, &rowid);
    if( rc==SQLITE_OK && rowid==INT64_MAX ){
      rc = vdbVtabError(p, SQLITE_FULL, "vectordb: no rowid left after %lld", rowid);
    }
    if( rc==SQLITE_OK ) rowid++;
  }
  if( rc==SQLITE_OK && !skip ){
    for(i=0; i<p->pDef->nCol; i++) apVal[i] = apCol[p->nUserStart + i];
    VdbSlot slot;
    rc = vdbStoreInsert(&p->store, rowid, pPk, apVal, aVec, &slot);
    for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
      rc = p->apIndex[i]->pKind->xInsert(p->apIndex[i], rowid, &slot, aVec[i].pData);
    }
    *pRowid = rowid;
  }
  for(i=0; i<p->store.nVec; i++) vdbVectorClear(&aVec[i]);
  return rc;
}

static int vdbUpdate(VdbVtab *p, sqlite3_int64 oldRowid, sqlite3_value *pNewRowid, sqlite3_value **apCol){
  VdbVector aVec[VDB_MAX_VECTOR_COLUMNS];
  sqlite3_value *apVal[VDB_MAX_COLUMNS];
  unsigned char aChanged[VDB_MAX_COLUMNS];
  sqlite3_int64 newRowid, existing;
  int rc, i, skip = 0;
  VdbSlot slot;

  memset(aVec, 0, sizeof(aVec));
  if( sqlite3_value_type(pNewRowid)!=SQLITE_INTEGER ){
    return vdbVtabError(p, SQLITE_MISMATCH, "vectordb: rowid must be an integer");
  }
  newRowid = sqlite3_value_int64(pNewRowid);
  if( p->pDef->zPkName && !p->pDef->pkIsText && !sqlite3_value_nochange(apCol[0]) ){
    sqlite3_int64 id;
    if( sqlite3_value_type(apCol[0])!=SQLITE_INTEGER ){
      return vdbVtabError(p, SQLITE_MISMATCH, "vectordb: primary key %s must be an integer",
                          p->pDef->zPkName);
    }
    id = sqlite3_value_int64(apCol[0]);
    if( id!=oldRowid ){
      if( newRowid!=oldRowid && newRowid!=id ){
        return vdbVtabError(p, SQLITE_CONSTRAINT, "vectordb: rowid and %s disagree", p->pDef->zPkName);
      }
      newRowid = id;
    }
  }
  rc = vdbValidateRow(p, apCol, aVec, 1);
  if( rc==SQLITE_OK && newRowid!=oldRowid ){
    rc = vdbStoreLocate(&p->store, newRowid, &slot);
    if( rc==SQLITE_OK ) rc = vdbResolveConflict(p, newRowid, "rowid", &skip);
    else if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  if( rc==SQLITE_OK && !skip && p->pDef->pkIsText && !sqlite3_value_nochange(apCol[0]) ){
    rc = vdbStoreLocatePk(&p->store, apCol[0], &existing);
    if( rc==SQLITE_OK && existing!=oldRowid ){
      rc = vdbResolveConflict(p, existing, p->pDef->zPkName, &skip);
    }else if( rc==SQLITE_DONE || rc==SQLITE_OK ){
      rc = SQLITE_OK;
    }
  }
  if( rc==SQLITE_OK && !skip && newRowid!=oldRowid ){
    rc = vdbStoreMove(&p->store, oldRowid, newRowid);
    for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
      rc = p->apIndex[i]->pKind->xMoveRowid(p->apIndex[i], oldRowid, newRowid);
    }
  }
  if( rc==SQLITE_OK && !skip ) rc = vdbStoreLocate(&p->store, newRowid, &slot);
  if( rc==SQLITE_DONE ) rc = SQLITE_CORRUPT_VTAB;
  for(i=0; rc==SQLITE_OK && !skip && i<p->pDef->nCol; i++){
    int iVec = p->aVecIndex[i];
    apVal[i] = apCol[p->nUserStart + i];
    aChanged[i] = !sqlite3_value_nochange(apVal[i]);
    if( iVec>=0 && aVec[iVec].pData ){
      /* A new vector is a new index entry: out with the old one first. */
      VdbIndex *pIdx = p->apIndex[iVec];
      rc = pIdx->pKind->xDelete(pIdx, newRowid);
      if( rc==SQLITE_OK ) rc = vdbStoreWriteVector(&p->store, iVec, &slot, &aVec[iVec]);
      if( rc==SQLITE_OK ) rc = pIdx->pKind->xInsert(pIdx, newRowid, &slot, aVec[iVec].pData);
    }
  }
  if( rc==SQLITE_OK && !skip ){
    int pkChanged = p->pDef->pkIsText && !sqlite3_value_nochange(apCol[0]);
    rc = vdbStoreUpdateColumns(&p->store, newRowid, apVal, aChanged, pkChanged ? apCol[0] : 0);
  }
  for(i=0; i<p->store.nVec; i++) vdbVectorClear(&aVec[i]);
  return rc;
}

/* Rows, slots, every index and the stored settings: SQLITE_OK when sound,
** else SQLITE_CORRUPT_VTAB with the first finding as the store's message. */
static int vdbIntegrity(VdbVtab *p){
  const VdbIndexParam *pParam;
  int i, rc = vdbStoreIntegrity(&p->store);
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    rc = p->apIndex[i]->pKind->xCheck(p->apIndex[i]);
  }
  /* Stored settings that no command could have written. */
  for(i=0; rc==SQLITE_OK && (pParam = vdbStoredParamAt(i))!=0; i++){
    sqlite3_value *pVal = 0;
    rc = vdbStoreInfoGet(&p->store, pParam->zName, &pVal);
    if( rc==SQLITE_OK && pVal && !vdbStoredValueOk(pParam, pVal) ){
      rc = vdbStoreCorrupt(&p->store, "the stored setting %s=%s is out of range", pParam->zName,
                           (const char*)sqlite3_value_text(pVal));
    }
    sqlite3_value_free(pVal);
  }
  if( (rc==SQLITE_CORRUPT_VTAB || rc==SQLITE_CORRUPT) && p->store.zErrMsg==0 ){
    rc = vdbStoreCorrupt(&p->store, "malformed shadow table content");
  }
  return rc;
}

/* PRAGMA integrity_check on SQLite 3.44+: findings go to *pzErr with
** SQLITE_OK; quick_check (bit 1 of mFlags) skips this whole-table walk. */
static int vdbVtabIntegrity(sqlite3_vtab *pVtab, const char *zSchema, const char *zTabName,
                            int mFlags, char **pzErr){
  VdbVtab *p = (VdbVtab*)pVtab;
  int rc;
  (void)zSchema; (void)zTabName;
  if( mFlags & 1 ) return SQLITE_OK;
  rc = vdbSyncIndexes(p);
  if( rc==SQLITE_OK ) rc = vdbIntegrity(p);
  if( rc==SQLITE_CORRUPT_VTAB ){
    *pzErr = vdbStoreTakeError(&p->store);
    rc = SQLITE_OK;
  }
  return vdbVtabResult(p, rc);
}

/* 'name=N' for a stored index parameter: persisted in T_info and given
** to every index that has the parameter. */
static int vdbSettingCommand(VdbVtab *p, const VdbIndexParam *pParam, const char *zVal){
  char *zEnd = 0;
  long n = strtol(zVal, &zEnd, 10);
  int rc;
  if( zEnd==zVal || *zEnd!=0 || n<pParam->iMin || n>pParam->iMax ){
    return vdbVtabError(p, SQLITE_ERROR, "vectordb: %s must be an integer from %d to %d",
                        pParam->zName, pParam->iMin, pParam->iMax);
  }
  rc = vdbStoreInfoSet(&p->store, pParam->zName, n);
  if( rc==SQLITE_OK ) vdbConfigureAll(p, pParam->zName, (int)n);
  return rc;
}

/* INSERT INTO t(t) VALUES ('command'):
**   name=N            a stored index parameter (ef_search=N, cache_mb=N)
**   integrity-check   verify rows, slots and indexes; an error names a fault */
static int vdbCommand(VdbVtab *p, const char *zCmd){
  const VdbIndexParam *pParam;
  const char *zEq;
  sqlite3_str *s;
  char *zKnown;
  int i, rc;
  if( zCmd==0 ) return SQLITE_NOMEM;
  zEq = strchr(zCmd, '=');
  if( zEq ){
    char zName[64];
    if( zEq-zCmd < (int)sizeof(zName) ){
      memcpy(zName, zCmd, (size_t)(zEq-zCmd));
      zName[zEq-zCmd] = 0;
      pParam = vdbIndexStoredParam(zName);
      if( pParam ) return vdbSettingCommand(p, pParam, zEq+1);
    }
  }else if( sqlite3_stricmp(zCmd, "integrity-check")==0 ){
    rc = vdbIntegrity(p);
    /* A corrupt table's message is already the finding. */
    return rc;
  }
  s = sqlite3_str_new(0);
  for(i=0; (pParam = vdbStoredParamAt(i))!=0; i++) sqlite3_str_appendf(s, "%s=N, ", pParam->zName);
  zKnown = sqlite3_str_finish(s);
  rc = vdbVtabError(p, SQLITE_ERROR, "vectordb: unknown command \"%s\" for %s "
                    "(known: %sintegrity-check)", zCmd, p->store.zName, zKnown ? zKnown : "");
  sqlite3_free(zKnown);
  return rc;
}

static int vdbVtabUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite3_int64 *pRowid){
  VdbVtab *p = (VdbVtab*)pVtab;
  sqlite3_int64 iSavedRowid = sqlite3_last_insert_rowid(p->db);
  int rc;
  p->inUpdate = 1;
  rc = vdbSyncIndexes(p);
  if( rc!=SQLITE_OK ){
    /* nothing written */
  }else if( argc==1 ){
    rc = vdbDeleteRow(p, sqlite3_value_int64(argv[0]));
  }else if( sqlite3_value_type(argv[0])==SQLITE_NULL ){
    sqlite3_value *pCommand = argv[2 + p->iColCommand];
    if( sqlite3_value_type(pCommand)!=SQLITE_NULL ){
      rc = vdbCommand(p, (const char*)sqlite3_value_text(pCommand));
    }else{
      rc = vdbInsert(p, argv[1], argv+2, pRowid);
    }
  }else{
    rc = vdbUpdate(p, sqlite3_value_int64(argv[0]), argv[1], argv+2);
  }
  p->inUpdate = 0;
  /* Shadow-table inserts must not change what last_insert_rowid() reports
  ** (SQLite sets it itself after an INSERT into this table). */
  sqlite3_set_last_insert_rowid(p->db, iSavedRowid);
  return vdbVtabResult(p, rc);
}

/* ---- registration --------------------------------------------------------------------- */

/* The module as SQLite 3.44 and later lay it out: the 3.40 fields, then
** xIntegrity. Built against older headers, vectordb appends the member
** itself and offers version 4 only to a library that reads it. */
typedef struct VdbModuleV4 {
  sqlite3_module base;
#if SQLITE_VERSION_NUMBER<3044000
  int (*xIntegrity)(sqlite3_vtab*, const char*, const char*, int, char**);
#endif
} VdbModuleV4;

#if SQLITE_VERSION_NUMBER>=3044000
# define VDB_MODULE_FIELDS(V) { V, vdbVtabCreate, vdbVtabConnect, vdbVtabBestIndex, \
    vdbVtabDisconnect, vdbVtabDestroy, vdbVtabOpen, vdbVtabClose, vdbVtabFilter, \
    vdbVtabNext, vdbVtabEof, vdbVtabColumn, vdbVtabRowid, vdbVtabUpdate, vdbVtabBegin, \
    vdbVtabSync, vdbVtabCommit, vdbVtabRollback, 0, vdbVtabRename, vdbVtabSavepoint, \
    vdbVtabRelease, vdbVtabRollbackTo, vdbVtabShadowName, vdbVtabIntegrity }
# define VDB_MODULE(V) { VDB_MODULE_FIELDS(V) }
#else
# define VDB_MODULE_FIELDS(V) { V, vdbVtabCreate, vdbVtabConnect, vdbVtabBestIndex, \
    vdbVtabDisconnect, vdbVtabDestroy, vdbVtabOpen, vdbVtabClose, vdbVtabFilter, \
    vdbVtabNext, vdbVtabEof, vdbVtabColumn, vdbVtabRowid, vdbVtabUpdate, vdbVtabBegin, \
    vdbVtabSync, vdbVtabCommit, vdbVtabRollback, 0, vdbVtabRename, vdbVtabSavepoint, \
    vdbVtabRelease, vdbVtabRollbackTo, vdbVtabShadowName }
# define VDB_MODULE(V) { VDB_MODULE_FIELDS(V), vdbVtabIntegrity }
#endif

static const VdbModuleV4 vdbModuleV3 = VDB_MODULE(3);   /* xShadowName */
static const VdbModuleV4 vdbModuleV4 = VDB_MODULE(4);   /* + xIntegrity */

/* vectordb_check([schema,] table): 'ok', or the first fault the table's
** integrity check finds. Runs the table's 'integrity-check' command. */
static void vdbCheckFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const char *zSchema = argc==2 ? (const char*)sqlite3_value_text(argv[0]) : "main";
  const char *zTable = (const char*)sqlite3_value_text(argv[argc-1]);
  char *zSql, *zErr = 0;
  int rc;
  if( zSchema==0 || zTable==0 ){
    sqlite3_result_error(ctx, "vectordb_check: the table name must be text", -1);
    return;
  }
  zSql = sqlite3_mprintf("INSERT INTO \"%w\".\"%w\"(\"%w\") VALUES ('integrity-check')",
                         zSchema, zTable, zTable);
  if( zSql==0 ){ sqlite3_result_error_nomem(ctx); return; }
  rc = sqlite3_exec(sqlite3_context_db_handle(ctx), zSql, 0, 0, &zErr);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ){
    sqlite3_result_text(ctx, "ok", -1, SQLITE_STATIC);
  }else if( (rc & 0xff)==SQLITE_CORRUPT ){
    sqlite3_result_text(ctx, zErr ? zErr : "corrupt", -1, SQLITE_TRANSIENT);
  }else{
    sqlite3_result_error(ctx, zErr ? zErr : sqlite3_errstr(rc), -1);
    sqlite3_result_error_code(ctx, rc);
  }
  sqlite3_free(zErr);
}

/* ---- vectordb_stats -----------------------------------------------------------------
**   SELECT * FROM vectordb_stats('items'[, 'schema']);
** One row per figure: (column, key, value), the column NULL for the
** table's own figures. Figures come from this connection's open copy of
** the table and its indexes; see the README for each key. */

typedef struct VdbStatRow {
  const char *zColumn;          /* the vector column, or NULL */
  char *zKey;
  char *zText;                  /* a text value, or NULL for rValue */
  double rValue;
} VdbStatRow;

typedef struct VdbStatsCursor {
  sqlite3_vtab_cursor base;
  VdbStatRow *aRow;
  int nRow, nAlloc, iRow;
  const char *zColumn;          /* the column vdbStatAdd files rows under */
} VdbStatsCursor;

#define VDB_STATS_COL_TABLE  3
#define VDB_STATS_COL_SCHEMA 4

static int vdbStatsConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv,
                           sqlite3_vtab **ppVtab, char **pzErr){
  sqlite3_vtab *p;
  int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(\"column\" TEXT, key TEXT, value, "
                                    "tbl HIDDEN, schema HIDDEN)");
  (void)pAux; (void)argc; (void)argv; (void)pzErr;
  if( rc!=SQLITE_OK ) return rc;
  p = (sqlite3_vtab*)sqlite3_malloc(sizeof(*p) + sizeof(sqlite3*));
  if( p==0 ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  *(sqlite3**)(p+1) = db;          /* the connection whose tables it reports */
  *ppVtab = p;
  return SQLITE_OK;
}

static int vdbStatsDisconnect(sqlite3_vtab *p){
  sqlite3_free(p);
  return SQLITE_OK;
}

/* The table name is required, the schema optional (main). */
static int vdbStatsBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  int i, iTable = -1, iSchema = -1;
  (void)pVtab;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
    if( c->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
    if( c->iColumn==VDB_STATS_COL_TABLE ){
      if( !c->usable ) return SQLITE_CONSTRAINT;
      iTable = i;
    }else if( c->iColumn==VDB_STATS_COL_SCHEMA && c->usable ){
      iSchema = i;
    }
  }
  if( iTable<0 ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("vectordb_stats: give the table, as in vectordb_stats('items')");
    return SQLITE_ERROR;
  }
  pInfo->aConstraintUsage[iTable].argvIndex = 1;
  pInfo->aConstraintUsage[iTable].omit = 1;
  if( iSchema>=0 ){
    pInfo->aConstraintUsage[iSchema].argvIndex = 2;
    pInfo->aConstraintUsage[iSchema].omit = 1;
  }
  pInfo->idxNum = iSchema>=0;
  pInfo->estimatedCost = 10.0;
  return SQLITE_OK;
}

static int vdbStatsOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  VdbStatsCursor *pCur = (VdbStatsCursor*)sqlite3_malloc(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

static void vdbStatsReset(VdbStatsCursor *pCur){
  int i;
  for(i=0; i<pCur->nRow; i++){
    sqlite3_free(pCur->aRow[i].zKey);
    sqlite3_free(pCur->aRow[i].zText);
  }
  pCur->nRow = pCur->iRow = 0;
}

static int vdbStatsClose(sqlite3_vtab_cursor *cur){
  VdbStatsCursor *pCur = (VdbStatsCursor*)cur;
  vdbStatsReset(pCur);
  sqlite3_free(pCur->aRow);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

/* A VdbStatFn: one row under pCur->zColumn. */
static int vdbStatAdd(void *pCtx, const char *zKey, const char *zText, double rValue){
  VdbStatsCursor *pCur = (VdbStatsCursor*)pCtx;
  VdbStatRow *r;
  if( pCur->nRow>=pCur->nAlloc ){
    int nNew = pCur->nAlloc ? pCur->nAlloc*2 : 32;
    VdbStatRow *a = (VdbStatRow*)sqlite3_realloc64(pCur->aRow, sizeof(VdbStatRow)*(sqlite3_uint64)nNew);
    if( a==0 ) return SQLITE_NOMEM;
    pCur->aRow = a;
    pCur->nAlloc = nNew;
  }
  r = &pCur->aRow[pCur->nRow];
  r->zColumn = pCur->zColumn;
  r->zKey = sqlite3_mprintf("%s", zKey);
  r->zText = zText ? sqlite3_mprintf("%s", zText) : 0;
  r->rValue = rValue;
  if( r->zKey==0 || (zText && r->zText==0) ){
    sqlite3_free(r->zKey);
    sqlite3_free(r->zText);
    return SQLITE_NOMEM;
  }
  pCur->nRow++;
  return SQLITE_OK;
}

/* Bytes of every shadow table, where SQLite has dbstat: its pages times
** the page size. Not sum(pgsize): a VFS that answers SQLITE_OK to every
** file control (dqlite 1.11's) makes dbstat take the file for ZIPVFS and
** report page sizes it never had. */
static int vdbStatsSizes(VdbVtab *p, VdbStatsCursor *pCur){
  sqlite3_stmt *pList = 0, *pSize = 0;
  char *zSql = sqlite3_mprintf("SELECT name FROM \"%w\".sqlite_schema WHERE type='table'"
                               " AND substr(name, 1, %d)=%Q||'_' ORDER BY name",
                               p->store.zDb, (int)strlen(p->store.zName)+1, p->store.zName);
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  if( sqlite3_prepare_v2(p->db, "SELECT count(*)*(SELECT page_size FROM pragma_page_size WHERE schema=?1)"
                                  " FROM dbstat(?1) WHERE name=?2", -1, &pSize, 0)!=SQLITE_OK ){
    sqlite3_free(zSql);
    return SQLITE_OK;                 /* no dbstat in this SQLite: no sizes */
  }
  rc = sqlite3_prepare_v2(p->db, zSql, -1, &pList, 0);
  sqlite3_free(zSql);
  while( rc==SQLITE_OK && sqlite3_step(pList)==SQLITE_ROW ){
    const char *zName = (const char*)sqlite3_column_text(pList, 0);
    const char *zSuffix = zName ? zName + strlen(p->store.zName) : 0;
    char *zKey;
    if( zSuffix==0 || zSuffix[0]!='_' || !vdbVtabShadowName(zSuffix+1) ) continue;
    sqlite3_bind_text(pSize, 1, p->store.zDb, -1, SQLITE_STATIC);
    sqlite3_bind_text(pSize, 2, zName, -1, SQLITE_STATIC);
    if( sqlite3_step(pSize)==SQLITE_ROW ){
      zKey = sqlite3_mprintf("bytes_%s", zSuffix+1);
      rc = zKey ? vdbStatAdd(pCur, zKey, 0, (double)sqlite3_column_int64(pSize, 0)) : SQLITE_NOMEM;
      sqlite3_free(zKey);
    }
    if( rc==SQLITE_OK ) rc = sqlite3_reset(pSize);
  }
  rc = vdbFinalize(pList, rc);
  return vdbFinalize(pSize, rc);
}

/* The connected table schema.name, connecting it first if this connection
** has not used it yet (preparing a statement that names it does). */
static int vdbStatsFind(sqlite3_vtab *pVtab, const char *zSchema, const char *zTable, VdbVtab **pp){
  sqlite3 *db = *(sqlite3**)(pVtab+1);
  *pp = vdbTablesFind(db, zSchema, zTable);
  if( *pp==0 ){
    sqlite3_stmt *pStmt = 0;
    char *zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\".\"%w\" LIMIT 0", zSchema, zTable);
    int rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
    sqlite3_finalize(pStmt);
    sqlite3_free(zSql);
    if( rc!=SQLITE_OK ){
      sqlite3_free(pVtab->zErrMsg);
      pVtab->zErrMsg = sqlite3_mprintf("vectordb_stats: %s", sqlite3_errmsg(db));
      return rc;
    }
    *pp = vdbTablesFind(db, zSchema, zTable);
  }
  return SQLITE_OK;
}

static int vdbStatsFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                          int argc, sqlite3_value **argv){
  VdbStatsCursor *pCur = (VdbStatsCursor*)cur;
  const char *zTable = argc>0 ? (const char*)sqlite3_value_text(argv[0]) : 0;
  const char *zSchema = idxNum && argc>1 ? (const char*)sqlite3_value_text(argv[1]) : "main";
  VdbVtab *p = 0;
  sqlite3_int64 nRows = 0;
  int i, rc;
  (void)idxStr;
  vdbStatsReset(pCur);
  if( zTable==0 || zSchema==0 ){
    sqlite3_free(cur->pVtab->zErrMsg);
    cur->pVtab->zErrMsg = sqlite3_mprintf("vectordb_stats: the table and schema names must be text");
    return SQLITE_ERROR;
  }
  rc = vdbStatsFind(cur->pVtab, zSchema, zTable, &p);
  if( rc==SQLITE_OK && p==0 ){
    sqlite3_free(cur->pVtab->zErrMsg);
    cur->pVtab->zErrMsg = sqlite3_mprintf("vectordb_stats: %s.%s is not a vectordb table", zSchema, zTable);
    return SQLITE_ERROR;
  }
  pCur->zColumn = 0;
  if( rc==SQLITE_OK ) rc = vdbStoreRowCount(&p->store, &nRows);
  if( rc==SQLITE_OK ) rc = vdbStatAdd(pCur, "format", 0, p->store.formatVersion);
  if( rc==SQLITE_OK ) rc = vdbStatAdd(pCur, "rows", 0, (double)nRows);
  if( rc==SQLITE_OK ) rc = vdbStatsSizes(p, pCur);
  if( rc==SQLITE_OK && !vdbIndexesOpen(p) ) rc = vdbOpenIndexes(p);
  for(i=0; rc==SQLITE_OK && i<p->store.nVec; i++){
    pCur->zColumn = p->pDef->aCol[p->store.aVecCol[i]].zName;
    rc = vdbStatAdd(pCur, "index", vdbKindOf(p, i)->zName, 0);
    if( rc==SQLITE_OK ) rc = p->apIndex[i]->pKind->xStats(p->apIndex[i], vdbStatAdd, pCur);
  }
  if( p ){
    /* The table's error channel speaks for this query. */
    char *zErr = vdbStoreTakeError(&p->store);
    if( rc!=SQLITE_OK && zErr ){
      sqlite3_free(cur->pVtab->zErrMsg);
      cur->pVtab->zErrMsg = zErr;
    }else{
      sqlite3_free(zErr);
    }
  }
  return rc;
}

static int vdbStatsNext(sqlite3_vtab_cursor *cur){
  ((VdbStatsCursor*)cur)->iRow++;
  return SQLITE_OK;
}

static int vdbStatsEof(sqlite3_vtab_cursor *cur){
  VdbStatsCursor *pCur = (VdbStatsCursor*)cur;
  return pCur->iRow>=pCur->nRow;
}

static int vdbStatsColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol){
  VdbStatsCursor *pCur = (VdbStatsCursor*)cur;
  const VdbStatRow *r = &pCur->aRow[pCur->iRow];
  if( iCol==0 && r->zColumn ) sqlite3_result_text(ctx, r->zColumn, -1, SQLITE_TRANSIENT);
  if( iCol==1 ) sqlite3_result_text(ctx, r->zKey, -1, SQLITE_TRANSIENT);
  if( iCol==2 ){
    if( r->zText ) sqlite3_result_text(ctx, r->zText, -1, SQLITE_TRANSIENT);
    else if( r->rValue==floor(r->rValue) && fabs(r->rValue)<9007199254740992.0 ){
      sqlite3_result_int64(ctx, (sqlite3_int64)r->rValue);   /* counts stay integers */
    }else{
      sqlite3_result_double(ctx, r->rValue);
    }
  }
  return SQLITE_OK;
}

static int vdbStatsRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((VdbStatsCursor*)cur)->iRow;
  return SQLITE_OK;
}

static const sqlite3_module vdbStatsModule = {
  0, 0, vdbStatsConnect, vdbStatsBestIndex, vdbStatsDisconnect, 0,
  vdbStatsOpen, vdbStatsClose, vdbStatsFilter, vdbStatsNext, vdbStatsEof,
  vdbStatsColumn, vdbStatsRowid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

int vdbRegisterModule(sqlite3 *db, const VdbKernels *pKernels){
  const VdbModuleV4 *pModule = sqlite3_libversion_number()>=3044000 ? &vdbModuleV4 : &vdbModuleV3;
  int rc = sqlite3_create_module_v2(db, "vectordb", &pModule->base, (void*)pKernels, 0);
  /* An administrative function: not for triggers, views or untrusted schema. */
  int flags = SQLITE_UTF8 | (sqlite3_libversion_number()>=3030000 ? SQLITE_DIRECTONLY : 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_module_v2(db, "vectordb_stats", &vdbStatsModule, 0, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_function_v2(db, "vectordb_check", 1, flags, 0, vdbCheckFunc, 0, 0, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_function_v2(db, "vectordb_check", 2, flags, 0, vdbCheckFunc, 0, 0, 0);
  return rc;
}
