/*
** The store: a table's own shadow tables; see vdb_store.h, and
** vdb_format.h for the layout.
*/
#include <stdarg.h>
#include <string.h>
#include "vdb_store.h"

/* Zero bytes to overwrite a deleted row's vector with. */
static const unsigned char vdbZeroVector[VDB_MAX_VECTOR_BYTES];

/* ---- set-up ---------------------------------------------------------------- */

static void vdbStoreFreeNames(VdbStore *p){
  int i;
  sqlite3_free(p->zName);
  sqlite3_free(p->zChunksTable);
  for(i=0; i<VDB_MAX_VECTOR_COLUMNS; i++) sqlite3_free(p->azVecTable[i]);
  p->zName = p->zChunksTable = 0;
  memset(p->azVecTable, 0, sizeof(p->azVecTable));
}

/* The table's name and the shadow table names blob I/O opens by. Built
** aside first: zName may be the current name. */
static int vdbStoreSetNames(VdbStore *p, const char *zName){
  VdbStore next;
  int i, rc = SQLITE_OK;
  memset(&next, 0, sizeof(next));
  next.zName = sqlite3_mprintf("%s", zName);
  next.zChunksTable = sqlite3_mprintf("%s_chunks", zName);
  if( next.zName==0 || next.zChunksTable==0 ) rc = SQLITE_NOMEM;
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    next.azVecTable[i] = sqlite3_mprintf("%s_vectors%02d", zName, i);
    if( next.azVecTable[i]==0 ) rc = SQLITE_NOMEM;
  }
  if( rc!=SQLITE_OK ){
    vdbStoreFreeNames(&next);
    return rc;
  }
  vdbStoreFreeNames(p);
  p->zName = next.zName;
  p->zChunksTable = next.zChunksTable;
  memcpy(p->azVecTable, next.azVecTable, sizeof(p->azVecTable));
  return SQLITE_OK;
}

int vdbStoreInit(VdbStore *p, sqlite3 *db, const char *zDb, const char *zName,
                 const VdbTableDef *pDef){
  int i, iRow;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->pDef = pDef;
  /* Rows are read as rowid, chunk_id, chunk_offset, [pk], c<i>... */
  iRow = pDef->pkIsText ? VDB_ROWS_COL_PK+1 : VDB_ROWS_COL_PK;
  p->iRowPk = VDB_ROWS_COL_PK;
  for(i=0; i<pDef->nCol; i++){
    const VdbColumnDef *c = &pDef->aCol[i];
    if( c->eKind!=VDB_COL_VECTOR ){
      p->aRowCol[i] = iRow++;
      continue;
    }
    p->aRowCol[i] = -1;
    p->aVecCol[p->nVec] = i;
    p->aVecBytes[p->nVec] = (int)vdbVectorByteSize(c->eElem, c->nDim);
    if( p->aVecBytes[p->nVec]>p->maxVecBytes ) p->maxVecBytes = p->aVecBytes[p->nVec];
    p->nVec++;
  }
  p->zDb = sqlite3_mprintf("%s", zDb);
  if( p->zDb==0 ) return SQLITE_NOMEM;
  return vdbStoreSetNames(p, zName);
}

static void vdbStoreFinalizeAll(VdbStore *p){
  int i;
  for(i=0; i<VDB_STMT_COUNT; i++){ sqlite3_finalize(p->aStmt[i]); p->aStmt[i] = 0; }
  for(i=0; i<VDB_MAX_VECTOR_COLUMNS; i++){
    sqlite3_finalize(p->aVecDelete[i]); p->aVecDelete[i] = 0;
    sqlite3_finalize(p->aVecInsert[i]); p->aVecInsert[i] = 0;
  }
}

void vdbStoreClose(VdbStore *p){
  vdbStoreFinalizeAll(p);
  vdbStoreFreeNames(p);
  sqlite3_free(p->zDb);
  sqlite3_free(p->zErrMsg);
  memset(p, 0, sizeof(*p));
}

/* ---- errors ------------------------------------------------------------------ */

int vdbStoreErrorV(VdbStore *p, int rc, const char *zFmt, va_list ap){
  char *z = sqlite3_vmprintf(zFmt, ap);
  sqlite3_free(p->zErrMsg);
  p->zErrMsg = z;
  return z ? rc : SQLITE_NOMEM;
}

int vdbStoreError(VdbStore *p, int rc, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  rc = vdbStoreErrorV(p, rc, zFmt, ap);
  va_end(ap);
  return rc;
}

int vdbStoreCorrupt(VdbStore *p, const char *zFmt, ...){
  va_list ap;
  char *zWhat;
  va_start(ap, zFmt);
  zWhat = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( zWhat==0 ) return SQLITE_NOMEM;
  vdbStoreError(p, SQLITE_CORRUPT_VTAB, "vectordb table %s is corrupt: %s", p->zName, zWhat);
  /* The error log hears of the first finding; every use of a damaged
  ** table finds damage again. */
  if( !p->corruptLogged ){
    p->corruptLogged = 1;
    sqlite3_log(SQLITE_CORRUPT_VTAB, "vectordb table %s is corrupt: %s", p->zName, zWhat);
  }
  sqlite3_free(zWhat);
  return SQLITE_CORRUPT_VTAB;
}

char *vdbStoreTakeError(VdbStore *p){
  char *z = p->zErrMsg;
  p->zErrMsg = 0;
  return z;
}

/* ---- statements ---------------------------------------------------------------- */

int vdbStorePrepare(VdbStore *p, char *zSql, sqlite3_stmt **ppStmt){
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, ppStmt, 0);
  sqlite3_free(zSql);
  return rc;
}

int vdbStoreExec(VdbStore *p, char *zSql){
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(p->db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  return rc;
}

int vdbStepReset(sqlite3_stmt *pStmt){
  int rc = sqlite3_step(pStmt);
  int rc2 = sqlite3_reset(pStmt);
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ) return rc2;
  return rc2!=SQLITE_OK ? rc2 : rc;
}

int vdbFinalize(sqlite3_stmt *pStmt, int rc){
  int rc2 = sqlite3_finalize(pStmt);
  return rc!=SQLITE_OK ? rc : rc2;
}

void vdbStoreRandomToken(char *zToken){
  unsigned char aRand[VDB_INDEX_TOKEN_CHARS/2];
  int i;
  sqlite3_randomness(sizeof(aRand), aRand);
  for(i=0; i<(int)sizeof(aRand); i++) sqlite3_snprintf(3, zToken+2*i, "%02x", aRand[i]);
}

/* ---- the table --------------------------------------------------------------------- */

/* The store's tables other than T_vectorsNN, in creation order. */
static const char *const vdbStoreSuffix[] = { "info", "rows", "chunks", "free" };
#define VDB_STORE_NSUFFIX 4

int vdbStoreIsShadowName(const char *zSuffix){
  static const char zVectors[] = "vectors";
  const int n = (int)sizeof(zVectors)-1;
  int i;
  for(i=0; i<VDB_STORE_NSUFFIX; i++){
    if( sqlite3_stricmp(zSuffix, vdbStoreSuffix[i])==0 ) return 1;
  }
  /* vectors00 .. vectors15 */
  if( sqlite3_strnicmp(zSuffix, zVectors, n)==0 && strlen(zSuffix)==(size_t)n+2
   && zSuffix[n]>='0' && zSuffix[n]<='9' && zSuffix[n+1]>='0' && zSuffix[n+1]<='9' ){
    return (zSuffix[n]-'0')*10 + (zSuffix[n+1]-'0') < VDB_MAX_VECTOR_COLUMNS;
  }
  return 0;
}

static const char *vdbSqlType(VdbValueType e){
  switch( e ){
    case VDB_VAL_INTEGER: case VDB_VAL_BOOLEAN: return "INTEGER";
    case VDB_VAL_FLOAT: return "REAL";
    case VDB_VAL_TEXT: return "TEXT";
    case VDB_VAL_BLOB: return "BLOB";
    default: return "";
  }
}

/* The layout signature (vdb_format.h), recorded in T_info and checked on
** connect. */
static char *vdbLayoutSignature(VdbStore *p){
  sqlite3_str *s = sqlite3_str_new(0);
  int i;
  sqlite3_str_appendf(s, "chunk=%d;pk=%s", p->pDef->chunkSize,
                      p->pDef->zPkName ? (p->pDef->pkIsText ? "text" : "integer") : "none");
  for(i=0; i<p->pDef->nCol; i++){
    const VdbColumnDef *c = &p->pDef->aCol[i];
    if( c->eKind==VDB_COL_VECTOR ){
      sqlite3_str_appendf(s, ";v:%s[%d]%s", vdbElemTypeName(c->eElem), c->nDim,
                          c->index.zSignature ? c->index.zSignature : "");
    }else{
      sqlite3_str_appendf(s, ";%c:%s", "?VPMA"[c->eKind], vdbValueTypeName(c->eValType));
    }
  }
  return sqlite3_str_finish(s);
}

/* Partition keys are indexed: a tenant's rows are selected before a KNN
** scan. Index names carry a random token (vdb_format.h). */
static int vdbCreatePartitionIndexes(VdbStore *p){
  char zToken[VDB_INDEX_TOKEN_CHARS+1];
  int i, rc = SQLITE_OK;
  vdbStoreRandomToken(zToken);
  for(i=0; rc==SQLITE_OK && i<p->pDef->nCol; i++){
    if( p->pDef->aCol[i].eKind!=VDB_COL_PARTITION ) continue;
    rc = vdbStoreExec(p, sqlite3_mprintf(
        "CREATE INDEX \"%w\".\"vectordb_%s_c%d\" ON \"%w_rows\"(c%d)",
        p->zDb, zToken, i, p->zName, i));
  }
  return rc;
}

int vdbStoreCreate(VdbStore *p){
  sqlite3_str *s;
  char *zSig;
  int i, rc;
  rc = vdbStoreExec(p, sqlite3_mprintf(
      "CREATE TABLE \"%w\".\"%w_info\"(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
      "CREATE TABLE \"%w\".\"%w_chunks\"(chunk_id INTEGER PRIMARY KEY,"
      " validity BLOB NOT NULL, rowids BLOB NOT NULL);"
      "CREATE TABLE \"%w\".\"%w_free\"(chunk_id INTEGER PRIMARY KEY);",
      p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName));
  if( rc==SQLITE_OK ){
    s = sqlite3_str_new(0);
    sqlite3_str_appendf(s, "CREATE TABLE \"%w\".\"%w_rows\"(rowid INTEGER PRIMARY KEY,"
                           " chunk_id INTEGER NOT NULL, chunk_offset INTEGER NOT NULL",
                        p->zDb, p->zName);
    if( p->pDef->pkIsText ) sqlite3_str_appendall(s, ", pk TEXT NOT NULL UNIQUE");
    for(i=0; i<p->pDef->nCol; i++){
      const VdbColumnDef *c = &p->pDef->aCol[i];
      if( c->eKind!=VDB_COL_VECTOR ) sqlite3_str_appendf(s, ", c%d %s", i, vdbSqlType(c->eValType));
    }
    sqlite3_str_appendall(s, ")");
    rc = vdbStoreExec(p, sqlite3_str_finish(s));
  }
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    rc = vdbStoreExec(p, sqlite3_mprintf(
        "CREATE TABLE \"%w\".\"%w_vectors%02d\"(chunk_id INTEGER PRIMARY KEY, vectors BLOB NOT NULL)",
        p->zDb, p->zName, i));
  }
  if( rc==SQLITE_OK ) rc = vdbCreatePartitionIndexes(p);
  zSig = rc==SQLITE_OK ? vdbLayoutSignature(p) : 0;
  if( rc==SQLITE_OK && zSig==0 ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_OK ){
    rc = vdbStoreExec(p, sqlite3_mprintf(
        "INSERT INTO \"%w\".\"%w_info\"(key, value) VALUES (%Q, %d), (%Q, %Q)",
        p->zDb, p->zName, VDB_INFO_FORMAT, VDB_FORMAT_VERSION, VDB_INFO_LAYOUT, zSig));
  }
  sqlite3_free(zSig);
  if( rc==SQLITE_OK ) p->formatVersion = VDB_FORMAT_VERSION;
  if( rc!=SQLITE_OK && p->zErrMsg==0 ){
    vdbStoreError(p, rc, "vectordb: cannot create the shadow tables of %s: %s",
                  p->zName, sqlite3_errmsg(p->db));
  }
  return rc;
}

/* T_info could not be read at connect: say so, unless something more
** precise was said already. */
static void vdbInfoReadError(VdbStore *p, int rc){
  if( p->zErrMsg==0 ){
    vdbStoreError(p, rc, "vectordb table %s: cannot read %s_info: %s",
                  p->zName, p->zName, sqlite3_errmsg(p->db));
  }
}

int vdbStoreLayoutChunkSize(VdbStore *p, int *pn){
  sqlite3_value *pLayout = 0;
  int rc = vdbStoreInfoGet(p, VDB_INFO_LAYOUT, &pLayout);
  *pn = 0;
  if( rc==SQLITE_OK && pLayout && sqlite3_value_type(pLayout)==SQLITE_TEXT ){
    const char *z = (const char*)sqlite3_value_text(pLayout);
    sqlite3_int64 n = 0;
    if( z && strncmp(z, "chunk=", 6)==0 && z[6]>='0' && z[6]<='9' ){
      for(z+=6; *z>='0' && *z<='9' && n<=VDB_CHUNK_MAX_ROWS; z++) n = n*10 + (*z - '0');
      if( *z==';' && vdbSchemaChunkSizeFits(p->pDef, n) ) *pn = (int)n;
    }
  }else if( rc!=SQLITE_OK ){
    vdbInfoReadError(p, rc);
  }
  sqlite3_value_free(pLayout);
  return rc;
}

int vdbStoreCheck(VdbStore *p){
  sqlite3_value *pFormat = 0, *pLayout = 0;
  char *zSig = vdbLayoutSignature(p);
  int rc;
  if( zSig==0 ) return SQLITE_NOMEM;
  rc = vdbStoreInfoGet(p, VDB_INFO_FORMAT, &pFormat);
  if( rc==SQLITE_OK ) rc = vdbStoreInfoGet(p, VDB_INFO_LAYOUT, &pLayout);
  if( rc==SQLITE_OK ){
    int version = pFormat ? sqlite3_value_int(pFormat) : -1;
    const char *zLayout = pLayout ? (const char*)sqlite3_value_text(pLayout) : 0;
    if( version<VDB_FORMAT_OLDEST || version>VDB_FORMAT_VERSION ){
      /* A version this build does not know is refused, never guessed at. */
      rc = vdbStoreError(p, version<0 ? SQLITE_CORRUPT_VTAB : SQLITE_ERROR,
                         "vectordb table %s has storage format %d; this build reads formats %d to %d",
                         p->zName, version, VDB_FORMAT_OLDEST, VDB_FORMAT_VERSION);
    }else if( zLayout==0 || strcmp(zLayout, zSig)!=0 ){
      rc = vdbStoreCorrupt(p, "the declaration does not match the stored layout");
    }else{
      p->formatVersion = version;
    }
  }else{
    vdbInfoReadError(p, rc);
  }
  sqlite3_value_free(pFormat);
  sqlite3_value_free(pLayout);
  sqlite3_free(zSig);
  return rc;
}

int vdbStoreDrop(VdbStore *p){
  int i, rc = SQLITE_OK;
  vdbStoreFinalizeAll(p);
  for(i=0; rc==SQLITE_OK && i<VDB_STORE_NSUFFIX; i++){
    rc = vdbStoreExec(p, sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_%s\"",
                                         p->zDb, p->zName, vdbStoreSuffix[i]));
  }
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    rc = vdbStoreExec(p, sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_vectors%02d\"",
                                         p->zDb, p->zName, i));
  }
  return rc;
}

int vdbStoreRename(VdbStore *p, const char *zNew){
  int i, rc = SQLITE_OK;
  vdbStoreFinalizeAll(p);
  for(i=0; rc==SQLITE_OK && i<VDB_STORE_NSUFFIX; i++){
    rc = vdbStoreExec(p, sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_%s\" RENAME TO \"%w_%s\"",
                                         p->zDb, p->zName, vdbStoreSuffix[i], zNew, vdbStoreSuffix[i]));
  }
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    rc = vdbStoreExec(p, sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_vectors%02d\" RENAME TO \"%w_vectors%02d\"",
                                         p->zDb, p->zName, i, zNew, i));
  }
  /* The names derived from the table's follow it. */
  return rc==SQLITE_OK ? vdbStoreSetNames(p, zNew) : rc;
}

int vdbStoreSync(VdbStore *p, int *pOtherCommit){
  sqlite3_int64 v = 0;
  int rc = SQLITE_OK;
  *pOtherCommit = 0;
  if( p->aStmt[VDB_STMT_DATA_VERSION]==0 ){
    rc = vdbStorePrepare(p, sqlite3_mprintf("PRAGMA \"%w\".data_version", p->zDb),
                         &p->aStmt[VDB_STMT_DATA_VERSION]);
    if( rc!=SQLITE_OK ) return rc;
  }
  if( sqlite3_step(p->aStmt[VDB_STMT_DATA_VERSION])==SQLITE_ROW ){
    v = sqlite3_column_int64(p->aStmt[VDB_STMT_DATA_VERSION], 0);
  }
  rc = sqlite3_reset(p->aStmt[VDB_STMT_DATA_VERSION]);
  if( rc!=SQLITE_OK ) return rc;
  *pOtherCommit = p->haveDataVersion && v!=p->dataVersion;
  p->dataVersion = v;
  p->haveDataVersion = 1;
  return SQLITE_OK;
}

/* ---- cached statements ------------------------------------------------------- */

static int vdbStmt(VdbStore *p, VdbStmtId id, sqlite3_stmt **ppStmt){
  char *zSql = 0;
  const char *zDb = p->zDb, *zName = p->zName;
  if( p->aStmt[id] ){
    *ppStmt = p->aStmt[id];
    return SQLITE_OK;
  }
  switch( id ){
    case VDB_STMT_ROW_INSERT: {
      sqlite3_str *s = sqlite3_str_new(0);
      int i, iParam = p->pDef->pkIsText ? 5 : 4;
      sqlite3_str_appendf(s, "INSERT INTO \"%w\".\"%w_rows\"(rowid, chunk_id, chunk_offset%s",
                          zDb, zName, p->pDef->pkIsText ? ", pk" : "");
      for(i=0; i<p->pDef->nCol; i++){
        if( p->pDef->aCol[i].eKind!=VDB_COL_VECTOR ) sqlite3_str_appendf(s, ", c%d", i);
      }
      sqlite3_str_appendf(s, ") VALUES (?1, ?2, ?3%s", p->pDef->pkIsText ? ", ?4" : "");
      for(i=0; i<p->pDef->nCol; i++){
        if( p->pDef->aCol[i].eKind!=VDB_COL_VECTOR ) sqlite3_str_appendf(s, ", ?%d", iParam++);
      }
      sqlite3_str_appendall(s, ")");
      zSql = sqlite3_str_finish(s);
      break;
    }
    case VDB_STMT_ROW_LOCATE:
      zSql = sqlite3_mprintf("SELECT chunk_id, chunk_offset FROM \"%w\".\"%w_rows\" WHERE rowid=?1", zDb, zName);
      break;
    case VDB_STMT_ROW_LOCATE_PK:
      zSql = sqlite3_mprintf("SELECT rowid FROM \"%w\".\"%w_rows\" WHERE pk=?1", zDb, zName);
      break;
    case VDB_STMT_ROW_DELETE:
      zSql = sqlite3_mprintf("DELETE FROM \"%w\".\"%w_rows\" WHERE rowid=?1", zDb, zName);
      break;
    case VDB_STMT_ROW_MOVE:
      zSql = sqlite3_mprintf("UPDATE \"%w\".\"%w_rows\" SET rowid=?2 WHERE rowid=?1", zDb, zName);
      break;
    case VDB_STMT_FREE_FIRST:
      zSql = sqlite3_mprintf("SELECT chunk_id FROM \"%w\".\"%w_free\" ORDER BY chunk_id LIMIT 1", zDb, zName);
      break;
    case VDB_STMT_FREE_ADD:
      zSql = sqlite3_mprintf("INSERT OR IGNORE INTO \"%w\".\"%w_free\"(chunk_id) VALUES (?1)", zDb, zName);
      break;
    case VDB_STMT_FREE_REMOVE:
      zSql = sqlite3_mprintf("DELETE FROM \"%w\".\"%w_free\" WHERE chunk_id=?1", zDb, zName);
      break;
    case VDB_STMT_CHUNK_INSERT:
      zSql = sqlite3_mprintf("INSERT INTO \"%w\".\"%w_chunks\"(chunk_id, validity, rowids)"
                             " VALUES ((SELECT coalesce(max(chunk_id), 0) + 1 FROM \"%w\".\"%w_chunks\"),"
                             " zeroblob(?1), zeroblob(?2))", zDb, zName, zDb, zName);
      break;
    case VDB_STMT_CHUNK_DELETE:
      zSql = sqlite3_mprintf("DELETE FROM \"%w\".\"%w_chunks\" WHERE chunk_id=?1", zDb, zName);
      break;
    case VDB_STMT_MAX_ROWID:
      zSql = sqlite3_mprintf("SELECT max(rowid) FROM \"%w\".\"%w_rows\"", zDb, zName);
      break;
    case VDB_STMT_INFO_GET:
      zSql = sqlite3_mprintf("SELECT value FROM \"%w\".\"%w_info\" WHERE key=?1", zDb, zName);
      break;
    case VDB_STMT_INFO_SET:
      zSql = sqlite3_mprintf("INSERT INTO \"%w\".\"%w_info\"(key, value) VALUES (?1, ?2)", zDb, zName);
      break;
    case VDB_STMT_INFO_DELETE:
      zSql = sqlite3_mprintf("DELETE FROM \"%w\".\"%w_info\" WHERE key=?1", zDb, zName);
      break;
    default:
      return SQLITE_INTERNAL;
  }
  {
    int rc = vdbStorePrepare(p, zSql, &p->aStmt[id]);
    *ppStmt = p->aStmt[id];
    return rc;
  }
}

/* ---- T_info ------------------------------------------------------------------- */

int vdbStoreInfoGet(VdbStore *p, const char *zKey, sqlite3_value **ppVal){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_INFO_GET, &pStmt);
  *ppVal = 0;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    *ppVal = sqlite3_value_dup(sqlite3_column_value(pStmt, 0));
    if( *ppVal==0 ) rc = SQLITE_NOMEM;
  }
  {
    int rc2 = sqlite3_reset(pStmt);
    if( rc2!=SQLITE_OK ){ sqlite3_value_free(*ppVal); *ppVal = 0; }
    return rc!=SQLITE_OK ? rc : rc2;
  }
}

/* Writes use plain single-row DELETE and INSERT statements, never INSERT
** OR REPLACE or UPDATE: those need a statement journal, and a nested
** statement that opens one while SQLite is starting the user's statement
** (xSavepoint runs just before the statement's own journal begins) opens
** the user statement's savepoint early, so that an index's flush would
** land inside it and be undone if that statement failed -- while the
** index, discarded by xRollbackTo, no longer holds the changes either. */
int vdbStoreInfoDelete(VdbStore *p, const char *zKey){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_INFO_DELETE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
  return vdbStepReset(pStmt);
}

int vdbStoreInfoSet(VdbStore *p, const char *zKey, sqlite3_int64 value){
  sqlite3_stmt *pStmt;
  int rc = vdbStoreInfoDelete(p, zKey);
  if( rc==SQLITE_OK ) rc = vdbStmt(p, VDB_STMT_INFO_SET, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, value);
  return vdbStepReset(pStmt);
}

/* ---- blob I/O ------------------------------------------------------------------- */

/* Open a shadow blob and check that it has exactly nExpect bytes. A
** missing row means the shadow tables disagree with each other. */
static int vdbBlobOpen(VdbStore *p, const char *zTable, const char *zColumn,
                       sqlite3_int64 iRow, int nExpect, int isWrite, sqlite3_blob **ppBlob){
  int rc;
  *ppBlob = 0;
  rc = sqlite3_blob_open(p->db, p->zDb, zTable, zColumn, iRow, isWrite, ppBlob);
  if( rc==SQLITE_OK && sqlite3_blob_bytes(*ppBlob)!=nExpect ) rc = SQLITE_CORRUPT_VTAB;
  if( rc==SQLITE_ERROR ) rc = SQLITE_CORRUPT_VTAB;
  if( rc!=SQLITE_OK ){
    sqlite3_blob_close(*ppBlob);
    *ppBlob = 0;
  }
  return rc;
}

/* Read or write n bytes at iOffset of a shadow blob of nExpect bytes. */
static int vdbBlobIO(VdbStore *p, const char *zTable, const char *zColumn,
                     sqlite3_int64 iRow, int nExpect, int iOffset, void *pBuf, int n, int isWrite){
  sqlite3_blob *pBlob = 0;
  int rc;
  if( iOffset<0 || iOffset+n>nExpect ) return SQLITE_CORRUPT_VTAB;
  rc = vdbBlobOpen(p, zTable, zColumn, iRow, nExpect, isWrite, &pBlob);
  if( rc==SQLITE_OK ){
    rc = isWrite ? sqlite3_blob_write(pBlob, pBuf, n, iOffset)
                 : sqlite3_blob_read(pBlob, pBuf, n, iOffset);
  }
  sqlite3_blob_close(pBlob);
  return rc;
}

int vdbStoreReadVector(VdbStore *p, int iVec, const VdbSlot *pSlot, void *pBuf){
  int n = p->aVecBytes[iVec];
  return vdbBlobIO(p, p->azVecTable[iVec], "vectors", pSlot->chunkId,
                   n * p->pDef->chunkSize, n * pSlot->offset, pBuf, n, 0);
}

int vdbStoreReadChunk(VdbStore *p, int iVec, sqlite3_int64 chunkId, void *pBuf,
                         sqlite3_blob **ppBlob){
  return vdbStoreReadRows(p, iVec, chunkId, 0, p->pDef->chunkSize, pBuf, ppBlob);
}

int vdbStoreReadRows(VdbStore *p, int iVec, sqlite3_int64 chunkId, int iFirst, int nRow,
                     void *pBuf, sqlite3_blob **ppBlob){
  int n = p->aVecBytes[iVec] * p->pDef->chunkSize;
  int rc = SQLITE_ERROR;
  if( iFirst<0 || nRow<0 || iFirst+nRow>p->pDef->chunkSize ) return SQLITE_CORRUPT_VTAB;
  /* A handle whose row was changed since (expired), or that points at a
  ** row that is gone, fails to move: open a new one, which tells which. */
  if( *ppBlob ) rc = sqlite3_blob_reopen(*ppBlob, chunkId);
  if( rc==SQLITE_OK && sqlite3_blob_bytes(*ppBlob)!=n ) rc = SQLITE_CORRUPT_VTAB;
  if( rc!=SQLITE_OK ){
    sqlite3_blob_close(*ppBlob);
    rc = vdbBlobOpen(p, p->azVecTable[iVec], "vectors", chunkId, n, 0, ppBlob);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_blob_read(*ppBlob, pBuf, p->aVecBytes[iVec]*nRow, p->aVecBytes[iVec]*iFirst);
  }
  if( rc!=SQLITE_OK ){
    sqlite3_blob_close(*ppBlob);
    *ppBlob = 0;
  }
  return rc;
}

static int vdbWriteVectorBytes(VdbStore *p, int iVec, const VdbSlot *pSlot, const void *pData){
  int n = p->aVecBytes[iVec];
  return vdbBlobIO(p, p->azVecTable[iVec], "vectors", pSlot->chunkId,
                   n * p->pDef->chunkSize, n * pSlot->offset, (void*)pData, n, 1);
}

int vdbStoreWriteVector(VdbStore *p, int iVec, const VdbSlot *pSlot, const VdbVector *pVec){
  return vdbWriteVectorBytes(p, iVec, pSlot, pVec->pData);
}

/* Prepare a one-off query of the shadow tables (zSql consumed). */
static int vdbQuery(VdbStore *p, char *zSql, sqlite3_stmt **ppStmt){
  int rc;
  *ppStmt = 0;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(p->db, zSql, -1, ppStmt, 0);
  sqlite3_free(zSql);
  return rc;
}

/* ---- lookups --------------------------------------------------------------------- */

/* Step a lookup whose first column is wanted: SQLITE_OK with the row,
** SQLITE_DONE without one, or the error. Leaves the statement reset only
** on SQLITE_DONE and errors; the caller reads the row, then resets. */
static int vdbLookupStep(sqlite3_stmt *pStmt){
  int rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ) return SQLITE_OK;
  {
    int rc2 = sqlite3_reset(pStmt);
    return rc==SQLITE_DONE ? (rc2!=SQLITE_OK ? rc2 : SQLITE_DONE) : (rc2!=SQLITE_OK ? rc2 : rc);
  }
}

int vdbStoreLocate(VdbStore *p, sqlite3_int64 rowid, VdbSlot *pSlot){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_ROW_LOCATE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, rowid);
  rc = vdbLookupStep(pStmt);
  if( rc!=SQLITE_OK ) return rc;
  pSlot->chunkId = sqlite3_column_int64(pStmt, 0);
  pSlot->offset = sqlite3_column_int(pStmt, 1);
  rc = sqlite3_column_int64(pStmt, 1)<0 || sqlite3_column_int64(pStmt, 1)>=p->pDef->chunkSize
     ? SQLITE_CORRUPT_VTAB : SQLITE_OK;
  {
    int rc2 = sqlite3_reset(pStmt);
    return rc!=SQLITE_OK ? rc : rc2;
  }
}

int vdbStoreLocatePk(VdbStore *p, sqlite3_value *pPk, sqlite3_int64 *pRowid){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_ROW_LOCATE_PK, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_value(pStmt, 1, pPk);
  rc = vdbLookupStep(pStmt);
  if( rc!=SQLITE_OK ) return rc;
  *pRowid = sqlite3_column_int64(pStmt, 0);
  return sqlite3_reset(pStmt);
}

int vdbStoreMaxRowid(VdbStore *p, sqlite3_int64 *pRowid){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_MAX_ROWID, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  *pRowid = 0;
  if( sqlite3_step(pStmt)==SQLITE_ROW ) *pRowid = sqlite3_column_int64(pStmt, 0);
  return sqlite3_reset(pStmt);
}

int vdbStoreRowCount(VdbStore *p, sqlite3_int64 *pCount){
  sqlite3_stmt *pStmt = 0;
  int rc;
  *pCount = 0;
  rc = vdbQuery(p, sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w_rows\"", p->zDb, p->zName), &pStmt);
  /* A count that failed to run is its error, not a count of zero. */
  if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ) *pCount = sqlite3_column_int64(pStmt, 0);
  return vdbFinalize(pStmt, rc);
}

/* ---- slot allocation ---------------------------------------------------------------- */

static int vdbFreeListSet(VdbStore *p, sqlite3_int64 chunkId, int hasRoom){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, hasRoom ? VDB_STMT_FREE_ADD : VDB_STMT_FREE_REMOVE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, chunkId);
  return vdbStepReset(pStmt);
}

/* A new, empty chunk with zeroed vector blobs. */
static int vdbNewChunk(VdbStore *p, sqlite3_int64 *pChunkId){
  sqlite3_stmt *pStmt;
  sqlite3_int64 iSavedRowid = sqlite3_last_insert_rowid(p->db);
  int rc = vdbStmt(p, VDB_STMT_CHUNK_INSERT, &pStmt);
  int i;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int(pStmt, 1, p->pDef->chunkSize/8);
  sqlite3_bind_int64(pStmt, 2, (sqlite3_int64)p->pDef->chunkSize*8);
  rc = vdbStepReset(pStmt);
  if( rc!=SQLITE_OK ) return rc;
  *pChunkId = sqlite3_last_insert_rowid(p->db);
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    if( p->aVecInsert[i]==0 ){
      rc = vdbStorePrepare(p, sqlite3_mprintf(
          "INSERT INTO \"%w\".\"%w_vectors%02d\"(chunk_id, vectors) VALUES (?1, zeroblob(?2))",
          p->zDb, p->zName, i), &p->aVecInsert[i]);
      if( rc!=SQLITE_OK ) break;
    }
    sqlite3_bind_int64(p->aVecInsert[i], 1, *pChunkId);
    sqlite3_bind_int64(p->aVecInsert[i], 2, (sqlite3_int64)p->aVecBytes[i] * p->pDef->chunkSize);
    rc = vdbStepReset(p->aVecInsert[i]);
  }
  if( rc==SQLITE_OK ) rc = vdbFreeListSet(p, *pChunkId, 1);
  sqlite3_set_last_insert_rowid(p->db, iSavedRowid);
  return rc;
}

static int vdbDeleteChunk(VdbStore *p, sqlite3_int64 chunkId){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_CHUNK_DELETE, &pStmt);
  int i;
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, chunkId);
  rc = vdbStepReset(pStmt);
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    if( p->aVecDelete[i]==0 ){
      rc = vdbStorePrepare(p, sqlite3_mprintf(
          "DELETE FROM \"%w\".\"%w_vectors%02d\" WHERE chunk_id=?1", p->zDb, p->zName, i),
          &p->aVecDelete[i]);
      if( rc!=SQLITE_OK ) break;
    }
    sqlite3_bind_int64(p->aVecDelete[i], 1, chunkId);
    rc = vdbStepReset(p->aVecDelete[i]);
  }
  if( rc==SQLITE_OK ) rc = vdbFreeListSet(p, chunkId, 0);
  return rc;
}

static int vdbSlotLive(const unsigned char *aValid, int i){
  return (aValid[i/8] >> (i%8)) & 1;
}

static int vdbCountLive(const unsigned char *aValid, int nByte){
  int i, n = 0;
  for(i=0; i<nByte; i++) n += __builtin_popcount(aValid[i]);
  return n;
}

/* Claim a free slot: the lowest free slot of the lowest chunk with room.
** The validity bitmap is read and updated through one blob handle. */
static int vdbAllocSlot(VdbStore *p, VdbSlot *pSlot){
  unsigned char aValid[VDB_CHUNK_MAX_ROWS/8];
  int nValid = p->pDef->chunkSize/8;
  sqlite3_stmt *pStmt;
  sqlite3_blob *pBlob = 0;
  int rc = vdbStmt(p, VDB_STMT_FREE_FIRST, &pStmt);
  int i = 0, used = 0, found = 0;
  if( rc!=SQLITE_OK ) return rc;
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    pSlot->chunkId = sqlite3_column_int64(pStmt, 0);
    found = 1;
  }
  rc = sqlite3_reset(pStmt);
  if( rc==SQLITE_OK && !found ) rc = vdbNewChunk(p, &pSlot->chunkId);
  if( rc==SQLITE_OK ) rc = vdbBlobOpen(p, p->zChunksTable, "validity", pSlot->chunkId, nValid, 1, &pBlob);
  if( rc==SQLITE_OK ) rc = sqlite3_blob_read(pBlob, aValid, nValid, 0);
  if( rc==SQLITE_OK ){
    used = vdbCountLive(aValid, nValid);
    while( i<p->pDef->chunkSize && vdbSlotLive(aValid, i) ) i++;
    /* The free list named a chunk without a free slot. */
    if( i>=p->pDef->chunkSize ) rc = SQLITE_CORRUPT_VTAB;
  }
  if( rc==SQLITE_OK ){
    pSlot->offset = i;
    aValid[i/8] |= (unsigned char)(1u << (i%8));
    rc = sqlite3_blob_write(pBlob, &aValid[i/8], 1, i/8);
  }
  sqlite3_blob_close(pBlob);
  if( rc==SQLITE_OK && used+1==p->pDef->chunkSize ) rc = vdbFreeListSet(p, pSlot->chunkId, 0);
  return rc;
}

static int vdbWriteSlotRowid(VdbStore *p, const VdbSlot *pSlot, sqlite3_int64 rowid){
  unsigned char a[8];
  vdbPutLe64(a, rowid);
  return vdbBlobIO(p, p->zChunksTable, "rowids", pSlot->chunkId, p->pDef->chunkSize*8,
                   pSlot->offset*8, a, 8, 1);
}

/* ---- row writes ------------------------------------------------------------------------ */

int vdbStoreInsert(VdbStore *p, sqlite3_int64 rowid, sqlite3_value *pPk,
                   sqlite3_value **apVal, const VdbVector *aVec, VdbSlot *pSlot){
  VdbSlot slot;
  sqlite3_stmt *pStmt;
  int rc, i, iParam;
  rc = vdbAllocSlot(p, &slot);
  if( rc==SQLITE_OK ) rc = vdbWriteSlotRowid(p, &slot, rowid);
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    rc = vdbStoreWriteVector(p, i, &slot, &aVec[i]);
  }
  if( rc==SQLITE_OK ) rc = vdbStmt(p, VDB_STMT_ROW_INSERT, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, rowid);
  sqlite3_bind_int64(pStmt, 2, slot.chunkId);
  sqlite3_bind_int(pStmt, 3, slot.offset);
  iParam = 4;
  if( p->pDef->pkIsText ) sqlite3_bind_value(pStmt, iParam++, pPk);
  for(i=0; i<p->pDef->nCol; i++){
    if( p->pDef->aCol[i].eKind==VDB_COL_VECTOR ) continue;
    sqlite3_bind_value(pStmt, iParam++, apVal[i]);
  }
  *pSlot = slot;
  return vdbStepReset(pStmt);
}

int vdbStoreDelete(VdbStore *p, sqlite3_int64 rowid){
  unsigned char aValid[VDB_CHUNK_MAX_ROWS/8];
  int nValid = p->pDef->chunkSize/8;
  VdbSlot slot;
  sqlite3_stmt *pStmt;
  sqlite3_blob *pBlob = 0;
  int rc, used = 0, i;
  rc = vdbStoreLocate(p, rowid, &slot);
  if( rc==SQLITE_DONE ) return SQLITE_OK;
  if( rc==SQLITE_OK ) rc = vdbBlobOpen(p, p->zChunksTable, "validity", slot.chunkId, nValid, 1, &pBlob);
  if( rc==SQLITE_OK ) rc = sqlite3_blob_read(pBlob, aValid, nValid, 0);
  if( rc==SQLITE_OK ){
    used = vdbCountLive(aValid, nValid);
    if( !vdbSlotLive(aValid, slot.offset) ) rc = SQLITE_CORRUPT_VTAB;
  }
  if( rc==SQLITE_OK && used>1 ){
    aValid[slot.offset/8] &= (unsigned char)~(1u << (slot.offset%8));
    rc = sqlite3_blob_write(pBlob, &aValid[slot.offset/8], 1, slot.offset/8);
  }
  sqlite3_blob_close(pBlob);
  if( rc!=SQLITE_OK ) return rc;
  if( used==1 ){
    /* The last row of its chunk: drop the chunk and its vector blobs. */
    rc = vdbDeleteChunk(p, slot.chunkId);
  }else{
    rc = vdbWriteSlotRowid(p, &slot, 0);
    /* Deleted vectors do not linger in the file. */
    for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
      rc = vdbWriteVectorBytes(p, i, &slot, vdbZeroVector);
    }
    if( rc==SQLITE_OK && used==p->pDef->chunkSize ) rc = vdbFreeListSet(p, slot.chunkId, 1);
  }
  if( rc==SQLITE_OK ) rc = vdbStmt(p, VDB_STMT_ROW_DELETE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, rowid);
  return vdbStepReset(pStmt);
}

int vdbStoreMove(VdbStore *p, sqlite3_int64 oldRowid, sqlite3_int64 newRowid){
  VdbSlot slot;
  sqlite3_stmt *pStmt;
  int rc = vdbStoreLocate(p, oldRowid, &slot);
  if( rc==SQLITE_DONE ) return SQLITE_CORRUPT_VTAB;
  if( rc==SQLITE_OK ) rc = vdbWriteSlotRowid(p, &slot, newRowid);
  if( rc==SQLITE_OK ) rc = vdbStmt(p, VDB_STMT_ROW_MOVE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, oldRowid);
  sqlite3_bind_int64(pStmt, 2, newRowid);
  return vdbStepReset(pStmt);
}

int vdbStoreUpdateColumns(VdbStore *p, sqlite3_int64 rowid, sqlite3_value **apVal,
                          const unsigned char *aChanged, sqlite3_value *pPk){
  sqlite3_str *s = sqlite3_str_new(0);
  sqlite3_stmt *pStmt = 0;
  int i, n = 0, rc;
  /* Parameters: ?1 the rowid, ?2 the primary key, ?(i+3) column i. */
  sqlite3_str_appendf(s, "UPDATE \"%w\".\"%w_rows\" SET ", p->zDb, p->zName);
  if( pPk ){
    sqlite3_str_appendall(s, "pk=?2");
    n++;
  }
  for(i=0; i<p->pDef->nCol; i++){
    if( p->pDef->aCol[i].eKind==VDB_COL_VECTOR || !aChanged[i] ) continue;
    sqlite3_str_appendf(s, "%sc%d=?%d", n ? ", " : "", i, i+3);
    n++;
  }
  sqlite3_str_appendall(s, " WHERE rowid=?1");
  if( n==0 ){
    sqlite3_free(sqlite3_str_finish(s));
    return SQLITE_OK;
  }
  /* Out of memory, the text is NULL: never prepare that. */
  rc = sqlite3_str_errcode(s);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(p->db, sqlite3_str_value(s), -1, &pStmt, 0);
  sqlite3_free(sqlite3_str_finish(s));
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, rowid);
  if( pPk ) sqlite3_bind_value(pStmt, 2, pPk);
  for(i=0; i<p->pDef->nCol; i++){
    if( p->pDef->aCol[i].eKind!=VDB_COL_VECTOR && aChanged[i] ) sqlite3_bind_value(pStmt, i+3, apVal[i]);
  }
  sqlite3_step(pStmt);
  return sqlite3_finalize(pStmt);
}

/* ---- integrity ---------------------------------------------------------------------- */

int vdbStoreIntegrity(VdbStore *p){
  sqlite3_stmt *pStmt = 0;
  int rc, iVec, nValid = p->pDef->chunkSize/8;
  sqlite3_int64 nRows = 0, nBits = 0;
  /* Every row's slot is marked live and names the row back. */
  rc = vdbQuery(p, sqlite3_mprintf(
      "SELECT r.rowid, r.chunk_offset, c.validity, c.rowids FROM \"%w\".\"%w_rows\" r"
      " LEFT JOIN \"%w\".\"%w_chunks\" c ON c.chunk_id=r.chunk_id",
      p->zDb, p->zName, p->zDb, p->zName), &pStmt);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    sqlite3_int64 rowid = sqlite3_column_int64(pStmt, 0), stored;
    int off = sqlite3_column_int(pStmt, 1);
    const unsigned char *aValid = (const unsigned char*)sqlite3_column_blob(pStmt, 2);
    const unsigned char *aRowid = (const unsigned char*)sqlite3_column_blob(pStmt, 3);
    nRows++;
    if( aValid==0 || sqlite3_column_bytes(pStmt, 2)!=nValid
     || sqlite3_column_bytes(pStmt, 3)!=p->pDef->chunkSize*8
     || off<0 || off>=p->pDef->chunkSize || !vdbSlotLive(aValid, off) ){
      rc = vdbStoreCorrupt(p, "row %lld has no live slot in its chunk", rowid);
      break;
    }
    stored = vdbGetLe64(aRowid + 8*off);
    if( stored!=rowid ){
      rc = vdbStoreCorrupt(p, "row %lld: its slot names row %lld", rowid, stored);
    }
  }
  rc = vdbFinalize(pStmt, rc);
  /* No live slot without a row. */
  if( rc==SQLITE_OK ){
    rc = vdbQuery(p, sqlite3_mprintf("SELECT validity FROM \"%w\".\"%w_chunks\"",
                                     p->zDb, p->zName), &pStmt);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      const unsigned char *a = (const unsigned char*)sqlite3_column_blob(pStmt, 0);
      if( a ) nBits += vdbCountLive(a, sqlite3_column_bytes(pStmt, 0));
    }
    rc = vdbFinalize(pStmt, rc);
    if( rc==SQLITE_OK && nBits!=nRows ){
      rc = vdbStoreCorrupt(p, "%lld live slots for %lld rows", nBits, nRows);
    }
  }
  /* The free list names existing chunks that have a free slot: an insert
  ** takes its slot from the first one. */
  if( rc==SQLITE_OK ){
    rc = vdbQuery(p, sqlite3_mprintf(
        "SELECT f.chunk_id, c.validity FROM \"%w\".\"%w_free\" f"
        " LEFT JOIN \"%w\".\"%w_chunks\" c ON c.chunk_id=f.chunk_id",
        p->zDb, p->zName, p->zDb, p->zName), &pStmt);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      const unsigned char *a = (const unsigned char*)sqlite3_column_blob(pStmt, 1);
      if( a==0 || sqlite3_column_bytes(pStmt, 1)!=nValid || vdbCountLive(a, nValid)>=p->pDef->chunkSize ){
        rc = vdbStoreCorrupt(p, "the free list names chunk %lld, which has no free slot",
                             sqlite3_column_int64(pStmt, 0));
      }
    }
    rc = vdbFinalize(pStmt, rc);
  }
  /* Every chunk has each vector column's blob, of the chunk's size. */
  for(iVec=0; rc==SQLITE_OK && iVec<p->nVec; iVec++){
    rc = vdbQuery(p, sqlite3_mprintf(
        "SELECT c.chunk_id FROM \"%w\".\"%w_chunks\" c LEFT JOIN \"%w\".\"%w_vectors%02d\" v"
        " ON v.chunk_id=c.chunk_id WHERE v.chunk_id IS NULL OR typeof(v.vectors)!='blob'"
        " OR length(v.vectors)!=%lld LIMIT 1",
        p->zDb, p->zName, p->zDb, p->zName, iVec,
        (sqlite3_int64)p->aVecBytes[iVec]*p->pDef->chunkSize), &pStmt);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      rc = vdbStoreCorrupt(p, "chunk %lld of %s_vectors%02d is missing or has the wrong size",
                           sqlite3_column_int64(pStmt, 0), p->zName, iVec);
    }
    rc = vdbFinalize(pStmt, rc);
  }
  return rc;
}

/* ---- row queries --------------------------------------------------------------------- */

struct VdbRows {
  VdbStore *pStore;
  VdbRowsShape eShape;
  sqlite3_stmt *pStmt;
};

static const char *vdbOpSql(char op){
  switch( op ){
    case '=': return "=";
    case '!': return "!=";
    case '<': return "<";
    case '{': return "<=";
    case '>': return ">";
    case '}': return ">=";
    case 'N': return "IS NULL";
    case 'n': return "IS NOT NULL";
    case 'k': return "LIKE";
    case 'g': return "GLOB";
    case 's': return "IS";
    case 'S': return "IS NOT";
  }
  return 0;
}

/* "SELECT <columns> FROM T_rows" for a shape; whole rows list every
** column by name, in the order aRowCol and iRowPk describe. */
static void vdbRowsSelect(VdbStore *p, VdbRowsShape eShape, sqlite3_str *s){
  int i;
  sqlite3_str_appendall(s, "SELECT rowid, chunk_id, chunk_offset");
  if( eShape==VDB_ROWS_BY_ROWID ){
    if( p->pDef->pkIsText ) sqlite3_str_appendall(s, ", pk");
    for(i=0; i<p->pDef->nCol; i++){
      if( p->aRowCol[i]>=0 ) sqlite3_str_appendf(s, ", c%d", i);
    }
  }
  sqlite3_str_appendf(s, " FROM \"%w\".\"%w_rows\"", p->zDb, p->zName);
}

static void vdbRowsWhere(const VdbRowConstraint *aCons, int nCons, sqlite3_str *s, int *pnParam){
  int i, j, n = 0;
  for(i=0; i<nCons; i++){
    const VdbRowConstraint *c = &aCons[i];
    char zCol[16];
    if( c->iCol==VDB_COL_ROWID ) sqlite3_snprintf(sizeof(zCol), zCol, "rowid");
    else if( c->iCol==VDB_COL_PK ) sqlite3_snprintf(sizeof(zCol), zCol, "pk");
    else sqlite3_snprintf(sizeof(zCol), zCol, "c%d", c->iCol);
    sqlite3_str_appendall(s, i ? " AND " : " WHERE ");
    if( c->op=='i' ){
      sqlite3_str_appendf(s, "%s IN (", zCol);
      for(j=0; j<c->nVal; j++) sqlite3_str_appendall(s, j ? ",?" : "?");
      sqlite3_str_appendall(s, c->nVal ? ")" : "NULL)");
      n += c->nVal;
    }else if( c->op=='N' || c->op=='n' ){
      sqlite3_str_appendf(s, "%s %s", zCol, vdbOpSql(c->op));
    }else{
      sqlite3_str_appendf(s, "%s %s ?", zCol, vdbOpSql(c->op));
      n++;
    }
  }
  *pnParam = n;
}

int vdbStoreRowsOpen(VdbStore *p, VdbRowsShape eShape, const VdbRowConstraint *aCons,
                     int nCons, VdbRows **ppRows){
  sqlite3_str *s = sqlite3_str_new(p->db);
  VdbRows *pRows;
  int rc, i, j, nParam = 0, iParam = 1;
  *ppRows = 0;
  vdbRowsSelect(p, eShape, s);
  vdbRowsWhere(aCons, nCons, s, &nParam);
  sqlite3_str_appendall(s, eShape==VDB_ROWS_BY_ROWID ? " ORDER BY rowid" : " ORDER BY chunk_id, chunk_offset");
  pRows = (VdbRows*)sqlite3_malloc(sizeof(*pRows));
  if( pRows ) memset(pRows, 0, sizeof(*pRows));
  /* Out of memory, the text is NULL: never prepare that. */
  rc = pRows ? sqlite3_str_errcode(s) : SQLITE_NOMEM;
  if( rc==SQLITE_OK ){
    pRows->pStore = p;
    pRows->eShape = eShape;
    if( nParam > sqlite3_limit(p->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1) ){
      rc = vdbStoreError(p, SQLITE_TOOBIG, "vectordb: too many values in IN lists (%d)", nParam);
    }else{
      rc = sqlite3_prepare_v2(p->db, sqlite3_str_value(s), -1, &pRows->pStmt, 0);
    }
  }
  for(i=0; rc==SQLITE_OK && i<nCons; i++){
    if( aCons[i].op=='N' || aCons[i].op=='n' ) continue;
    for(j=0; rc==SQLITE_OK && j<(aCons[i].op=='i' ? aCons[i].nVal : 1); j++){
      rc = sqlite3_bind_value(pRows->pStmt, iParam++, aCons[i].apVal[j]);
    }
  }
  sqlite3_free(sqlite3_str_finish(s));
  if( rc!=SQLITE_OK ){
    vdbRowsClose(pRows);
    return rc;
  }
  *ppRows = pRows;
  return SQLITE_OK;
}

int vdbStoreRowsOpenSeek(VdbStore *p, VdbRows **ppRows){
  sqlite3_str *s = sqlite3_str_new(p->db);
  VdbRows *pRows = (VdbRows*)sqlite3_malloc(sizeof(*pRows));
  int rc;
  *ppRows = 0;
  vdbRowsSelect(p, VDB_ROWS_BY_ROWID, s);
  sqlite3_str_appendall(s, " WHERE rowid=?1");
  if( pRows ) memset(pRows, 0, sizeof(*pRows));
  rc = pRows ? sqlite3_str_errcode(s) : SQLITE_NOMEM;
  if( rc==SQLITE_OK ){
    pRows->pStore = p;
    pRows->eShape = VDB_ROWS_BY_ROWID;
    rc = sqlite3_prepare_v2(p->db, sqlite3_str_value(s), -1, &pRows->pStmt, 0);
  }
  sqlite3_free(sqlite3_str_finish(s));
  if( rc!=SQLITE_OK ){
    vdbRowsClose(pRows);
    return rc;
  }
  *ppRows = pRows;
  return SQLITE_OK;
}

int vdbRowsStep(VdbRows *pRows){
  int rc = sqlite3_step(pRows->pStmt);
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ) return rc;
  return sqlite3_reset(pRows->pStmt);
}

int vdbRowsSeek(VdbRows *pRows, sqlite3_int64 rowid){
  sqlite3_reset(pRows->pStmt);
  sqlite3_bind_int64(pRows->pStmt, 1, rowid);
  return vdbRowsStep(pRows);
}

sqlite3_int64 vdbRowsRowid(VdbRows *pRows){
  return sqlite3_column_int64(pRows->pStmt, VDB_ROWS_COL_ROWID);
}

int vdbRowsSlot(VdbRows *pRows, VdbSlot *pSlot){
  sqlite3_int64 off = sqlite3_column_int64(pRows->pStmt, VDB_ROWS_COL_OFFSET);
  if( off<0 || off>=pRows->pStore->pDef->chunkSize ) return SQLITE_CORRUPT_VTAB;
  pSlot->chunkId = sqlite3_column_int64(pRows->pStmt, VDB_ROWS_COL_CHUNK);
  pSlot->offset = (int)off;
  return SQLITE_OK;
}

sqlite3_value *vdbRowsValue(VdbRows *pRows, int iCol){
  VdbStore *p = pRows->pStore;
  return sqlite3_column_value(pRows->pStmt, iCol==VDB_COL_PK ? p->iRowPk : p->aRowCol[iCol]);
}

int vdbRowsReset(VdbRows *pRows){
  return sqlite3_reset(pRows->pStmt);
}

void vdbRowsClose(VdbRows *pRows){
  if( pRows==0 ) return;
  sqlite3_finalize(pRows->pStmt);
  sqlite3_free(pRows);
}

/* ---- chunk scans ------------------------------------------------------------------------ */

int vdbChunkScanOpen(VdbStore *p, int iVec, VdbChunkScan *pScan){
  memset(pScan, 0, sizeof(*pScan));
  pScan->pStore = p;
  pScan->iVec = iVec;
  pScan->aVec = (unsigned char*)sqlite3_malloc64((sqlite3_uint64)p->aVecBytes[iVec] * p->pDef->chunkSize);
  return pScan->aVec ? SQLITE_OK : SQLITE_NOMEM;
}

/* One handle moves from chunk to chunk (vdbStoreReadChunk). */
int vdbChunkScanRead(VdbChunkScan *pScan, sqlite3_int64 chunkId){
  return vdbStoreReadChunk(pScan->pStore, pScan->iVec, chunkId, pScan->aVec, &pScan->pBlob);
}

int vdbChunkScanNext(VdbChunkScan *pScan){
  VdbStore *p = pScan->pStore;
  int rc = SQLITE_OK;
  if( pScan->pStmt==0 ){
    rc = vdbQuery(p, sqlite3_mprintf(
        "SELECT chunk_id, validity, rowids FROM \"%w\".\"%w_chunks\" ORDER BY chunk_id",
        p->zDb, p->zName), &pScan->pStmt);
    if( rc!=SQLITE_OK ) return rc;
  }
  rc = sqlite3_step(pScan->pStmt);
  if( rc!=SQLITE_ROW ) return rc==SQLITE_DONE ? rc : sqlite3_reset(pScan->pStmt);
  pScan->chunkId = sqlite3_column_int64(pScan->pStmt, 0);
  pScan->aValid = (const unsigned char*)sqlite3_column_blob(pScan->pStmt, 1);
  pScan->aRowid = (const unsigned char*)sqlite3_column_blob(pScan->pStmt, 2);
  if( sqlite3_column_bytes(pScan->pStmt, 1)!=p->pDef->chunkSize/8
   || sqlite3_column_bytes(pScan->pStmt, 2)!=p->pDef->chunkSize*8 ){
    return vdbStoreCorrupt(p, "a chunk's validity or rowid blob has the wrong size");
  }
  rc = vdbChunkScanRead(pScan, pScan->chunkId);
  return rc==SQLITE_OK ? SQLITE_ROW : rc;
}

void vdbChunkScanClose(VdbChunkScan *pScan){
  sqlite3_finalize(pScan->pStmt);
  sqlite3_blob_close(pScan->pBlob);
  sqlite3_free(pScan->aVec);
  memset(pScan, 0, sizeof(*pScan));
}
