/*
** fuzz_import: the file readers vec_npy_each, vec_fvecs_each,
** vec_bvecs_each and vec_ivecs_each.
**
** The first input byte picks the reader; the rest is the file, bound as a
** BLOB. Every row is read; an error is expected for most inputs, but it
** must be the reader's own message (naming the function), never a crash,
** a leak or a read past the BLOB (ASan sees every byte: SQLite copies the
** bound BLOB into a buffer of exactly its size). A vector that comes back
** must be a float32 or int8 vector BLOB whose length is whole elements.
*/
#include "fuzz_util.h"

static const char *const azFn[] = { "vec_npy_each", "vec_fvecs_each", "vec_bvecs_each", "vec_ivecs_each" };

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  FuzzIn in = { aData, nData };
  unsigned iFn = fuzzByte(&in) % 4;
  sqlite3 *db = fuzzOpen();
  sqlite3_stmt *pStmt = 0;
  char zSql[96];
  int rc;
  snprintf(zSql, sizeof(zSql), "SELECT rowid, vector FROM %s(?1)", azFn[iFn]);
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)!=SQLITE_OK ){
    fprintf(stderr, "fuzz_import: cannot prepare %s: %s\n", zSql, sqlite3_errmsg(db));
    abort();
  }
  sqlite3_bind_blob(pStmt, 1, in.p, (int)in.n, SQLITE_TRANSIENT);
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    int n = sqlite3_column_bytes(pStmt, 1);
    const void *p = sqlite3_column_blob(pStmt, 1);
    FUZZ_ASSERT(p!=0 && n>0 && sqlite3_column_type(pStmt, 1)==SQLITE_BLOB,
                "%s returned a row without a vector", azFn[iFn]);
    FUZZ_ASSERT(iFn==0 || n%4==0, "%s returned %d bytes, not float32 elements", azFn[iFn], n);
  }
  if( rc!=SQLITE_DONE && rc!=SQLITE_NOMEM && rc!=SQLITE_TOOBIG ){
    const char *zErr = sqlite3_errmsg(db);
    FUZZ_ASSERT(strncmp(zErr, azFn[iFn], strlen(azFn[iFn]))==0,
                "%s failed with a message not its own: %s", azFn[iFn], zErr);
  }
  sqlite3_finalize(pStmt);
  sqlite3_close(db);
  return 0;
}
