/*
** Runs for every connection SQLite opens in the node process, including
** the ones dqlite opens to serve clients: installs the authorizer, then
** registers vectordb (linked statically from libvectordb.a).
**
** The authorizer exists because dqlite 1.11 aborts the whole process when a
** client changes some connection settings (journal_mode and page_size free
** an invalid pointer; locking_mode and the rest of the list below change
** what its VFS assumes), and because ATTACHed databases are not replicated.
** It is an allow-list: a pragma not named here is refused, so a pragma that
** a newer SQLite adds cannot slip through.
*/
#include <string.h>
#include <strings.h>
#include <sqlite3.h>
#include "vectordb.h"
#include "ext.h"

/* Pragmas a client may run, with or without an argument: they read the
** schema or the database, or (user_version, application_id) write a
** header field as an ordinary replicated write would. */
static const char *const azFree[] = {
  "application_id", "collation_list", "compile_options", "data_version",
  "database_list", "foreign_key_check", "foreign_key_list", "freelist_count",
  "function_list", "index_info", "index_list", "index_xinfo",
  "integrity_check", "module_list", "page_count", "pragma_list",
  "quick_check", "schema_version", "table_info", "table_list",
  "table_xinfo", "user_version", 0
};

/* Settings dqlite itself makes on each connection it opens: read them,
** or set them to exactly the value dqlite uses (a no-op). */
static const struct { const char *zName; const char *zValue; } aFixed[] = {
  { "page_size", "4096" },
  { "synchronous", "OFF" },
  { "journal_mode", "WAL" },
  { "wal_autocheckpoint", "0" },
  { "foreign_keys", "1" },
};

static int vdbnodePragmaOk(const char *zName, const char *zArg){
  size_t i;
  if( zName==0 ) return 0;
  for(i=0; azFree[i]; i++){
    if( sqlite3_stricmp(zName, azFree[i])==0 ){
      /* schema_version written by hand corrupts the schema cache. */
      if( zArg && sqlite3_stricmp(zName, "schema_version")==0 ) return 0;
      return 1;
    }
  }
  for(i=0; i<sizeof(aFixed)/sizeof(aFixed[0]); i++){
    if( sqlite3_stricmp(zName, aFixed[i].zName)==0 ){
      return zArg==0 || sqlite3_stricmp(zArg, aFixed[i].zValue)==0;
    }
  }
  return 0;
}

static int vdbnodeAuth(void *pArg, int op, const char *z3, const char *z4,
                       const char *zDb, const char *zTrigger){
  (void)pArg; (void)zDb; (void)zTrigger;
  switch( op ){
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return SQLITE_DENY;
    case SQLITE_PRAGMA:
      return vdbnodePragmaOk(z3, z4) ? SQLITE_OK : SQLITE_DENY;
    case SQLITE_FUNCTION:
      if( z4 && sqlite3_stricmp(z4, "load_extension")==0 ) return SQLITE_DENY;
      return SQLITE_OK;
    default:
      return SQLITE_OK;
  }
}

static int vdbnodeInit(sqlite3 *db, char **pzErr,
                       const struct sqlite3_api_routines *pApi){
  int rc;
  /* A transaction larger than the page cache spills pages into the WAL
  ** before it commits, and dqlite 1.11's in-memory WAL then fails reads of
  ** them with SQLITE_IOERR_SHORT_READ (seen with 100-row inserts into an
  ** HNSW table of 128-d vectors). Without spilling, dirty pages stay in
  ** memory until COMMIT, which the bulk size bound keeps small. */
  rc = sqlite3_exec(db, "PRAGMA cache_spill=OFF", 0, 0, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_set_authorizer(db, vdbnodeAuth, 0);
  if( rc==SQLITE_OK ){
    /* Extension loading stays off for SQL (load_extension()) and C alike. */
    rc = sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, (int*)0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int*)0);
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_vectordb_init(db, pzErr, pApi);
  }
  return rc;
}

int vdbnodeRegister(void){
  return sqlite3_auto_extension((void(*)(void))vdbnodeInit);
}

/* Skips white space, semicolons and comments from z; returns the rest. */
static const char *vdbnodeSkipBlank(const char *z){
  for(;;){
    if( *z==' ' || *z=='\t' || *z=='\n' || *z=='\r' || *z=='\f' || *z==';' ){
      z++;
    }else if( z[0]=='-' && z[1]=='-' ){
      while( *z && *z!='\n' ) z++;
    }else if( z[0]=='/' && z[1]=='*' ){
      const char *e = strstr(z+2, "*/");
      if( e==0 ) return z + strlen(z);
      z = e+2;
    }else{
      return z;
    }
  }
}

/*
** Counts the statements of z, stopping at 2: the HTTP layer classifies a
** single statement and refuses to let a read-only token run more than one
** (dqlite's query request would silently ignore the rest). Statement ends
** are found with sqlite3_complete(), which knows SQL's quoting rules.
** Each try rescans the text, so after 64 semicolons that do not end the
** first statement (all inside literals or a trigger body) the answer is 2:
** a request can not make this quadratic.
*/
int vdbnodeStatementCount(const char *z){
  const char *p;
  int nTry = 0;
  z = vdbnodeSkipBlank(z);
  if( *z==0 ) return 0;
  for(p=z; *p; p++){
    if( *p==';' ){
      if( ++nTry>64 ) return 2;
      char *zHead = sqlite3_mprintf("%.*s", (int)(p - z + 1), z);
      int done;
      if( zHead==0 ) return -1;
      done = sqlite3_complete(zHead);
      sqlite3_free(zHead);
      if( done ){
        return *vdbnodeSkipBlank(p+1) ? 2 : 1;
      }
    }
  }
  return 1;
}
