/*
** The static library: an application links libvectordb.a and registers
** vectordb with sqlite3_auto_extension, as README.md shows; and, from C
** because Python's sqlite3 cannot set it, defensive mode.
*/
#include <string.h>
#include <unistd.h>
#include <stdlib.h>
#include "testutil.h"
#include "vectordb.h"

static double distanceOn(sqlite3 *db, const char *zSql){
  sqlite3_stmt *pStmt = 0;
  double d = -1;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK
   && sqlite3_step(pStmt)==SQLITE_ROW ){
    d = sqlite3_column_double(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return d;
}

static int execOk(sqlite3 *db, const char *zSql){
  char *zErr = 0;
  int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
  if( rc!=SQLITE_OK ) fprintf(stderr, "  (%s: %s)\n", zSql, zErr ? zErr : "");
  sqlite3_free(zErr);
  return rc;
}

/* With SQLITE_DBCONFIG_DEFENSIVE the shadow tables (declared through
** xShadowName) reject direct writes, while the table itself still works. */
static void testDefensiveMode(void){
  sqlite3 *db = 0;
  int on = -1;
  CHECK(sqlite3_open(":memory:", &db)==SQLITE_OK, "open");
  CHECK(sqlite3_vectordb_init(db, 0, 0)==SQLITE_OK, "init");
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
  CHECK(on==1, "defensive mode is on");
  CHECK(execOk(db, "CREATE VIRTUAL TABLE t USING vectordb(e float[2], tag text)")==SQLITE_OK, "create");
  CHECK(execOk(db, "INSERT INTO t(rowid, e, tag) VALUES (1, '[1,2]', 'a')")==SQLITE_OK, "insert");
  CHECK(execOk(db, "UPDATE t_chunks SET validity = x'00'")!=SQLITE_OK, "shadow chunks are read-only");
  CHECK(execOk(db, "DELETE FROM t_rows")!=SQLITE_OK, "shadow rows are read-only");
  CHECK(execOk(db, "INSERT INTO t_vectors00 VALUES (99, x'00')")!=SQLITE_OK, "shadow vectors are read-only");
  CHECK(execOk(db, "DROP TABLE t_info")!=SQLITE_OK, "shadow tables cannot be dropped");
  CHECK(execOk(db, "UPDATE t SET tag = 'b' WHERE rowid = 1")==SQLITE_OK, "the table still updates");
  CHECK(distanceOn(db, "SELECT distance FROM t WHERE e MATCH '[1,2]' AND k = 1")==0.0, "and answers KNN");
  CHECK(execOk(db, "DROP TABLE t")==SQLITE_OK, "and drops with its shadow tables");
  CHECK(distanceOn(db, "SELECT count(*) FROM sqlite_master")==0.0, "nothing left behind");
  sqlite3_close(db);
}

/* Notable events reach SQLite's error log (SQLITE_CONFIG_LOG), once each:
** the first corruption a table finds, and a reader's full cache reload. */
static int nLogCorrupt, nLogReload;
static void logCallback(void *pArg, int iCode, const char *zMsg){
  (void)pArg;
  /* SQLite logs each failed statement too ("statement aborts at ..."). */
  if( (iCode & 0xff)==SQLITE_CORRUPT && strncmp(zMsg, "vectordb table t is corrupt", 27)==0 ) nLogCorrupt++;
  if( iCode==SQLITE_NOTICE && strstr(zMsg, "graph cache is reloaded") ) nLogReload++;
}

static void testEventsAreLogged(void){
  char zPath[] = "/tmp/vectordb-static-XXXXXX";
  char zDb[64];
  sqlite3 *a = 0, *b = 0;
  int fd = mkstemp(zPath), i;
  CHECK(fd>=0, "temp file");
  close(fd);
  sqlite3_snprintf(sizeof(zDb), zDb, "%s", zPath);
  CHECK(sqlite3_open(zDb, &a)==SQLITE_OK && sqlite3_open(zDb, &b)==SQLITE_OK, "open twice");
  sqlite3_vectordb_init(a, 0, 0);
  sqlite3_vectordb_init(b, 0, 0);
  CHECK(execOk(a, "PRAGMA journal_mode=WAL; CREATE VIRTUAL TABLE t USING vectordb(e float[2] INDEXED BY hnsw(m=4))")
        ==SQLITE_OK, "create");
  for(i=1; i<=20; i++){
    char zSql[96];
    sqlite3_snprintf(sizeof(zSql), zSql, "INSERT INTO t(rowid, e) VALUES (%d, '[%d,%d]')", i, i, i%5);
    execOk(a, zSql);
  }
  CHECK(distanceOn(b, "SELECT distance FROM t WHERE e MATCH '[3,3]' AND k = 1")>=0, "b warms its cache");
  /* A gap in the change log: b cannot follow it and reloads, once. */
  execOk(a, "INSERT INTO t(rowid, e) VALUES (21, '[9,9]'); INSERT INTO t(rowid, e) VALUES (22, '[8,8]');"
            "DELETE FROM t_hnswlog00 WHERE seq = (SELECT max(seq) - 1 FROM t_hnswlog00)");
  CHECK(distanceOn(b, "SELECT distance FROM t WHERE e MATCH '[9,9]' AND k = 1")==0.0, "b sees the new row");
  CHECK(nLogReload==1, "one full reload logged, got %d", nLogReload);
  /* Damage: every use finds it, the log hears of it once. */
  execOk(a, "UPDATE t_hnsw00 SET level = 99 WHERE nid = 2");
  sqlite3_exec(a, "INSERT INTO t(t) VALUES ('integrity-check')", 0, 0, 0);
  sqlite3_exec(a, "INSERT INTO t(t) VALUES ('integrity-check')", 0, 0, 0);
  CHECK(nLogCorrupt==1, "one corruption logged, got %d", nLogCorrupt);
  sqlite3_close(a);
  sqlite3_close(b);
  unlink(zPath);
}

int main(void){
  sqlite3 *db = 0;
  char *zErr = 0;
  /* Before anything initialises SQLite. */
  CHECK(sqlite3_config(SQLITE_CONFIG_LOG, logCallback, (void*)0)==SQLITE_OK, "log callback");
  CHECK(sqlite3_auto_extension((void(*)(void))sqlite3_vectordb_init)==SQLITE_OK, "auto_extension");
  CHECK(sqlite3_open(":memory:", &db)==SQLITE_OK, "open");
  CHECK(distanceOn(db, "SELECT vec_distance_l2('[0,0]', '[3,4]')")==5.0, "function registered");
  sqlite3_close(db);

  /* Registering on a single connection directly works as well. */
  sqlite3_reset_auto_extension();
  CHECK(sqlite3_open(":memory:", &db)==SQLITE_OK, "open");
  CHECK(distanceOn(db, "SELECT vec_distance_l2('[0,0]', '[3,4]')")==-1, "not registered yet");
  CHECK(sqlite3_vectordb_init(db, &zErr, 0)==SQLITE_OK, "direct init: %s", zErr ? zErr : "");
  CHECK(distanceOn(db, "SELECT vec_distance_l1('[0,0]', '[3,4]')")==7.0, "function registered");
  sqlite3_close(db);
  sqlite3_free(zErr);
  testDefensiveMode();
  testEventsAreLogged();
  return tuFinish();
}
