/*
** Shadow-table storage; see vdb_store.h for the layout.
*/
#include <string.h>
#include "vdb_hnsw_store.h"
#include "vdb_store.h"

/* ---- set-up ---------------------------------------------------------------- */

int vdbStoreInit(VdbStore *p, sqlite3 *db, const char *zDb, const char *zName,
                 const VdbTableDef *pDef){
  int i;
  memset(p, 0, sizeof(*p));
  p->db = db;
  p->pDef = pDef;
  p->zDb = sqlite3_mprintf("%s", zDb);
  p->zName = sqlite3_mprintf("%s", zName);
  if( p->zDb==0 || p->zName==0 ) return SQLITE_NOMEM;
  for(i=0; i<pDef->nCol; i++){
    const VdbColumnDef *c = &pDef->aCol[i];
    if( c->eKind!=VDB_COL_VECTOR ) continue;
    p->aVecCol[p->nVec] = i;
    p->aVecBytes[p->nVec] = (int)vdbVectorByteSize(c->eElem, c->nDim);
    p->nVec++;
  }
  return SQLITE_OK;
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
  sqlite3_free(p->zDb);
  sqlite3_free(p->zName);
  memset(p, 0, sizeof(*p));
}

int vdbStorePrepare(VdbStore *p, char *zSql, sqlite3_stmt **ppStmt){
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, ppStmt, 0);
  sqlite3_free(zSql);
  return rc;
}

int vdbStoreCorrupt(VdbStore *p, char **pzErr, const char *zWhat){
  if( pzErr ){
    sqlite3_free(*pzErr);
    *pzErr = sqlite3_mprintf("vectordb table %s is corrupt: %s", p->zName, zWhat);
  }
  return SQLITE_CORRUPT_VTAB;
}

int vdbStoreIsShadowName(const char *zSuffix){
  static const char *azName[] = { "info", "rows", "chunks", "free" };
  size_t i;
  for(i=0; i<sizeof(azName)/sizeof(azName[0]); i++){
    if( sqlite3_stricmp(zSuffix, azName[i])==0 ) return 1;
  }
  /* vectors00 .. vectors15 and hnsw00 .. hnsw15 */
  for(i=0; i<2; i++){
    const char *zPrefix = i ? "hnsw" : "vectors";
    size_t n = strlen(zPrefix);
    if( sqlite3_strnicmp(zSuffix, zPrefix, (int)n)==0 && strlen(zSuffix)==n+2
     && zSuffix[n]>='0' && zSuffix[n]<='9' && zSuffix[n+1]>='0' && zSuffix[n+1]<='9' ){
      return (zSuffix[n]-'0')*10 + (zSuffix[n+1]-'0') < VDB_MAX_VECTOR_COLUMNS;
    }
  }
  return 0;
}

/* Run one statement built with sqlite3_mprintf (consumed). */
static int vdbExec(sqlite3 *db, char *zSql){
  int rc;
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_exec(db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  return rc;
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

/* The layout parameters recorded in T_info and checked on connect. */
static char *vdbLayoutSignature(VdbStore *p){
  sqlite3_str *s = sqlite3_str_new(0);
  int i;
  sqlite3_str_appendf(s, "chunk=%d;pk=%s", p->pDef->chunkSize,
                      p->pDef->zPkName ? (p->pDef->pkIsText ? "text" : "integer") : "none");
  for(i=0; i<p->pDef->nCol; i++){
    const VdbColumnDef *c = &p->pDef->aCol[i];
    if( c->eKind==VDB_COL_VECTOR ){
      sqlite3_str_appendf(s, ";v:%s[%d]", vdbElemTypeName(c->eElem), c->nDim);
      if( c->index.eKind==VDB_INDEX_HNSW ){
        sqlite3_str_appendf(s, ":hnsw(%d,%d,%s)", c->index.m, c->index.efConstruction,
                            vdbMetricName(c->eMetric));
      }
    }else{
      sqlite3_str_appendf(s, ";%c:%s", "?VPMA"[c->eKind], vdbValueTypeName(c->eValType));
    }
  }
  return sqlite3_str_finish(s);
}

/* Indexes on partition keys (a tenant's rows are selected before a KNN
** scan) and the HNSW graph tables with theirs. Index names cannot follow
** ALTER TABLE RENAME (an index cannot be dropped while the ALTER runs), so
** they carry a random token instead of the table name and stay unique
** whatever the table is later called. */
static int vdbCreateIndexes(VdbStore *p){
  unsigned char aRand[8];
  char zToken[17];
  int i, rc = SQLITE_OK;
  sqlite3_randomness(sizeof(aRand), aRand);
  for(i=0; i<8; i++) sqlite3_snprintf(3, zToken+2*i, "%02x", aRand[i]);
  for(i=0; rc==SQLITE_OK && i<p->pDef->nCol; i++){
    if( p->pDef->aCol[i].eKind!=VDB_COL_PARTITION ) continue;
    rc = vdbExec(p->db, sqlite3_mprintf(
        "CREATE INDEX \"%w\".\"vectordb_%s_c%d\" ON \"%w_rows\"(c%d)",
        p->zDb, zToken, i, p->zName, i));
  }
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    if( p->pDef->aCol[p->aVecCol[i]].index.eKind==VDB_INDEX_HNSW ){
      rc = vdbHnswStoreCreate(p, i, zToken);
    }
  }
  return rc;
}

int vdbStoreCreate(VdbStore *p, char **pzErr){
  sqlite3_str *s;
  char *zSig;
  int i, rc;
  rc = vdbExec(p->db, sqlite3_mprintf(
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
    rc = vdbExec(p->db, sqlite3_str_finish(s));
  }
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    rc = vdbExec(p->db, sqlite3_mprintf(
        "CREATE TABLE \"%w\".\"%w_vectors%02d\"(chunk_id INTEGER PRIMARY KEY, vectors BLOB NOT NULL)",
        p->zDb, p->zName, i));
  }
  if( rc==SQLITE_OK ) rc = vdbCreateIndexes(p);
  zSig = rc==SQLITE_OK ? vdbLayoutSignature(p) : 0;
  if( rc==SQLITE_OK && zSig==0 ) rc = SQLITE_NOMEM;
  if( rc==SQLITE_OK ){
    rc = vdbExec(p->db, sqlite3_mprintf(
        "INSERT INTO \"%w\".\"%w_info\"(key, value) VALUES ('format', %d), ('layout', %Q)",
        p->zDb, p->zName, VDB_FORMAT_VERSION, zSig));
  }
  sqlite3_free(zSig);
  if( rc!=SQLITE_OK && pzErr && *pzErr==0 ){
    *pzErr = sqlite3_mprintf("vectordb: cannot create the shadow tables of %s: %s",
                             p->zName, sqlite3_errmsg(p->db));
  }
  return rc;
}

int vdbStoreCheck(VdbStore *p, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  char *zSig = vdbLayoutSignature(p);
  int rc, version = -1, layoutOk = 0;
  if( zSig==0 ) return SQLITE_NOMEM;
  rc = vdbStorePrepare(p, sqlite3_mprintf("SELECT key, value FROM \"%w\".\"%w_info\"",
                                          p->zDb, p->zName), &pStmt);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zKey = (const char*)sqlite3_column_text(pStmt, 0);
    if( zKey && strcmp(zKey, "format")==0 ) version = sqlite3_column_int(pStmt, 1);
    if( zKey && strcmp(zKey, "layout")==0 ){
      const char *zVal = (const char*)sqlite3_column_text(pStmt, 1);
      layoutOk = zVal && strcmp(zVal, zSig)==0;
    }
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
  else sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK ){
    if( version!=VDB_FORMAT_VERSION ){
      sqlite3_free(*pzErr);
      *pzErr = sqlite3_mprintf("vectordb table %s has storage format %d; this build reads format %d",
                               p->zName, version, VDB_FORMAT_VERSION);
      rc = version<0 ? SQLITE_CORRUPT_VTAB : SQLITE_ERROR;
    }else if( !layoutOk ){
      rc = vdbStoreCorrupt(p, pzErr, "the declaration does not match the stored layout");
    }
  }else if( pzErr && *pzErr==0 ){
    *pzErr = sqlite3_mprintf("vectordb table %s: cannot read %s_info: %s",
                             p->zName, p->zName, sqlite3_errmsg(p->db));
  }
  sqlite3_free(zSig);
  return rc;
}

int vdbStoreDrop(VdbStore *p){
  int i, rc;
  vdbStoreFinalizeAll(p);
  rc = vdbExec(p->db, sqlite3_mprintf(
      "DROP TABLE IF EXISTS \"%w\".\"%w_info\"; DROP TABLE IF EXISTS \"%w\".\"%w_rows\";"
      "DROP TABLE IF EXISTS \"%w\".\"%w_chunks\"; DROP TABLE IF EXISTS \"%w\".\"%w_free\";",
      p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName));
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    rc = vdbExec(p->db, sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\".\"%w_vectors%02d\";"
                                        "DROP TABLE IF EXISTS \"%w\".\"%w_hnsw%02d\"",
                                        p->zDb, p->zName, i, p->zDb, p->zName, i));
  }
  return rc;
}

int vdbStoreRename(VdbStore *p, const char *zNew){
  static const char *azSuffix[] = { "info", "rows", "chunks", "free" };
  int i, rc = SQLITE_OK;
  char *zNewName;
  vdbStoreFinalizeAll(p);
  for(i=0; rc==SQLITE_OK && i<4; i++){
    rc = vdbExec(p->db, sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_%s\" RENAME TO \"%w_%s\"",
                                        p->zDb, p->zName, azSuffix[i], zNew, azSuffix[i]));
  }
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    rc = vdbExec(p->db, sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_vectors%02d\" RENAME TO \"%w_vectors%02d\"",
                                        p->zDb, p->zName, i, zNew, i));
    if( rc==SQLITE_OK && p->pDef->aCol[p->aVecCol[i]].index.eKind==VDB_INDEX_HNSW ){
      rc = vdbExec(p->db, sqlite3_mprintf("ALTER TABLE \"%w\".\"%w_hnsw%02d\" RENAME TO \"%w_hnsw%02d\"",
                                          p->zDb, p->zName, i, zNew, i));
    }
  }
  if( rc==SQLITE_OK ){
    zNewName = sqlite3_mprintf("%s", zNew);
    if( zNewName==0 ) return SQLITE_NOMEM;
    sqlite3_free(p->zName);
    p->zName = zNewName;
  }
  return rc;
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
    case VDB_STMT_ROW_SELECT:
      zSql = sqlite3_mprintf("SELECT * FROM \"%w\".\"%w_rows\" WHERE rowid=?1", zDb, zName);
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
    default:
      return SQLITE_INTERNAL;
  }
  {
    int rc = vdbStorePrepare(p, zSql, &p->aStmt[id]);
    *ppStmt = p->aStmt[id];
    return rc;
  }
}

/* Step a statement that returns no rows (or whose rows are ignored), then
** reset it so it holds no lock. */
static int vdbStepDone(sqlite3_stmt *pStmt){
  int rc = sqlite3_step(pStmt);
  int rc2 = sqlite3_reset(pStmt);
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ) return rc2;
  return rc2!=SQLITE_OK ? rc2 : rc;
}

/* ---- blob I/O ------------------------------------------------------------------- */

/* Open a shadow blob and check that it has exactly nExpect bytes. A
** missing row means the shadow tables disagree with each other. */
static int vdbBlobOpen(VdbStore *p, const char *zSuffix, const char *zColumn,
                       sqlite3_int64 iRow, int nExpect, int isWrite, sqlite3_blob **ppBlob){
  char zTable[256];
  int rc;
  sqlite3_snprintf(sizeof(zTable), zTable, "%s_%s", p->zName, zSuffix);
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
static int vdbBlobIO(VdbStore *p, const char *zSuffix, const char *zColumn,
                     sqlite3_int64 iRow, int nExpect, int iOffset, void *pBuf, int n, int isWrite){
  sqlite3_blob *pBlob = 0;
  int rc;
  if( iOffset<0 || iOffset+n>nExpect ) return SQLITE_CORRUPT_VTAB;
  rc = vdbBlobOpen(p, zSuffix, zColumn, iRow, nExpect, isWrite, &pBlob);
  if( rc==SQLITE_OK ){
    rc = isWrite ? sqlite3_blob_write(pBlob, pBuf, n, iOffset)
                 : sqlite3_blob_read(pBlob, pBuf, n, iOffset);
  }
  sqlite3_blob_close(pBlob);
  return rc;
}

static const char *vdbVecSuffix(int iVec, char *zBuf){
  sqlite3_snprintf(16, zBuf, "vectors%02d", iVec);
  return zBuf;
}

int vdbStoreReadVector(VdbStore *p, int iVec, const VdbSlot *pSlot, void *pBuf){
  char zSuffix[16];
  int n = p->aVecBytes[iVec];
  return vdbBlobIO(p, vdbVecSuffix(iVec, zSuffix), "vectors", pSlot->chunkId,
                   n * p->pDef->chunkSize, n * pSlot->offset, pBuf, n, 0);
}

int vdbStoreReadChunk(VdbStore *p, int iVec, sqlite3_int64 chunkId, void *pBuf){
  char zSuffix[16];
  int n = p->aVecBytes[iVec] * p->pDef->chunkSize;
  return vdbBlobIO(p, vdbVecSuffix(iVec, zSuffix), "vectors", chunkId, n, 0, pBuf, n, 0);
}

int vdbStoreWriteVector(VdbStore *p, int iVec, const VdbSlot *pSlot, const VdbVector *pVec){
  char zSuffix[16];
  int n = p->aVecBytes[iVec];
  return vdbBlobIO(p, vdbVecSuffix(iVec, zSuffix), "vectors", pSlot->chunkId,
                   n * p->pDef->chunkSize, n * pSlot->offset, (void*)pVec->pData, n, 1);
}

/* ---- lookups --------------------------------------------------------------------- */

int vdbStoreLocate(VdbStore *p, sqlite3_int64 rowid, VdbSlot *pSlot){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_ROW_LOCATE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, rowid);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    pSlot->chunkId = sqlite3_column_int64(pStmt, 0);
    pSlot->offset = sqlite3_column_int(pStmt, 1);
    rc = sqlite3_column_int64(pStmt, 1)<0 || sqlite3_column_int64(pStmt, 1)>=p->pDef->chunkSize
       ? SQLITE_CORRUPT_VTAB : SQLITE_OK;
  }
  {
    int rc2 = sqlite3_reset(pStmt);
    if( rc==SQLITE_DONE ) return rc2!=SQLITE_OK ? rc2 : SQLITE_DONE;
    return rc!=SQLITE_OK ? rc : rc2;
  }
}

int vdbStoreLocatePk(VdbStore *p, sqlite3_value *pPk, sqlite3_int64 *pRowid){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_ROW_LOCATE_PK, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_value(pStmt, 1, pPk);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    *pRowid = sqlite3_column_int64(pStmt, 0);
    rc = SQLITE_OK;
  }
  {
    int rc2 = sqlite3_reset(pStmt);
    if( rc==SQLITE_DONE ) return rc2!=SQLITE_OK ? rc2 : SQLITE_DONE;
    return rc!=SQLITE_OK ? rc : rc2;
  }
}

int vdbStoreMaxRowid(VdbStore *p, sqlite3_int64 *pRowid){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, VDB_STMT_MAX_ROWID, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  *pRowid = 0;
  if( sqlite3_step(pStmt)==SQLITE_ROW ) *pRowid = sqlite3_column_int64(pStmt, 0);
  return sqlite3_reset(pStmt);
}

/* ---- slot allocation ---------------------------------------------------------------- */

static int vdbFreeListSet(VdbStore *p, sqlite3_int64 chunkId, int hasRoom){
  sqlite3_stmt *pStmt;
  int rc = vdbStmt(p, hasRoom ? VDB_STMT_FREE_ADD : VDB_STMT_FREE_REMOVE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, chunkId);
  return vdbStepDone(pStmt);
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
  rc = vdbStepDone(pStmt);
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
    rc = vdbStepDone(p->aVecInsert[i]);
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
  rc = vdbStepDone(pStmt);
  for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
    if( p->aVecDelete[i]==0 ){
      rc = vdbStorePrepare(p, sqlite3_mprintf(
          "DELETE FROM \"%w\".\"%w_vectors%02d\" WHERE chunk_id=?1", p->zDb, p->zName, i),
          &p->aVecDelete[i]);
      if( rc!=SQLITE_OK ) break;
    }
    sqlite3_bind_int64(p->aVecDelete[i], 1, chunkId);
    rc = vdbStepDone(p->aVecDelete[i]);
  }
  if( rc==SQLITE_OK ) rc = vdbFreeListSet(p, chunkId, 0);
  return rc;
}

/* Claim a free slot: the lowest free slot of the lowest chunk with room.
** The validity bitmap is read and updated through one blob handle. */
static int vdbAllocSlot(VdbStore *p, VdbSlot *pSlot){
  unsigned char aValid[65536/8];
  int nValid = p->pDef->chunkSize/8;
  sqlite3_stmt *pStmt;
  sqlite3_blob *pBlob = 0;
  int rc = vdbStmt(p, VDB_STMT_FREE_FIRST, &pStmt);
  int i, used = 0, found = 0;
  if( rc!=SQLITE_OK ) return rc;
  if( sqlite3_step(pStmt)==SQLITE_ROW ){
    pSlot->chunkId = sqlite3_column_int64(pStmt, 0);
    found = 1;
  }
  rc = sqlite3_reset(pStmt);
  if( rc==SQLITE_OK && !found ) rc = vdbNewChunk(p, &pSlot->chunkId);
  if( rc==SQLITE_OK ) rc = vdbBlobOpen(p, "chunks", "validity", pSlot->chunkId, nValid, 1, &pBlob);
  if( rc==SQLITE_OK ) rc = sqlite3_blob_read(pBlob, aValid, nValid, 0);
  if( rc==SQLITE_OK ){
    for(i=0; i<nValid; i++) used += __builtin_popcount(aValid[i]);
    for(i=0; i<p->pDef->chunkSize; i++){
      if( (aValid[i/8] & (1u << (i%8)))==0 ) break;
    }
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
  return vdbBlobIO(p, "chunks", "rowids", pSlot->chunkId, p->pDef->chunkSize*8,
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
  return vdbStepDone(pStmt);
}

int vdbStoreIntegrity(VdbStore *p, char **pzErr){
  sqlite3_stmt *pStmt = 0;
  int rc, iVec, nValid = p->pDef->chunkSize/8;
  sqlite3_int64 nRows = 0, nBits = 0;
  /* Every row's slot is marked live and names the row back. */
  rc = vdbStorePrepare(p, sqlite3_mprintf(
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
     || off<0 || off>=p->pDef->chunkSize || (aValid[off/8] & (1u<<(off%8)))==0 ){
      *pzErr = sqlite3_mprintf("row %lld has no live slot in its chunk", rowid);
      rc = SQLITE_CORRUPT;
      break;
    }
    stored = vdbGetLe64(aRowid + 8*off);
    if( stored!=rowid ){
      *pzErr = sqlite3_mprintf("row %lld: its slot names row %lld", rowid, stored);
      rc = SQLITE_CORRUPT;
    }
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
  else sqlite3_finalize(pStmt);
  pStmt = 0;
  /* No live slot without a row. */
  if( rc==SQLITE_OK ){
    rc = vdbStorePrepare(p, sqlite3_mprintf("SELECT validity FROM \"%w\".\"%w_chunks\"",
                                            p->zDb, p->zName), &pStmt);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      const unsigned char *a = (const unsigned char*)sqlite3_column_blob(pStmt, 0);
      int i, n = sqlite3_column_bytes(pStmt, 0);
      for(i=0; a && i<n; i++) nBits += __builtin_popcount(a[i]);
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    else sqlite3_finalize(pStmt);
    if( rc==SQLITE_OK && nBits!=nRows ){
      *pzErr = sqlite3_mprintf("%lld live slots for %lld rows", nBits, nRows);
      rc = SQLITE_CORRUPT;
    }
  }
  /* The free list names existing chunks that have a free slot: an insert
  ** takes its slot from the first one. */
  if( rc==SQLITE_OK ){
    rc = vdbStorePrepare(p, sqlite3_mprintf(
        "SELECT f.chunk_id, c.validity FROM \"%w\".\"%w_free\" f"
        " LEFT JOIN \"%w\".\"%w_chunks\" c ON c.chunk_id=f.chunk_id",
        p->zDb, p->zName, p->zDb, p->zName), &pStmt);
    while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      const unsigned char *a = (const unsigned char*)sqlite3_column_blob(pStmt, 1);
      int i, nUsed = 0;
      if( a && sqlite3_column_bytes(pStmt, 1)==nValid ){
        for(i=0; i<nValid; i++) nUsed += __builtin_popcount(a[i]);
      }
      if( a==0 || sqlite3_column_bytes(pStmt, 1)!=nValid || nUsed>=p->pDef->chunkSize ){
        *pzErr = sqlite3_mprintf("the free list names chunk %lld, which has no free slot",
                                 sqlite3_column_int64(pStmt, 0));
        rc = SQLITE_CORRUPT;
      }
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    else sqlite3_finalize(pStmt);
    pStmt = 0;
  }
  /* Every chunk has each vector column's blob, of the chunk's size. */
  for(iVec=0; rc==SQLITE_OK && iVec<p->nVec; iVec++){
    rc = vdbStorePrepare(p, sqlite3_mprintf(
        "SELECT c.chunk_id FROM \"%w\".\"%w_chunks\" c LEFT JOIN \"%w\".\"%w_vectors%02d\" v"
        " ON v.chunk_id=c.chunk_id WHERE v.chunk_id IS NULL OR typeof(v.vectors)!='blob'"
        " OR length(v.vectors)!=%lld LIMIT 1",
        p->zDb, p->zName, p->zDb, p->zName, iVec,
        (sqlite3_int64)p->aVecBytes[iVec]*p->pDef->chunkSize), &pStmt);
    if( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
      *pzErr = sqlite3_mprintf("chunk %lld of %s_vectors%02d is missing or has the wrong size",
                               sqlite3_column_int64(pStmt, 0), p->zName, iVec);
      rc = SQLITE_CORRUPT;
    }
    if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
    else sqlite3_finalize(pStmt);
    pStmt = 0;
  }
  return rc;
}

int vdbStoreDelete(VdbStore *p, sqlite3_int64 rowid){
  unsigned char aValid[65536/8];
  unsigned char aZero[8192*4];
  int nValid = p->pDef->chunkSize/8;
  VdbSlot slot;
  sqlite3_stmt *pStmt;
  sqlite3_blob *pBlob = 0;
  int rc, used = 0, i;
  rc = vdbStoreLocate(p, rowid, &slot);
  if( rc==SQLITE_DONE ) return SQLITE_OK;
  if( rc==SQLITE_OK ) rc = vdbBlobOpen(p, "chunks", "validity", slot.chunkId, nValid, 1, &pBlob);
  if( rc==SQLITE_OK ) rc = sqlite3_blob_read(pBlob, aValid, nValid, 0);
  if( rc==SQLITE_OK ){
    for(i=0; i<nValid; i++) used += __builtin_popcount(aValid[i]);
    if( (aValid[slot.offset/8] & (1u << (slot.offset%8)))==0 ) rc = SQLITE_CORRUPT_VTAB;
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
    memset(aZero, 0, sizeof(aZero));
    for(i=0; rc==SQLITE_OK && i<p->nVec; i++){
      VdbVector zero;
      zero.pData = aZero;
      rc = vdbStoreWriteVector(p, i, &slot, &zero);
    }
    if( rc==SQLITE_OK && used==p->pDef->chunkSize ) rc = vdbFreeListSet(p, slot.chunkId, 1);
  }
  if( rc==SQLITE_OK ) rc = vdbStmt(p, VDB_STMT_ROW_DELETE, &pStmt);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_int64(pStmt, 1, rowid);
  return vdbStepDone(pStmt);
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
  return vdbStepDone(pStmt);
}

int vdbStoreUpdateColumns(VdbStore *p, sqlite3_int64 rowid, sqlite3_value **apVal,
                          const unsigned char *aChanged){
  sqlite3_str *s = sqlite3_str_new(0);
  sqlite3_stmt *pStmt = 0;
  int i, n = 0, rc;
  sqlite3_str_appendf(s, "UPDATE \"%w\".\"%w_rows\" SET ", p->zDb, p->zName);
  for(i=0; i<p->pDef->nCol; i++){
    if( p->pDef->aCol[i].eKind==VDB_COL_VECTOR || !aChanged[i] ) continue;
    sqlite3_str_appendf(s, "%sc%d=?%d", n ? ", " : "", i, i+2);
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
  for(i=0; i<p->pDef->nCol; i++){
    if( p->pDef->aCol[i].eKind!=VDB_COL_VECTOR && aChanged[i] ) sqlite3_bind_value(pStmt, i+2, apVal[i]);
  }
  sqlite3_step(pStmt);
  return sqlite3_finalize(pStmt);
}
