/*
** The static library: an application links libvectordb.a and registers
** vectordb with sqlite3_auto_extension, as README.md shows.
*/
#include <string.h>
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

int main(void){
  sqlite3 *db = 0;
  char *zErr = 0;
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
  return tuFinish();
}
