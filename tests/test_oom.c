/*
** Allocation failures under an HNSW-indexed vectordb table.
**
**   usage: test_oom [short|long] [stride]
**          test_oom one WAL SCENARIO PERSISTENT N   (one run, printing SQLite's log)
**   environment: SC_ONLY=scenario (or open, create), SC_MODE=delete|wal
**                narrow a run; SC_TRACE=1 prints every statement that fails
**
** A countdown allocator wraps SQLite's default one (installed with
** SQLITE_CONFIG_MALLOC before sqlite3_initialize): armed at n, the n-th
** allocation from then on fails (sqlite3_malloc and sqlite3_realloc alike;
** "persistent" makes every later one fail too, until disarmed). It also
** counts outstanding allocations.
**
** For each journal mode, each scenario of faultscen.h and both
** persistences, a clean run counts the allocations N the scenario makes;
** then for every n in 1..N the scenario runs from the same database image
** with the n-th allocation failing. Every statement must succeed or fail
** with SQLITE_NOMEM; after the allocator is disarmed the database must
** pass the checks of faultscen.h (ledger, rows, KNN, integrity), and
** after sqlite3_close the outstanding allocations must be back to what
** they were before the connection was opened: nothing leaked. Opening a
** connection (which registers vectordb) and its first use of the table
** (xConnect) get the same treatment.
**
** The extension must allocate only through sqlite3_malloc*, or these
** failures would not reach it; the long form also turns lookaside off so
** that every one of SQLite's own allocations is a fault point too.
*/
#include <pthread.h>
#include "faultscen.h"
#include "faultvfs.h"

/* Files go through the fault VFS with nothing armed: it skips fsync,
** which durability does not need here and which would dominate the run. */
#define OOM_VFS "oomvfs"

static struct {
  sqlite3_mem_methods def;          /* SQLite's default allocator */
  int countdown;                    /* allocations left before the failure; 0: disarmed */
  int persistent;
  int fired;                        /* a persistent failure is under way */
  int nFailed;
  sqlite3_int64 nCalls;             /* allocation calls (malloc and realloc) */
  sqlite3_int64 nOut;               /* outstanding allocations */
} oom;

static int nOomPoints = 0;
static int nStmtRollbacks = 0;

/* The threads that link a bulk insert allocate too. */
static pthread_mutex_t oomMutex = PTHREAD_MUTEX_INITIALIZER;

/* Should this allocation fail? */
static int oomFail(void){
  int fail = 1;
  pthread_mutex_lock(&oomMutex);
  oom.nCalls++;
  if( oom.fired ){
    oom.nFailed++;
  }else if( oom.countdown<=0 || --oom.countdown>0 ){
    fail = 0;
  }else{
    oom.nFailed++;
    if( oom.persistent ) oom.fired = 1;
  }
  pthread_mutex_unlock(&oomMutex);
  return fail;
}

static void oomCountOut(int delta){
  pthread_mutex_lock(&oomMutex);
  oom.nOut += delta;
  pthread_mutex_unlock(&oomMutex);
}

static void *oomMalloc(int n){
  void *p;
  if( oomFail() ) return 0;
  p = oom.def.xMalloc(n);
  if( p ) oomCountOut(1);
  return p;
}
static void oomFree(void *p){
  if( p ) oomCountOut(-1);
  oom.def.xFree(p);
}
static void *oomRealloc(void *p, int n){
  void *q;
  if( oomFail() ) return 0;
  q = oom.def.xRealloc(p, n);
  if( p==0 && q ) oomCountOut(1);
  return q;
}
static int oomSize(void *p){ return oom.def.xSize(p); }
static int oomRoundup(int n){ return oom.def.xRoundup(n); }
static int oomInit(void *pArg){ (void)pArg; return oom.def.xInit(oom.def.pAppData); }
static void oomShutdown(void *pArg){ (void)pArg; oom.def.xShutdown(oom.def.pAppData); }

static void oomArm(int n, int persistent){
  oom.countdown = n;
  oom.persistent = persistent;
  oom.fired = 0;
  oom.nFailed = 0;
}
static int oomDisarm(void){
  int n = oom.nFailed;
  oom.countdown = 0;
  oom.fired = 0;
  oom.nFailed = 0;
  return n;
}
static int oomLive(void){
  return oom.countdown>0 || oom.fired;
}

static int oomAllowed(int rc){
  return (rc & 0xff)==SQLITE_NOMEM || rc==SQLITE_IOERR_NOMEM;
}

static const char *zDbPath;
static int isLongForm = 0;

static int openDb(sqlite3 **pDb, int isWal){
  int rc = sqlite3_open_v2(zDbPath, pDb, SQLITE_OPEN_READWRITE, OOM_VFS);
  if( rc==SQLITE_OK ) rc = scConfigure(*pDb, isWal);
  return rc;
}

/* Outstanding allocations must come back to nBase once the connection is
** closed. */
static void checkLeaks(const char *zLabel, sqlite3_int64 nBase){
  CHECK(oom.nOut==nBase, "%s: %lld allocations leaked", zLabel, oom.nOut - nBase);
}

/* One run of scenario s with the n-th allocation failing (n==0: none);
** returns the failures injected; with n==0, *pnCalls gets the count of
** allocation calls the scenario made. */
static int oomRun(const ScScenario *s, const ScImage *pImg, const ScModel *pBase, int isWal,
                  int persistent, int n, sqlite3_int64 *pnCalls){
  ScRun r;
  char zLabel[160];
  sqlite3_int64 nBase, nCalls0;
  int nFired, rc;
  memset(&r, 0, sizeof(r));
  sqlite3_snprintf(sizeof(zLabel), zLabel, "%s/%s/oom%s n=%d", isWal ? "wal" : "delete",
                   s->zName, persistent ? "+" : "", n);
  r.zLabel = zLabel;
  r.xAllowed = oomAllowed;
  r.xLive = oomLive;
  if( !scWriteImage(zDbPath, pImg) ){ CHECK(0, "%s: cannot write the image", zLabel); return 0; }
  nBase = oom.nOut;
  rc = openDb(&r.db, isWal);
  CHECK(rc==SQLITE_OK, "%s: open: %s", zLabel, sqlite3_errmsg(r.db));
  nCalls0 = oom.nCalls;
  if( n>0 ) oomArm(n, persistent);
  scRunScenario(&r, s, pBase);
  nFired = oomDisarm();
  nStmtRollbacks += r.nStmtRollback;
  if( pnCalls ) *pnCalls = oom.nCalls - nCalls0;
  if( n==0 ) CHECK(r.nErr==0, "%s: %d statements failed without a fault", zLabel, r.nErr);
  scVerify(&r, s, pBase, "after the fault");
  if( !isLongForm ) scUsable(&r);
  CHECK(sqlite3_close(r.db)==SQLITE_OK, "%s: close: busy", zLabel);
  checkLeaks(zLabel, nBase);
  r.db = 0;
  /* What is on disk is what the connection saw (no I/O failed); the long
  ** form reads it back anyway. */
  if( isLongForm && openDb(&r.db, isWal)==SQLITE_OK ){
    scVerify(&r, s, pBase, "reopened");
    scUsable(&r);
  }
  sqlite3_close(r.db);
  checkLeaks(zLabel, nBase);
  return nFired;
}

/* Opening a connection (vectordb registers itself) and its first use of
** the table (xConnect, the graph's statements) with the n-th allocation
** failing. */
static int oomOpenRun(const ScImage *pImg, const ScModel *pBase, int isWal, int n, sqlite3_int64 *pnCalls){
  static ScScenario s;
  sqlite3 *db = 0;
  ScRun r;
  char zLabel[160];
  sqlite3_int64 nBase = oom.nOut, nCalls0 = oom.nCalls;
  int nFired, rc;
  memset(&r, 0, sizeof(r));
  sqlite3_snprintf(sizeof(zLabel), zLabel, "%s/open/oom n=%d", isWal ? "wal" : "delete", n);
  r.zLabel = zLabel;
  r.xAllowed = oomAllowed;
  r.xLive = oomLive;
  if( !scWriteImage(zDbPath, pImg) ){ CHECK(0, "%s: cannot write the image", zLabel); return 0; }
  if( n>0 ) oomArm(n, 0);
  rc = sqlite3_open_v2(zDbPath, &db, SQLITE_OPEN_READWRITE, OOM_VFS);
  if( rc==SQLITE_OK ){
    r.db = db;
    rc = scKnn(&r, pBase, 1, -1, 64);
    if( rc==SQLITE_OK ) rc = scKnn(&r, pBase, 2, 1, 64);
  }
  if( rc!=SQLITE_OK ){
    CHECK(oomAllowed(rc), "%s: failed with %d (%s)", zLabel, rc, db ? sqlite3_errmsg(db) : "no db");
  }
  nFired = oomDisarm();
  if( pnCalls ) *pnCalls = oom.nCalls - nCalls0;
  if( n==0 ) CHECK(rc==SQLITE_OK, "%s: %s", zLabel, sqlite3_errmsg(db));
  CHECK(sqlite3_close(db)==SQLITE_OK, "%s: close: busy", zLabel);
  checkLeaks(zLabel, nBase);
  memset(&s, 0, sizeof(s));
  sqlite3_snprintf(sizeof(s.zName), s.zName, "open");
  r.db = 0;
  if( openDb(&r.db, isWal)==SQLITE_OK ) scVerify(&r, &s, pBase, "reopened");
  sqlite3_close(r.db);
  checkLeaks(zLabel, nBase);
  return nFired;
}

/* CREATE VIRTUAL TABLE (xCreate: the shadow tables, the graph table and
** its indexes), a first row, and DROP TABLE, with the n-th allocation
** failing. Whatever failed must have left nothing behind: either the table
** is whole (and then dropped) or none of its shadow tables exist. */
static int oomCreateRun(const ScImage *pImg, const ScModel *pBase, int n, sqlite3_int64 *pnCalls){
  static ScScenario s;
  sqlite3 *db = 0;
  ScRun r;
  char zLabel[160], zText[200];
  sqlite3_int64 nBase = oom.nOut, nCalls0;
  int nFired, rc;
  memset(&r, 0, sizeof(r));
  sqlite3_snprintf(sizeof(zLabel), zLabel, "create/oom n=%d", n);
  r.zLabel = zLabel;
  if( !scWriteImage(zDbPath, pImg) ){ CHECK(0, "%s: cannot write the image", zLabel); return 0; }
  rc = openDb(&db, 0);
  CHECK(rc==SQLITE_OK, "%s: open", zLabel);
  nCalls0 = oom.nCalls;
  if( n>0 ) oomArm(n, 0);
  rc = scExec(db, "CREATE VIRTUAL TABLE t2 USING vectordb(e float[4] INDEXED BY hnsw(m=4), g text)");
  if( rc==SQLITE_OK ){
    rc = scExec(db, "INSERT INTO t2(rowid, e, g) VALUES (1, '[1,2,3,4]', 'a'), (2, '[2,3,4,5]', 'b')");
    if( rc!=SQLITE_OK ) CHECK(oomAllowed(rc), "%s: insert: %d %s", zLabel, rc, sqlite3_errmsg(db));
    rc = scExec(db, "DROP TABLE t2");
    if( rc!=SQLITE_OK ) CHECK(oomAllowed(rc), "%s: drop: %d %s", zLabel, rc, sqlite3_errmsg(db));
  }else{
    CHECK(oomAllowed(rc), "%s: create: %d %s", zLabel, rc, sqlite3_errmsg(db));
  }
  nFired = oomDisarm();
  if( pnCalls ) *pnCalls = oom.nCalls - nCalls0;
  /* A DROP that failed is done again; then nothing of t2 may remain. */
  scExec(db, "DROP TABLE IF EXISTS t2");
  rc = scQueryText(db, "SELECT group_concat(name) FROM sqlite_schema WHERE name LIKE '%t2%'", zText, sizeof(zText));
  CHECK(rc==SQLITE_OK && strcmp(zText, "NULL")==0, "%s: left behind: %s", zLabel, zText);
  r.db = db;
  memset(&s, 0, sizeof(s));
  sqlite3_snprintf(sizeof(s.zName), s.zName, "create");
  scVerify(&r, &s, pBase, "after the fault");
  CHECK(sqlite3_close(db)==SQLITE_OK, "%s: close: busy", zLabel);
  checkLeaks(zLabel, nBase);
  return nFired;
}

/* SC_ONLY=name runs one scenario (open, create, or one of faultscen.h's). */
static int wanted(const char *zName){
  return getenv("SC_ONLY")==0 || strcmp(getenv("SC_ONLY"), zName)==0;
}

static void oomAll(const ScScenario *aScen, int nScen, int stride){
  ScModel base;
  int isWal, iScen, persistent, n;
  scBaseModel(&base);
  for(isWal=0; isWal<2; isWal++){
    ScImage img;
    if( getenv("SC_MODE") && strcmp(getenv("SC_MODE"), isWal ? "wal" : "delete")!=0 ) continue;
    sqlite3_int64 nCalls = 0;
    int nPoints = 0;
    memset(&img, 0, sizeof(img));
    if( !scMakeBase(zDbPath, OOM_VFS, isWal ? "wal" : "delete", &img) ){
      CHECK(0, "cannot build the base database");
      return;
    }
    if( wanted("open") ) oomOpenRun(&img, &base, isWal, 0, &nCalls);
    else nCalls = 0;
    for(n=1; n<=nCalls; n+=stride){
      CHECK(oomOpenRun(&img, &base, isWal, n, 0)>0, "open n=%d: never failed", n);
      nPoints++;
    }
    printf("oom: %-6s %-10s %5d fault points\n", isWal ? "wal" : "delete", "open", nPoints);
    nOomPoints += nPoints;
    if( !isWal && wanted("create") ){
      nPoints = 0;
      oomCreateRun(&img, &base, 0, &nCalls);
      for(n=1; n<=nCalls; n+=stride){
        CHECK(oomCreateRun(&img, &base, n, 0)>0, "create n=%d: never failed", n);
        nPoints++;
      }
      printf("oom: %-6s %-10s %5d fault points\n", "delete", "create", nPoints);
      nOomPoints += nPoints;
    }
    for(iScen=0; iScen<nScen; iScen++){
      if( !wanted(aScen[iScen].zName) ) continue;
      /* ALTER TABLE reparses the schema once per shadow table: some 45,000
      ** allocations per journal mode, for the long form only. */
      if( !isLongForm && strcmp(aScen[iScen].zName, "rename")==0 ) continue;
      int nRb0 = nStmtRollbacks;
      nPoints = 0;
      for(persistent=0; persistent<2; persistent++){
        oomRun(&aScen[iScen], &img, &base, isWal, persistent, 0, &nCalls);
        for(n=1; n<=nCalls; n+=stride){
          int nFired = oomRun(&aScen[iScen], &img, &base, isWal, persistent, n, 0);
          /* Where threads link, a run may make fewer allocations than the
          ** one counted. */
          CHECK(nFired>0 || aScen[iScen].timingDependent, "%s/%s n=%d of %lld: no allocation failed",
                isWal ? "wal" : "delete", aScen[iScen].zName, n, nCalls);
          nPoints++;
        }
      }
      printf("oom: %-6s %-10s %5d fault points, %3d statement rollbacks\n",
             isWal ? "wal" : "delete", aScen[iScen].zName, nPoints, nStmtRollbacks - nRb0);
      fflush(stdout);
      nOomPoints += nPoints;
    }
    free(img.a);
  }
}

int main(int argc, char **argv){
  static ScScenario aScen[16];
  static sqlite3_mem_methods mem = {
    oomMalloc, oomFree, oomRealloc, oomSize, oomRoundup, oomInit, oomShutdown, 0
  };
  char zDir[64];
  char zPath[600];
  int isLong = argc>1 && strcmp(argv[1], "long")==0;
  int stride = argc>2 ? atoi(argv[2]) : 1;
  int nScen;
  if( stride<1 ) stride = 1;
  isLongForm = isLong;
  if( sqlite3_config(SQLITE_CONFIG_GETMALLOC, &oom.def)!=SQLITE_OK
   || sqlite3_config(SQLITE_CONFIG_MALLOC, &mem)!=SQLITE_OK
   || (isLong && sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0)!=SQLITE_OK)
   || (argc>1 && strcmp(argv[1], "one")==0 && sqlite3_config(SQLITE_CONFIG_LOG, scLog, 0)!=SQLITE_OK)
   || sqlite3_initialize()!=SQLITE_OK ){
    fprintf(stderr, "cannot install the allocator\n");
    return 1;
  }
  sqlite3_auto_extension((void(*)(void))sqlite3_vectordb_init);
  scTempDir(zDir, sizeof(zDir), "vdb-oom");
  if( faultvfsInstall(OOM_VFS)!=SQLITE_OK || mkdtemp(zDir)==0 ){
    fprintf(stderr, "mkdtemp failed\n");
    return 1;
  }
  snprintf(zPath, sizeof(zPath), "%s/test.db", zDir);
  zDbPath = zPath;
  nScen = scBuildScenarios(aScen);
  if( argc==6 && strcmp(argv[1], "one")==0 ){
    /* test_oom one WAL SCENARIO PERSISTENT N: a single run, to debug. */
    ScModel base;
    ScImage img;
    int isWal = atoi(argv[2]), iScen = atoi(argv[3]);
    scBaseModel(&base);
    memset(&img, 0, sizeof(img));
    if( iScen>=0 && iScen<nScen && scMakeBase(zDbPath, OOM_VFS, isWal ? "wal" : "delete", &img) ){
      printf("fired %d\n", oomRun(&aScen[iScen], &img, &base, isWal, atoi(argv[4]), atoi(argv[5]), 0));
    }
    free(img.a);
  }else{
    oomAll(aScen, nScen, stride);
  }
  printf("%d allocation fault points\n", nOomPoints);
  scRemoveDb(zPath);
  rmdir(zDir);
  return tuFinish();
}
