/*
** Benchmark driver for SQLite extensions: vectordb and sqlite-vec's vec0
** run through the same C code, the way a C application would use them
** (prepared statements, bound BLOBs), so neither pays Python's per-query
** overhead.
**
**   sqlite_run build  ext=EXT db=DB base=F dim=D setup=SQL
**   sqlite_run search ext=EXT db=DB queries=F truth=F dim=D sql=SQL
**                     settings=S,S.. [nq=N k=10 truthk=100 repeats=3
**                     threads=2 conn_setup=SQL]
**   sqlite_run serve  ext=EXT db=DB queries=F truth=F dim=D sql=SQL
**                     [cold_setting=64 nq=N k=10 truthk=100 threads=2
**                     conn_setup=SQL]
**
** build: creates DB afresh, runs `setup` (CREATE VIRTUAL TABLE t ...), then
** inserts every base vector as rowid i+1 into t(rowid, e) in one
** transaction; prints {"build_s", "rows", "index_bytes"}.
** search: `sql` is a query with one %d (the setting, e.g. ef_search) and one
** parameter ?1 (the query vector as a float32 BLOB) returning rowids. First
** prints {"cold_s"}: open the database, load the extension and answer the
** first query, nothing cached in the process. Then one line per setting
** (see driver.h).
** serve: the same {"cold_s"} (its query at cold_setting), then answers
** commands on stdin (benchServe in driver.h) until the end of input.
*/
#include <sqlite3.h>

#include "driver.h"

typedef struct SqliteSys {
  const char *zExt, *zDb, *zSql, *zConnSetup;
  int dim;
} SqliteSys;

typedef struct SqliteState {
  sqlite3 *db;
  sqlite3_stmt *pStmt;
  int dim;
} SqliteState;

static sqlite3 *sqliteOpen(const char *zDb, const char *zExt, int flags){
  sqlite3 *db = NULL;
  char *zErr = NULL;
  if( sqlite3_open_v2(zDb, &db, flags, NULL)!=SQLITE_OK ){
    fprintf(stderr, "%s: %s\n", zDb, sqlite3_errmsg(db));
    exit(1);
  }
  sqlite3_enable_load_extension(db, 1);
  if( sqlite3_load_extension(db, zExt, NULL, &zErr)!=SQLITE_OK ){
    fprintf(stderr, "%s: %s\n", zExt, zErr);
    exit(1);
  }
  return db;
}

static void sqliteExec(sqlite3 *db, const char *zSql){
  char *zErr = NULL;
  if( zSql && zSql[0] && sqlite3_exec(db, zSql, NULL, NULL, &zErr)!=SQLITE_OK ){
    fprintf(stderr, "%s\n  in: %s\n", zErr, zSql);
    exit(1);
  }
}

static int sqliteBuild(int argc, char **argv){
  const char *zDb = benchArg(argc, argv, "db", NULL);
  int dim = (int)benchArgInt(argc, argv, "dim", NULL);
  size_t nByte;
  const float *aBase = (const float*)benchReadFile(benchArg(argc, argv, "base", NULL), &nByte);
  long nRow = (long)(nByte / (sizeof(float)*(size_t)dim));
  sqlite3 *db;
  sqlite3_stmt *pIns = NULL;
  double t0;
  remove(zDb);
  db = sqliteOpen(zDb, benchArg(argc, argv, "ext", NULL),
                  SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE);
  sqliteExec(db, benchArg(argc, argv, "setup", NULL));
  t0 = benchNow();
  sqliteExec(db, "BEGIN");
  if( sqlite3_prepare_v2(db, "INSERT INTO t(rowid, e) VALUES (?1, ?2)", -1, &pIns, NULL) ){
    fprintf(stderr, "%s\n", sqlite3_errmsg(db));
    return 1;
  }
  for(long i=0; i<nRow; i++){
    sqlite3_bind_int64(pIns, 1, i+1);
    sqlite3_bind_blob(pIns, 2, aBase + (size_t)i*dim, (int)(sizeof(float)*(size_t)dim), SQLITE_STATIC);
    if( sqlite3_step(pIns)!=SQLITE_DONE ){
      fprintf(stderr, "insert %ld: %s\n", i, sqlite3_errmsg(db));
      return 1;
    }
    sqlite3_reset(pIns);
  }
  sqlite3_finalize(pIns);
  sqliteExec(db, "COMMIT");
  {
    double build = benchNow() - t0;
    sqlite3_close(db);
    printf("{\"build_s\": %.6f, \"rows\": %ld, \"index_bytes\": %lld}\n",
           build, nRow, benchFileSize(zDb));
  }
  return 0;
}

static void *sqliteStateOpen(void *pSys, int iThread){
  SqliteSys *p = (SqliteSys*)pSys;
  SqliteState *s = (SqliteState*)calloc(1, sizeof(*s));
  (void)iThread;
  s->db = sqliteOpen(p->zDb, p->zExt, SQLITE_OPEN_READONLY);
  sqliteExec(s->db, p->zConnSetup);
  s->dim = p->dim;
  return s;
}

static int sqliteSetting(void *pSys, void *pState, int setting){
  SqliteSys *p = (SqliteSys*)pSys;
  SqliteState *s = (SqliteState*)pState;
  char zSql[1024];
  snprintf(zSql, sizeof(zSql), p->zSql, setting);
  sqlite3_finalize(s->pStmt);
  s->pStmt = NULL;
  if( sqlite3_prepare_v2(s->db, zSql, -1, &s->pStmt, NULL)!=SQLITE_OK ){
    fprintf(stderr, "%s\n  in: %s\n", sqlite3_errmsg(s->db), zSql);
    return 1;
  }
  return 0;
}

static int sqliteSearch(void *pState, const float *q, int k, int64_t *aId){
  SqliteState *s = (SqliteState*)pState;
  int n = 0, rc;
  (void)k;
  sqlite3_bind_blob(s->pStmt, 1, q, (int)(sizeof(float)*(size_t)s->dim), SQLITE_STATIC);
  while( (rc = sqlite3_step(s->pStmt))==SQLITE_ROW ){
    if( n<1024 ) aId[n++] = sqlite3_column_int64(s->pStmt, 0) - 1;
  }
  sqlite3_reset(s->pStmt);
  if( rc!=SQLITE_DONE ){
    fprintf(stderr, "query: %s\n", sqlite3_errmsg(s->db));
    return -1;
  }
  return n;
}

static void sqliteStateClose(void *pState){
  SqliteState *s = (SqliteState*)pState;
  sqlite3_finalize(s->pStmt);
  sqlite3_close(s->db);
  free(s);
}

/* Modes search (bServe==0) and serve: everything but the timed loop is shared. */
static int sqliteSearchMain(int argc, char **argv, int bServe){
  SqliteSys sys;
  BenchQueries q;
  BenchSystem bs = { &sys, sqliteStateOpen, sqliteSetting, sqliteSearch, sqliteStateClose };
  int aSetting[64];
  int nSetting = 0;
  int dim = (int)benchArgInt(argc, argv, "dim", NULL);
  int nThread = (int)benchArgInt(argc, argv, "threads", "2");
  if( bServe ){
    aSetting[0] = (int)benchArgInt(argc, argv, "cold_setting", "64");
  }else{
    nSetting = benchIntList(benchArg(argc, argv, "settings", NULL), aSetting, 64);
  }
  sys.zExt = benchArg(argc, argv, "ext", NULL);
  sys.zDb = benchArg(argc, argv, "db", NULL);
  sys.zSql = benchArg(argc, argv, "sql", NULL);
  sys.zConnSetup = benchArg(argc, argv, "conn_setup", "");
  sys.dim = dim;
  benchLoadQueries(argc, argv, &q, dim);
  {
    /* Cold start: a new connection answers its first query. */
    int64_t aId[1024];
    double t0 = benchNow();
    SqliteState *s = (SqliteState*)sqliteStateOpen(&sys, 0);
    if( sqliteSetting(&sys, s, aSetting[0]) || sqliteSearch(s, q.aQuery, q.k, aId)<0 ) return 1;
    printf("{\"cold_s\": %.4f}\n", benchNow() - t0);
    sqliteStateClose(s);
  }
  if( bServe ) return benchServe(&bs, &q, nThread);
  return benchSearchAll(&bs, &q, aSetting, nSetting,
                        (int)benchArgInt(argc, argv, "repeats", "3"), nThread);
}

int main(int argc, char **argv){
  if( argc>=2 && strcmp(argv[1], "build")==0 ) return benchReportRss(sqliteBuild(argc, argv));
  if( argc>=2 && strcmp(argv[1], "search")==0 ) return benchReportRss(sqliteSearchMain(argc, argv, 0));
  if( argc>=2 && strcmp(argv[1], "serve")==0 ) return benchReportRss(sqliteSearchMain(argc, argv, 1));
  fprintf(stderr, "usage: %s build|search|serve NAME=VALUE...\n", argv[0]);
  return 2;
}
