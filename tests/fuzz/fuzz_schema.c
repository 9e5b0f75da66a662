/*
** fuzz_schema: table declarations, table options and commands.
**
** The input is split at NUL bytes. The first part is the text between the
** parentheses of CREATE VIRTUAL TABLE t USING vectordb(...); it also goes,
** split at commas, straight to vdbSchemaParse(), which must either accept
** it or explain why. The remaining parts are commands for
** INSERT INTO t(t) VALUES (?).
**
** When the table is created, the target learns its columns as created
** (names from table_info, kinds and types from the layout in t_info),
** writes a few valid rows of those types, runs a KNN query on every vector
** column (on the empty table too), updates and deletes a row, runs the
** commands, renames and drops the table. Only valid operations and
** commands that may fail cleanly are issued, so vectordb_check() must say
** 'ok' throughout, and DROP TABLE must leave nothing behind.
*/
#include "fuzz_util.h"
#include "vdb_schema.h"

#define MAX_ARGS 64

/* The declaration straight into the parser, split at every comma (SQLite
** splits only at top-level ones; the parser must cope with any text). */
static void fuzzParseDirect(const char *zDecl){
  char *zCopy = strdup(zDecl), *z;
  const char *azArg[MAX_ARGS];
  int nArg = 0;
  VdbTableDef *pDef = 0;
  char *zErr = 0;
  int rc;
  if( zCopy==0 ) return;
  azArg[nArg++] = zCopy;
  for(z=zCopy; *z && nArg<MAX_ARGS; z++){
    if( *z==',' ){ *z = 0; azArg[nArg++] = z+1; }
  }
  rc = vdbSchemaParse(nArg, azArg, &pDef, &zErr);
  if( rc==SQLITE_OK ){
    FUZZ_ASSERT(pDef!=0 && zErr==0, "accepted with an error message");
    FUZZ_ASSERT(vdbSchemaCount(pDef, VDB_COL_VECTOR)>=1, "accepted without a vector column");
    FUZZ_ASSERT(pDef->chunkSize>=8 && pDef->chunkSize%8==0, "chunk size %d", pDef->chunkSize);
  }else{
    FUZZ_ASSERT(pDef==0, "rejected but returned a definition");
    FUZZ_ASSERT(zErr!=0 || rc==SQLITE_NOMEM, "rejected without a message");
  }
  vdbSchemaFree(pDef);
  sqlite3_free(zErr);
  free(zCopy);
}

/* The table's columns as created: names from table_info (the primary key,
** if declared, then the user's columns; hidden ones are not listed), kinds
** and types from the layout signature in t_info, e.g.
** "chunk=8;pk=none;v:float32[4]:hnsw(8,200,l2);M:text;A:any".
** NULL if anything does not add up. */
static VdbTableDef *tableColumns(sqlite3 *db){
  sqlite3_stmt *pStmt = 0;
  VdbTableDef *pDef = (VdbTableDef*)sqlite3_malloc(sizeof(*pDef));
  char *zLayout = 0, *z, *zNext;
  int nName = 0, iName = 0, ok = 1;
  char *azName[80];
  if( pDef==0 ) abort();
  memset(pDef, 0, sizeof(*pDef));
  if( sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('t')", -1, &pStmt, 0) ) abort();
  while( sqlite3_step(pStmt)==SQLITE_ROW && nName<80 ){
    azName[nName++] = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
  }
  sqlite3_finalize(pStmt);
  if( sqlite3_prepare_v2(db, "SELECT value FROM t_info WHERE key='layout'", -1, &pStmt, 0) ) abort();
  if( sqlite3_step(pStmt)==SQLITE_ROW ) zLayout = strdup((const char*)sqlite3_column_text(pStmt, 0));
  sqlite3_finalize(pStmt);
  FUZZ_ASSERT(zLayout!=0, "no layout in t_info");
  pDef->aCol = (VdbColumnDef*)sqlite3_malloc(sizeof(VdbColumnDef)*80);
  memset(pDef->aCol, 0, sizeof(VdbColumnDef)*80);
  for(z=zLayout; ok && z; z=zNext){
    VdbColumnDef *c = &pDef->aCol[pDef->nCol];
    char zType[16];
    int n;
    zNext = strchr(z, ';');
    if( zNext ) *zNext++ = 0;
    if( strncmp(z, "chunk=", 6)==0 ){
      pDef->chunkSize = atoi(z+6);
    }else if( strncmp(z, "pk=", 3)==0 ){
      if( strcmp(z+3, "none")!=0 ){
        pDef->pkIsText = strcmp(z+3, "text")==0;
        if( iName<nName ) pDef->zPkName = azName[iName++];
        else ok = 0;
      }
    }else if( iName>=nName || pDef->nCol>=80 ){
      ok = 0;
    }else if( z[0]=='v' && sscanf(z, "v:%15[a-z0-9][%d]", zType, &n)==2 ){
      c->eKind = VDB_COL_VECTOR;
      c->nDim = n;
      c->eElem = strcmp(zType, "float32")==0 ? VDB_ELEM_F32
               : strcmp(zType, "int8")==0 ? VDB_ELEM_INT8 : VDB_ELEM_BIT;
      c->zName = azName[iName++];
      pDef->nCol++;
    }else if( strchr("PMA", z[0]) && z[1]==':' ){
      static const char *azVal[] = { "", "integer", "float", "text", "boolean", "blob", "any" };
      int t;
      c->eKind = z[0]=='P' ? VDB_COL_PARTITION : z[0]=='M' ? VDB_COL_METADATA : VDB_COL_AUX;
      for(t=1; t<=6; t++) if( strcmp(z+2, azVal[t])==0 ) c->eValType = (VdbValueType)t;
      c->zName = azName[iName++];
      pDef->nCol++;
      ok = c->eValType!=0;
    }else{
      ok = 0;
    }
  }
  free(zLayout);
  FUZZ_ASSERT(ok && iName==nName, "table_info and the layout disagree");
  while( iName<nName ) sqlite3_free(azName[iName++]);
  return pDef;
}

static void expectCheckOk(sqlite3 *db, const char *zTable, const char *zWhen){
  sqlite3_stmt *pStmt = 0;
  char *zSql = sqlite3_mprintf("SELECT vectordb_check(%Q)", zTable);
  int rc;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) ) abort();
  sqlite3_free(zSql);
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    const char *z = (const char*)sqlite3_column_text(pStmt, 0);
    FUZZ_ASSERT(z && strcmp(z, "ok")==0, "vectordb_check %s: %s", zWhen, z ? z : "NULL");
  }else{
    /* Only running out of memory or a too-big value may stop the check. */
    FUZZ_ASSERT(rc==SQLITE_NOMEM || rc==SQLITE_TOOBIG, "vectordb_check %s failed: %s",
                zWhen, sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
}

/* Bind a value of column c's type for row iRow (1-based). Vectors are
** never all zero, so cosine columns accept them. */
static void bindColumn(sqlite3_stmt *pStmt, int iParam, const VdbColumnDef *c, int iRow){
  int i;
  if( c->eKind==VDB_COL_VECTOR ){
    size_t nByte = vdbVectorByteSize(c->eElem, c->nDim);
    unsigned char *a = (unsigned char*)sqlite3_malloc64(nByte);
    if( a==0 ) abort();
    if( c->eElem==VDB_ELEM_F32 ){
      for(i=0; i<c->nDim; i++){
        float f = (float)((iRow*7 + i) % 13 - 6) + (i==0 ? (float)iRow : 0.0f);
        memcpy(a + 4*i, &f, 4);
      }
    }else{
      for(i=0; i<(int)nByte; i++) a[i] = (unsigned char)((iRow*37 + i*11) | (i==0));
    }
    sqlite3_bind_blob(pStmt, iParam, a, (int)nByte, sqlite3_free);
    return;
  }
  switch( c->eValType ){
    case VDB_VAL_INTEGER: sqlite3_bind_int(pStmt, iParam, iRow*10); break;
    case VDB_VAL_BOOLEAN: sqlite3_bind_int(pStmt, iParam, iRow&1); break;
    case VDB_VAL_FLOAT:   sqlite3_bind_double(pStmt, iParam, iRow*0.5); break;
    case VDB_VAL_TEXT: {
      char z[16];
      snprintf(z, sizeof(z), "v%d", iRow);
      sqlite3_bind_text(pStmt, iParam, z, -1, SQLITE_TRANSIENT);
      break;
    }
    case VDB_VAL_BLOB: sqlite3_bind_blob(pStmt, iParam, "\x01\x02", 2, SQLITE_STATIC); break;
    default:
      if( iRow%2 ) sqlite3_bind_int(pStmt, iParam, iRow);
      else sqlite3_bind_text(pStmt, iParam, "any", -1, SQLITE_STATIC);
      break;
  }
}

/* INSERT (or UPDATE ... WHERE rowid=iRow) every column of row iRow. */
static int writeRow(sqlite3 *db, const VdbTableDef *pDef, int iRow, int isUpdate){
  sqlite3_str *s = sqlite3_str_new(0);
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int i, rc, iParam = 1;
  if( isUpdate ){
    sqlite3_str_appendall(s, "UPDATE t SET ");
    for(i=0; i<pDef->nCol; i++){
      sqlite3_str_appendf(s, "%s\"%w\"=?%d", i ? ", " : "", pDef->aCol[i].zName, i+1);
    }
    sqlite3_str_appendf(s, " WHERE rowid=%d", iRow);
  }else{
    sqlite3_str_appendall(s, "INSERT INTO t(rowid");
    if( pDef->pkIsText ) sqlite3_str_appendf(s, ", \"%w\"", pDef->zPkName);
    for(i=0; i<pDef->nCol; i++) sqlite3_str_appendf(s, ", \"%w\"", pDef->aCol[i].zName);
    sqlite3_str_appendf(s, ") VALUES (%d", iRow);
    if( pDef->pkIsText ) sqlite3_str_appendf(s, ", 'key%d'", iRow);
    for(i=0; i<pDef->nCol; i++) sqlite3_str_appendf(s, ", ?%d", i+1);
    sqlite3_str_appendall(s, ")");
  }
  zSql = sqlite3_str_finish(s);
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ) return rc;
  for(i=0; i<pDef->nCol; i++) bindColumn(pStmt, iParam++, &pDef->aCol[i], iRow + 3*isUpdate);
  rc = fuzzDrain(pStmt);
  sqlite3_finalize(pStmt);
  return rc==SQLITE_DONE ? SQLITE_OK : rc;
}

/* A KNN query on every vector column must succeed; with nExpect>0 rows
** stored it must find some. */
static void knnEveryColumn(sqlite3 *db, const VdbTableDef *pDef, int nExpect){
  int i;
  for(i=0; i<pDef->nCol; i++){
    sqlite3_stmt *pStmt = 0;
    char *zSql;
    if( pDef->aCol[i].eKind!=VDB_COL_VECTOR ) continue;
    zSql = sqlite3_mprintf("SELECT rowid, distance FROM t WHERE \"%w\" MATCH ?1 AND k = 3",
                           pDef->aCol[i].zName);
    if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK ){
      int rc, n = 0;
      bindColumn(pStmt, 1, &pDef->aCol[i], 1);
      while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ) n++;
      FUZZ_ASSERT(rc==SQLITE_DONE, "KNN on %s failed: %s", pDef->aCol[i].zName, sqlite3_errmsg(db));
      FUZZ_ASSERT(nExpect==0 ? n==0 : n>=1, "KNN on %s found %d rows in a table of %d",
                  pDef->aCol[i].zName, n, nExpect);
    }
    sqlite3_finalize(pStmt);
    sqlite3_free(zSql);
  }
}

static void runCommand(sqlite3 *db, const char *zCmd, int nCmd){
  sqlite3_stmt *pStmt = 0;
  if( sqlite3_prepare_v2(db, "INSERT INTO t(t) VALUES (?1)", -1, &pStmt, 0)!=SQLITE_OK ) return;
  sqlite3_bind_text(pStmt, 1, zCmd, nCmd, SQLITE_TRANSIENT);
  sqlite3_step(pStmt);
  sqlite3_finalize(pStmt);
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  sqlite3 *db;
  sqlite3_stmt *pStmt = 0;
  VdbTableDef *pDef;
  char *zDecl, *zSql;
  size_t nDecl = 0;
  int rc, i, nRowOk = 0;

  while( nDecl<nData && aData[nDecl] ) nDecl++;
  zDecl = (char*)malloc(nDecl + 1);
  if( zDecl==0 ) return 0;
  memcpy(zDecl, aData, nDecl);
  zDecl[nDecl] = 0;
  fuzzParseDirect(zDecl);

  db = fuzzOpen();
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE t USING vectordb(%s)", zDecl);
  free(zDecl);
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK && pStmt ) rc = sqlite3_step(pStmt);
  sqlite3_finalize(pStmt);
  pDef = rc==SQLITE_DONE ? tableColumns(db) : 0;
  if( pDef ){
    expectCheckOk(db, "t", "after CREATE");
    knnEveryColumn(db, pDef, 0);
    for(i=1; i<=3; i++) nRowOk += writeRow(db, pDef, i, 0)==SQLITE_OK;
    expectCheckOk(db, "t", "after INSERT");
    if( nRowOk==3 ) knnEveryColumn(db, pDef, 3);
    writeRow(db, pDef, 1, 1);
    fuzzExec(db, "DELETE FROM t WHERE rowid=2");
    expectCheckOk(db, "t", "after UPDATE and DELETE");
    /* The commands: the parts after the declaration. */
    for(i=(int)nDecl; i<(int)nData; ){
      int nCmd = 0;
      i++;
      while( i+nCmd<(int)nData && aData[i+nCmd] ) nCmd++;
      runCommand(db, (const char*)aData + i, nCmd);
      i += nCmd;
    }
    expectCheckOk(db, "t", "after the commands");
    if( nRowOk==3 ) knnEveryColumn(db, pDef, 2);
    writeRow(db, pDef, 4, 0);
    if( fuzzExec(db, "ALTER TABLE t RENAME TO u")==SQLITE_OK ){
      expectCheckOk(db, "u", "after RENAME");
      rc = fuzzExec(db, "DROP TABLE u");
    }else{
      rc = fuzzExec(db, "DROP TABLE t");
    }
    FUZZ_ASSERT(rc==SQLITE_OK, "DROP TABLE failed: %s", sqlite3_errmsg(db));
    if( sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &pStmt, 0) ) abort();
    sqlite3_step(pStmt);
    FUZZ_ASSERT(sqlite3_column_int(pStmt, 0)==0, "DROP TABLE left %d schema objects",
                sqlite3_column_int(pStmt, 0));
    sqlite3_finalize(pStmt);
    vdbSchemaFree(pDef);
  }
  sqlite3_close(db);
  return 0;
}
