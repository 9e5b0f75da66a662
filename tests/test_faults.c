/*
** I/O errors and power loss under an HNSW-indexed vectordb table.
**
**   usage: test_faults [short|long] [stride]
**          test_faults one WAL SCENARIO KIND PERSISTENT N   (one run, to debug)
**   environment: SC_ONLY=scenario, SC_MODE=delete|wal narrow a run;
**                SC_CACHE=pages sets the page cache of "one" runs;
**                SC_TRACE=1 prints every statement that fails
**
** Part 1, I/O errors: for each journal mode (DELETE, WAL), each scenario of
** faultscen.h, each kind of operation (read, write, sync, truncate) and
** each persistence (one failure / every operation from then on), a
** fault-free run counts the operations N of that kind; then for every n in
** 1..N the scenario runs from the same database image with the n-th
** operation failing. Every statement must succeed or return an I/O error;
** after the fault is lifted the database is checked in the same
** connection and again after reopening (faultscen.h: scVerify), and must
** take a new row and find it.
**
** Part 2, power loss: random transactions (inserts, deletes, updates with
** graph repair, each with its ledger row) run until the machine loses
** power at a random write or sync, mid-commit included; unsynced writes
** are lost, all of them or a random part (faultvfs.h). The database is
** reopened (SQLite recovers it) and checked: with synchronous=FULL every
** transaction whose COMMIT returned is there; with WAL and
** synchronous=NORMAL the committed ones present are a prefix; nothing
** uncommitted is; the table matches the ledger. Each chain of crashes
** goes on from the recovered database.
**
** The long form ("long") runs bigger chains and more crashes; a stride
** above 1 tries every stride-th n only (the sanitizer build's short run).
*/
#include "faultscen.h"
#include "faultvfs.h"

#define FV_NAME "faultvfs"

static const char *zDbPath;
static int nIoPoints = 0;         /* fault points injected in part 1 */
static int nCrashes = 0;          /* power losses survived in part 2 */
static int nStmtRollbacks = 0;    /* failed statements inside transactions that went on */
static int nRecoveryCrashes = 0;  /* power losses during recovery from one */
static int nTxCommitted = 0;      /* power loss: transactions committed before a crash */
static int nTxInFlight = 0;       /* power loss: the crash came inside COMMIT, or a statement */
static int nTxInFlightKept = 0;   /*   ... and the transaction survived */

static int ioAllowed(int rc){
  return (rc & 0xff)==SQLITE_IOERR || rc==SQLITE_CANTOPEN || (rc & 0xff)==SQLITE_FULL;
}

static int openDb(sqlite3 **pDb, int isWal){
  int rc = sqlite3_open_v2(zDbPath, pDb, SQLITE_OPEN_READWRITE, FV_NAME);
  if( rc==SQLITE_OK ) rc = scConfigure(*pDb, isWal);
  CHECK(rc==SQLITE_OK, "open %s: %s", zDbPath, sqlite3_errmsg(*pDb));
  return rc;
}

static const char *kindName(unsigned k){
  switch( k ){
    case FAULTVFS_READ: return "read";
    case FAULTVFS_WRITE: return "write";
    case FAULTVFS_SYNC: return "sync";
    case FAULTVFS_WRITE|FAULTVFS_DISKFULL: return "full";
    default: return "truncate";
  }
}

/* One run of scenario s from image pImg with the n-th operation of kind
** failing (n==0: no fault). Returns how many operations were failed; with
** n==0, *pnOps receives the count of operations of that kind. */
static int ioRun(const ScScenario *s, const ScImage *pImg, const ScModel *pBase, int isWal,
                 unsigned kind, int persistent, int n, sqlite3_int64 *pnOps){
  ScRun r;
  char zLabel[160];
  int nFired;
  memset(&r, 0, sizeof(r));
  sqlite3_snprintf(sizeof(zLabel), zLabel, "%s/%s/%s%s n=%d", isWal ? "wal" : "delete",
                   s->zName, kindName(kind), persistent ? "+" : "", n);
  r.zLabel = zLabel;
  r.xAllowed = ioAllowed;
  r.xLive = faultvfsLive;
  r.staleSchemaOk = persistent;
  if( !scWriteImage(zDbPath, pImg) ){ CHECK(0, "%s: cannot write the image", zLabel); return 0; }
  if( openDb(&r.db, isWal)!=SQLITE_OK ){ sqlite3_close(r.db); return 0; }
  faultvfsResetCounts();
  if( n>0 ) faultvfsArmError(kind, n, persistent);
  scRunScenario(&r, s, pBase);
  nFired = faultvfsDisarm();
  nStmtRollbacks += r.nStmtRollback;
  if( pnOps ) *pnOps = faultvfsCount(kind);
  if( n==0 ) CHECK(r.nErr==0, "%s: %d statements failed without a fault", zLabel, r.nErr);
  scVerify(&r, s, pBase, "after the fault");
  CHECK(sqlite3_close(r.db)==SQLITE_OK, "%s: close", zLabel);
  r.db = 0;
  if( openDb(&r.db, isWal)==SQLITE_OK ){
    scVerify(&r, s, pBase, "reopened");
    scUsable(&r);
  }
  sqlite3_close(r.db);
  return nFired;
}

/* The kinds of fault; the long form adds a full disk (the short form's
** run time goes to the other kinds: SQLite treats a full disk much as a
** failed write). */
static const unsigned aKind[] = { FAULTVFS_READ, FAULTVFS_WRITE, FAULTVFS_SYNC, FAULTVFS_TRUNCATE,
                                  FAULTVFS_WRITE|FAULTVFS_DISKFULL };

static void ioErrors(const ScScenario *aScen, int nScen, int nKind, int stride){
  ScModel base;
  int isWal, iScen, iKind, persistent;
  scBaseModel(&base);
  for(isWal=0; isWal<2; isWal++){
    ScImage img;
    if( getenv("SC_MODE") && strcmp(getenv("SC_MODE"), isWal ? "wal" : "delete")!=0 ) continue;
    memset(&img, 0, sizeof(img));
    if( !scMakeBase(zDbPath, FV_NAME, isWal ? "wal" : "delete", &img) ){
      CHECK(0, "cannot build the base database");
      return;
    }
    for(iScen=0; iScen<nScen; iScen++){
      if( getenv("SC_ONLY") && strcmp(getenv("SC_ONLY"), aScen[iScen].zName)!=0 ) continue;
      int nPoints = 0, nRb0 = nStmtRollbacks;
      for(iKind=0; iKind<nKind; iKind++){
        for(persistent=0; persistent<2; persistent++){
          sqlite3_int64 nOps = 0;
          int n, nFired;
          ioRun(&aScen[iScen], &img, &base, isWal, aKind[iKind], persistent, 0, &nOps);
          for(n=1; n<=nOps; n+=stride){
            nFired = ioRun(&aScen[iScen], &img, &base, isWal, aKind[iKind], persistent, n, 0);
            /* Where threads link, the graph written, and so the I/O, varies
            ** from run to run. */
            CHECK(nFired>0 || aScen[iScen].timingDependent, "%s/%s/%s n=%d of %lld: the fault never fired",
                  isWal ? "wal" : "delete", aScen[iScen].zName, kindName(aKind[iKind]), n, nOps);
            nPoints++;
          }
          /* One past the end: nothing may fire. */
          nFired = ioRun(&aScen[iScen], &img, &base, isWal, aKind[iKind], persistent, (int)nOps+1, 0);
          CHECK(nFired==0 || aScen[iScen].timingDependent, "%s: a fault fired past the last operation",
                aScen[iScen].zName);
        }
      }
      printf("io errors: %-6s %-10s cache %2d: %5d fault points, %3d statement rollbacks\n",
             isWal ? "wal" : "delete", aScen[iScen].zName, scCacheSize, nPoints, nStmtRollbacks - nRb0);
      fflush(stdout);
      nIoPoints += nPoints;
    }
    free(img.a);
  }
}

/* ---- power loss -------------------------------------------------------------- */

/* A random write transaction over model m (not changed): 1 to 6 ops. */
static void randomTx(ScTx *t, const ScModel *m, int id, sqlite3_int64 *pNextRowid){
  static ScModel work;
  int nOp = 1 + (int)(tuRand()%6), i;
  memset(t, 0, sizeof(*t));
  t->id = id;
  t->spTxn = tuRand()%4==0;
  work = *m;
  if( tuRand()%3==0 ) scAdd(t, SC_LEDGER, 0, 0, (int)(tuRand()&1));
  for(i=0; i<nOp; i++){
    int e = (int)(tuRand()%10);
    ScOp *o;
    if( work.n<8 ) e = 0;
    if( e==0 ){
      o = scAdd(t, SC_INSERT3, *pNextRowid, (int)(tuRand()%1000), (int)(tuRand()%4));
      *pNextRowid += 3;
    }else if( e<4 ){
      o = scAdd(t, SC_INSERT, (*pNextRowid)++, (int)(tuRand()%1000), (int)(tuRand()%4));
    }else{
      sqlite3_int64 rowid = work.aRow[tuRand()%(unsigned)work.n].rowid;
      if( e<7 ) o = scAdd(t, SC_DELETE, rowid, 0, 0);
      else if( e<9 ) o = scAdd(t, SC_UPD_VEC, rowid, (int)(tuRand()%1000)+1, 0);
      else o = scAdd(t, SC_UPD_TAG, rowid, 0, (int)(tuRand()%4));
    }
    scApply(&work, o);
  }
  if( t->aOp[0].e!=SC_LEDGER ) scAdd(t, SC_LEDGER, 0, 0, (int)(tuRand()&1));
}

/* One chain: a fresh base database, then nCrash power losses, each after
** random transactions, each followed by recovery and the checks. */
static void powerChain(const ScImage *pImg, int isWal, int isNormal, int nCrash, int maxOps){
  static ScScenario s;
  ScModel base;
  ScRun r;
  char zLabel[160];
  sqlite3_int64 nextRowid = 10000;
  int iCrash, id = 1;
  scBaseModel(&base);
  memset(&r, 0, sizeof(r));
  r.zLabel = zLabel;
  r.xAllowed = ioAllowed;
  r.xLive = faultvfsLive;
  if( !scWriteImage(zDbPath, pImg) ){ CHECK(0, "cannot write the image"); return; }
  for(iCrash=0; iCrash<nCrash; iCrash++){
    int n = 1 + (int)(tuRand()%(unsigned)maxOps);
    int eMode = (tuRand()&1) ? FAULTVFS_LOSE_SOME : FAULTVFS_LOSE_ALL;
    int i, nFail0 = tuFailed, iLast = -1;
    sqlite3_snprintf(sizeof(zLabel), zLabel, "power %s%s crash %d at op %d (%s)",
                     isWal ? "wal" : "delete", isNormal ? "/normal" : "", iCrash, n,
                     eMode==FAULTVFS_LOSE_SOME ? "some lost" : "all lost");
    if( openDb(&r.db, isWal)!=SQLITE_OK ){ sqlite3_close(r.db); return; }
    if( isNormal ) scExec(r.db, "PRAGMA synchronous=NORMAL");
    memset(&s, 0, sizeof(s));
    sqlite3_snprintf(sizeof(s.zName), s.zName, "random");
    r.model = base;
    r.modelKnown = 1;
    faultvfsArmCrash(FAULTVFS_WRITE|FAULTVFS_SYNC, n, eMode, (unsigned)tuRand());
    /* Transactions until the power goes (or SC_MAXTX of them). */
    for(i=0; i<SC_MAXTX && !faultvfsCrashed(); i++){
      randomTx(&s.aTx[i], &r.model, id++, &nextRowid);
      s.nTx = i+1;
      scRunTx(&r, i, &s.aTx[i]);
      if( faultvfsCrashed() ){
        /* The transaction the power failed in may or may not be there. */
        if( r.aOutcome[i]!=SC_COMMITTED ) r.aOutcome[i] = SC_MAYBE;
        iLast = i;
      }
    }
    if( !faultvfsCrashed() ) faultvfsCrashNow(eMode, (unsigned)tuRand());
    sqlite3_close(r.db);
    r.db = 0;
    faultvfsRevive();
    nCrashes++;
    /* Now and then the power fails again while the next connection
    ** recovers the files (plays a hot journal back, rebuilds the WAL
    ** index): recovery must survive its own crash. */
    if( tuRand()%3==0 ){
      char zText[100];
      int n2 = 1 + (int)(tuRand()%12);
      /* Armed before the first statement (a pragma reads the schema too). */
      faultvfsArmCrash(FAULTVFS_WRITE|FAULTVFS_SYNC|FAULTVFS_TRUNCATE, n2, eMode, (unsigned)tuRand());
      if( sqlite3_open_v2(zDbPath, &r.db, SQLITE_OPEN_READWRITE, FV_NAME)==SQLITE_OK ){
        scQueryText(r.db, "SELECT count(*) FROM ledger", zText, sizeof(zText));
      }
      nRecoveryCrashes += faultvfsCrashed();
      faultvfsDisarm();
      sqlite3_close(r.db);
      r.db = 0;
      faultvfsRevive();
    }
    /* WAL with synchronous=NORMAL may lose the last commits: only a
    ** prefix of them need be there. */
    if( isNormal ){
      for(i=0; i<s.nTx; i++) if( r.aOutcome[i]==SC_COMMITTED ) r.aOutcome[i] = SC_MAYBE;
    }
    if( openDb(&r.db, isWal)!=SQLITE_OK ){ sqlite3_close(r.db); return; }
    scVerify(&r, &s, &base, "recovered");
    for(i=0; i<s.nTx; i++){
      if( i==iLast && r.aOutcome[i]==SC_MAYBE ){
        nTxInFlight++;
        nTxInFlightKept += scInLedger(r.db, s.aTx[i].id)==1;
      }else if( r.aOutcome[i]==SC_COMMITTED || (isNormal && r.aOutcome[i]==SC_MAYBE) ){
        nTxCommitted++;
      }
    }
    if( isNormal ){
      int seenGap = 0;
      for(i=0; i<s.nTx; i++){
        int in;
        if( r.aOutcome[i]==SC_ABORTED ) continue;     /* never committed */
        in = scInLedger(r.db, s.aTx[i].id);
        if( in==0 ) seenGap = 1;
        CHECK(!(seenGap && in==1), "%s: transaction %d present after a lost one", zLabel, s.aTx[i].id);
      }
    }
    /* The model of what survived is the base of the next round. */
    base = r.model;
    sqlite3_close(r.db);
    r.db = 0;
    if( tuFailed>nFail0 ) return;     /* one report per chain */
  }
  /* Still usable after all that. */
  if( openDb(&r.db, isWal)==SQLITE_OK ) scUsable(&r);
  sqlite3_close(r.db);
}

static void powerLoss(int nChain, int nCrash){
  int isWal, iChain;
  for(isWal=0; isWal<3; isWal++){
    ScImage img;
    int nBefore = nCrashes;
    memset(&img, 0, sizeof(img));
    if( !scMakeBase(zDbPath, FV_NAME, isWal ? "wal" : "delete", &img) ){
      CHECK(0, "cannot build the base database");
      return;
    }
    for(iChain=0; iChain<nChain; iChain++){
      powerChain(&img, isWal>0, isWal==2, nCrash, 200);
    }
    printf("power loss: %-13s %4d crashes survived\n",
           isWal==0 ? "delete/full" : isWal==1 ? "wal/full" : "wal/normal", nCrashes - nBefore);
    printf("  so far: %d transactions committed before a crash, %d cut by one (%d of those survived),"
           " %d crashes during recovery\n", nTxCommitted, nTxInFlight, nTxInFlightKept, nRecoveryCrashes);
    fflush(stdout);
    free(img.a);
  }
}

int main(int argc, char **argv){
  static ScScenario aScen[16];
  char zDir[64];
  char zPath[600];
  int isLong = argc>1 && strcmp(argv[1], "long")==0;
  int stride = argc>2 ? atoi(argv[2]) : 1;
  int nScen;
  if( stride<1 ) stride = 1;
  if( argc>1 && strcmp(argv[1], "one")==0 ) sqlite3_config(SQLITE_CONFIG_LOG, scLog, 0);
  sqlite3_auto_extension((void(*)(void))sqlite3_vectordb_init);
  scTempDir(zDir, sizeof(zDir), "vdb-faults");
  if( faultvfsInstall(FV_NAME)!=SQLITE_OK || mkdtemp(zDir)==0 ){
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  snprintf(zPath, sizeof(zPath), "%s/test.db", zDir);
  zDbPath = zPath;
  nScen = scBuildScenarios(aScen);
  if( getenv("SC_CACHE") ) scCacheSize = atoi(getenv("SC_CACHE"));
  if( argc==7 && strcmp(argv[1], "one")==0 ){
    /* test_faults one WAL SCENARIO KIND PERSISTENT N: one run, to debug. */
    ScModel base;
    ScImage img;
    int isWal = atoi(argv[2]), iScen = atoi(argv[3]), iKind = atoi(argv[4]);
    scBaseModel(&base);
    memset(&img, 0, sizeof(img));
    if( iScen>=0 && iScen<nScen && iKind>=0 && iKind<5
     && scMakeBase(zDbPath, FV_NAME, isWal ? "wal" : "delete", &img) ){
      printf("fired %d\n", ioRun(&aScen[iScen], &img, &base, isWal, aKind[iKind],
                                 atoi(argv[5]), atoi(argv[6]), 0));
    }
    free(img.a);
    scRemoveDb(zPath);
    rmdir(zDir);
    return tuFinish();
  }
  ioErrors(aScen, nScen, isLong ? 5 : 4, stride);
  if( isLong ){
    scCacheSize = 1;
    ioErrors(aScen, nScen, 5, stride);
    scCacheSize = 20;
  }
  powerLoss(isLong ? 40 : 6, isLong ? 12 : 5);
  printf("%d I/O fault points, %d power losses (and %d more during recovery)\n",
         nIoPoints, nCrashes, nRecoveryCrashes);
  scRemoveDb(zPath);
  rmdir(zDir);
  return tuFinish();
}
