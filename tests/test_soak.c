/*
** Concurrency soak: one writer thread and several reader threads, each
** with its own connection to one database file (WAL, and once a rollback
** journal), for a fixed number of operations.
**
**   usage: test_soak [GENERATIONS [READS [MAX_READERS [ROWS]]]]
**          (defaults 300, 400, 4, 3000; ROWS at most 3000)
**
** The run is repeated with 1, 2 and MAX_READERS reader threads, the third
** time with 1 MiB graph caches, small enough to evict, then once more with
** 2 readers in rollback-journal mode (DELETE) instead of WAL; each run
** starts from a new database, the writer commits GENERATIONS transactions
** and each reader runs at least READS queries, and goes on until the
** writer has finished, so the writer never runs alone.
**
** The writer takes the table from generation g-1 to generation g in one
** transaction: inserts, deletes, INSERT OR REPLACE, vector and genre
** updates; sometimes a savepoint rolled back first, sometimes a whole
** transaction rolled back before it. The same transaction sets gen.g = g.
** Which rows exist at generation g, with which vector, partition and genre,
** is a pure function of g (soakStep), so every reader can check what it
** reads:
**   - in a read transaction: read g, then several queries, each of which
**     must agree with generation g exactly;
**   - in autocommit mode: read g1, one query, read g2; the query must agree
**     with one generation from g1 to g2.
** Queries: exact KNN (ef_search = 0) and HNSW KNN, unfiltered and with a
** partition key, a metadata column or rowid IN (...) as filter, and point
** lookups. Every answer's rows must exist at that generation and match the
** filter, distances are recomputed from the generation's vectors, exact
** answers must be the true k nearest, and every answer must hold
** min(k, matching rows) rows. HNSW recall@10 is accumulated and must stay
** high.
**
** Only SQLITE_BUSY is an acceptable error (handled: a reader retries its
** read, the writer its BEGIN or COMMIT); with a busy timeout it should
** not even occur. When the writer is done, no connection may have a
** statement still active (one would pin an old snapshot), every reader's
** next read must see the last generation, and the table must equal that
** generation and pass both integrity checks.
**
** Reads per second (all readers together, while the writer writes) are
** printed for information; nothing is asserted about time.
*/
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"
#include "vectordb.h"

#define DIM 16
#define MAX_NROW 3000              /* the most rows the model can hold */

/* Rows 1..soakNRow exist or not, about 3/4 of them at any time. Set once
** before any thread starts. */
static int soakNRow = 3000;
#define K 10
#define NPART 4
#define MAX_ACTIONS 16
#define MAX_READERS 16
#define QUERIES_PER_TXN 4

static const char *azGenre[] = { "red", "green", "blue", 0 };

/* ---- the model: generation g -> rows ---------------------------------------- */

static uint64_t soakMix(uint64_t x){
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x>>30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x>>27)) * 0x94D049BB133111EBull;
  return x ^ (x>>31);
}

typedef struct SoakState {
  int g;                              /* generation this state describes */
  unsigned char present[MAX_NROW+1];
  unsigned int vver[MAX_NROW+1];          /* vector version: the vector is a function of it */
  unsigned int gver[MAX_NROW+1];          /* genre version */
  float aVec[MAX_NROW+1][DIM];
} SoakState;

static void soakVector(int r, unsigned int vver, float *a){
  uint64_t h = soakMix(((uint64_t)r<<32) ^ vver);
  int i;
  for(i=0; i<DIM; i++){
    h = soakMix(h);
    a[i] = (float)((double)(h>>11) / 4503599627370496.0 - 1.0);
  }
}

static const char *soakGenre(int r, unsigned int gver){
  return azGenre[soakMix(((uint64_t)r<<32) ^ gver ^ 0x5eedull) % 4];
}

static int soakPart(int r){ return r % NPART; }

static void soakInit(SoakState *p){
  int r;
  memset(p, 0, sizeof(*p));
  for(r=1; r<=soakNRow; r++){
    p->present[r] = soakMix((uint64_t)r) % 4 != 0;
    soakVector(r, 0, p->aVec[r]);
  }
}

#define SOAK_INSERT   1
#define SOAK_DELETE   2
#define SOAK_SETVEC   3
#define SOAK_SETGENRE 4
#define SOAK_REPLACE  5

typedef struct SoakAction { int op, rowid; } SoakAction;

/* Move p from generation p->g to p->g+1; the changes made, in order, go
** to aAct (the writer turns them into SQL). Returns their number. */
static int soakStep(SoakState *p, SoakAction *aAct){
  int g = p->g + 1, n, j;
  uint64_t h = soakMix((uint64_t)g * 7919u);
  n = 1 + (int)(h % 6);
  for(j=0; j<n; j++){
    int r, a;
    unsigned int ver = (unsigned int)g * MAX_ACTIONS + (unsigned int)j + 1;
    h = soakMix(h);
    r = 1 + (int)(h % soakNRow);
    a = (int)((h >> 32) % 10);
    if( !p->present[r] ){
      aAct[j].op = SOAK_INSERT;
      p->present[r] = 1;
      p->vver[r] = p->gver[r] = ver;
    }else if( a<3 ){
      aAct[j].op = SOAK_DELETE;
      p->present[r] = 0;
    }else if( a<6 ){
      aAct[j].op = SOAK_SETVEC;
      p->vver[r] = ver;
    }else if( a<8 ){
      aAct[j].op = SOAK_SETGENRE;
      p->gver[r] = ver;
    }else{
      aAct[j].op = SOAK_REPLACE;
      p->vver[r] = p->gver[r] = ver;
    }
    if( p->present[r] ) soakVector(r, p->vver[r], p->aVec[r]);
    aAct[j].rowid = r;
  }
  p->g = g;
  return n;
}

/* ---- failures and counters, shared by the threads -------------------------------- */

static pthread_mutex_t soakMutex = PTHREAD_MUTEX_INITIALIZER;
static int nSoakFail = 0;
static int soakWriterDone = 0;        /* the writer of the current run has finished */

static void soakFail(const char *zFmt, ...){
  va_list ap;
  pthread_mutex_lock(&soakMutex);
  if( ++nSoakFail<=20 ){
    fprintf(stderr, "FAIL ");
    va_start(ap, zFmt);
    vfprintf(stderr, zFmt, ap);
    va_end(ap);
    fputc('\n', stderr);
  }
  pthread_mutex_unlock(&soakMutex);
}

static int soakFailures(void){
  int n;
  pthread_mutex_lock(&soakMutex);
  n = nSoakFail;
  pthread_mutex_unlock(&soakMutex);
  return n;
}

static void soakSetWriterDone(int v){
  pthread_mutex_lock(&soakMutex);
  soakWriterDone = v;
  pthread_mutex_unlock(&soakMutex);
}

static int soakIsWriterDone(void){
  int v;
  pthread_mutex_lock(&soakMutex);
  v = soakWriterDone;
  pthread_mutex_unlock(&soakMutex);
  return v;
}

static double soakNow(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec*1e-9;
}

static int soakIsBusy(int rc){ return (rc & 0xff)==SQLITE_BUSY; }

static int soakExec(sqlite3 *db, const char *zSql){
  return sqlite3_exec(db, zSql, 0, 0, 0);
}


static sqlite3 *soakOpen(const char *zPath){
  sqlite3 *db = 0;
  if( sqlite3_open(zPath, &db)!=SQLITE_OK ){
    soakFail("open %s: %s", zPath, db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return 0;
  }
  sqlite3_busy_timeout(db, 10000);
  /* WAL without a sync per commit: durability is not under test here. */
  soakExec(db, "PRAGMA synchronous=NORMAL");
  return db;
}

/* No statement of db may still be running between statements: one left
** stepped but not reset (the module's own included) would hold a read
** transaction open, and the connection would never see a newer commit. */
static void soakNoActiveStatement(sqlite3 *db, const char *zWho, int id){
  sqlite3_stmt *pStmt;
  for(pStmt=sqlite3_next_stmt(db, 0); pStmt; pStmt=sqlite3_next_stmt(db, pStmt)){
    if( sqlite3_stmt_busy(pStmt) ){
      soakFail("%s %d: a statement is still active between statements: %s", zWho, id, sqlite3_sql(pStmt));
    }
  }
  if( !sqlite3_get_autocommit(db) ) soakFail("%s %d: a transaction is left open", zWho, id);
}

/* ---- the writer ------------------------------------------------------------------ */

typedef struct SoakWriter {
  const char *zPath;
  int nGen;
  SoakState *pState;                  /* ends at generation nGen */
  int nBusy, nRolledBack;
  int ok;
  double tEnd;                        /* when the last commit returned */
} SoakWriter;

typedef struct SoakWStmts {
  sqlite3_stmt *pInsert, *pReplace, *pDelete, *pSetVec, *pSetGenre, *pGen;
} SoakWStmts;

static int soakStepStmt(sqlite3_stmt *pStmt){
  int rc = sqlite3_step(pStmt);
  int rc2 = sqlite3_reset(pStmt);
  if( rc==SQLITE_DONE || rc==SQLITE_ROW ) return rc2;
  return rc2!=SQLITE_OK ? rc2 : rc;
}

/* Write one row's whole content with pStmt(rowid, e, part, genre). */
static int soakWriteRow(sqlite3_stmt *pStmt, int r, const float *pVec, const char *zGenre){
  sqlite3_bind_int(pStmt, 1, r);
  sqlite3_bind_blob(pStmt, 2, pVec, (int)sizeof(float)*DIM, SQLITE_TRANSIENT);
  sqlite3_bind_int(pStmt, 3, soakPart(r));
  if( zGenre ) sqlite3_bind_text(pStmt, 4, zGenre, -1, SQLITE_STATIC);
  else sqlite3_bind_null(pStmt, 4);
  return soakStepStmt(pStmt);
}

static int soakApply(sqlite3 *db, SoakWStmts *s, const SoakState *p, const SoakAction *a){
  int r = a->rowid, rc = SQLITE_OK;
  (void)db;
  switch( a->op ){
    case SOAK_INSERT:
      rc = soakWriteRow(s->pInsert, r, p->aVec[r], soakGenre(r, p->gver[r]));
      break;
    case SOAK_REPLACE:
      rc = soakWriteRow(s->pReplace, r, p->aVec[r], soakGenre(r, p->gver[r]));
      break;
    case SOAK_DELETE:
      sqlite3_bind_int(s->pDelete, 1, r);
      rc = soakStepStmt(s->pDelete);
      break;
    case SOAK_SETVEC:
      sqlite3_bind_blob(s->pSetVec, 1, p->aVec[r], (int)sizeof(float)*DIM, SQLITE_TRANSIENT);
      sqlite3_bind_int(s->pSetVec, 2, r);
      rc = soakStepStmt(s->pSetVec);
      break;
    case SOAK_SETGENRE: {
      const char *z = soakGenre(r, p->gver[r]);
      if( z ) sqlite3_bind_text(s->pSetGenre, 1, z, -1, SQLITE_STATIC);
      else sqlite3_bind_null(s->pSetGenre, 1);
      sqlite3_bind_int(s->pSetGenre, 2, r);
      rc = soakStepStmt(s->pSetGenre);
      break;
    }
  }
  return rc;
}

/* Changes that are rolled back: rows outside 1..soakNRow, deletes and vector
** updates of rows that exist, and a bogus generation. */
static int soakJunk(sqlite3 *db, SoakWStmts *s, const SoakState *p, int salt){
  float v[DIM];
  int j, rc = SQLITE_OK;
  for(j=0; rc==SQLITE_OK && j<5; j++){
    int r = 1 + (int)(soakMix((uint64_t)salt*31u + (uint64_t)j) % soakNRow);
    soakVector(r, 0xdead0000u + (unsigned)j, v);
    rc = soakWriteRow(s->pInsert, soakNRow + 1 + j, v, "junk");
    if( rc==SQLITE_OK && p->present[r] ){
      if( j & 1 ){
        sqlite3_bind_int(s->pDelete, 1, r);
        rc = soakStepStmt(s->pDelete);
      }else{
        sqlite3_bind_blob(s->pSetVec, 1, v, (int)sizeof(v), SQLITE_TRANSIENT);
        sqlite3_bind_int(s->pSetVec, 2, r);
        rc = soakStepStmt(s->pSetVec);
      }
    }
  }
  if( rc==SQLITE_OK ) rc = soakExec(db, "UPDATE gen SET g = -1");
  return rc;
}

static int soakPrepareWriter(sqlite3 *db, SoakWStmts *s){
  int rc = sqlite3_prepare_v2(db, "INSERT INTO t(rowid, e, part, genre) VALUES (?1, ?2, ?3, ?4)", -1, &s->pInsert, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db,
      "INSERT OR REPLACE INTO t(rowid, e, part, genre) VALUES (?1, ?2, ?3, ?4)", -1, &s->pReplace, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, "DELETE FROM t WHERE rowid = ?1", -1, &s->pDelete, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, "UPDATE t SET e = ?1 WHERE rowid = ?2", -1, &s->pSetVec, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, "UPDATE t SET genre = ?1 WHERE rowid = ?2", -1, &s->pSetGenre, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, "UPDATE gen SET g = ?1", -1, &s->pGen, 0);
  return rc;
}

static void soakFinalizeWriter(SoakWStmts *s){
  sqlite3_finalize(s->pInsert);
  sqlite3_finalize(s->pReplace);
  sqlite3_finalize(s->pDelete);
  sqlite3_finalize(s->pSetVec);
  sqlite3_finalize(s->pSetGenre);
  sqlite3_finalize(s->pGen);
}

/* BEGIN IMMEDIATE, retried while busy. */
static int soakBeginWrite(sqlite3 *db, SoakWriter *w){
  int rc;
  while( soakIsBusy(rc = soakExec(db, "BEGIN IMMEDIATE")) ) w->nBusy++;
  return rc;
}

static int soakCommit(sqlite3 *db, SoakWriter *w){
  int rc;
  while( soakIsBusy(rc = soakExec(db, "COMMIT")) ) w->nBusy++;
  return rc;
}

static void *soakWriterMain(void *pArg){
  SoakWriter *w = (SoakWriter*)pArg;
  SoakWStmts s;
  SoakAction aAct[MAX_ACTIONS];
  sqlite3 *db = soakOpen(w->zPath);
  int rc, g;
  memset(&s, 0, sizeof(s));
  if( db==0 ){
    soakSetWriterDone(1);
    return 0;
  }
  rc = soakPrepareWriter(db, &s);
  if( rc!=SQLITE_OK ) soakFail("writer prepare: %s", sqlite3_errmsg(db));
  for(g=1; rc==SQLITE_OK && g<=w->nGen; g++){
    int n, j;
    if( g%11==0 ){
      /* A whole transaction rolled back: nobody may ever see it. */
      rc = soakBeginWrite(db, w);
      if( rc==SQLITE_OK ) rc = soakJunk(db, &s, w->pState, g);
      if( rc==SQLITE_OK ) rc = soakExec(db, "ROLLBACK");
      if( rc==SQLITE_OK ) w->nRolledBack++;
      if( rc!=SQLITE_OK ) break;
    }
    rc = soakBeginWrite(db, w);
    if( rc==SQLITE_OK && g%7==0 ){
      /* Junk under a savepoint rolled back before the real changes. */
      rc = soakExec(db, "SAVEPOINT junk");
      if( rc==SQLITE_OK ) rc = soakJunk(db, &s, w->pState, g + 1000000);
      if( rc==SQLITE_OK ) rc = soakExec(db, "ROLLBACK TO junk");
      if( rc==SQLITE_OK ) rc = soakExec(db, "RELEASE junk");
    }
    n = soakStep(w->pState, aAct);
    for(j=0; rc==SQLITE_OK && j<n; j++) rc = soakApply(db, &s, w->pState, &aAct[j]);
    if( rc==SQLITE_OK ){
      sqlite3_bind_int(s.pGen, 1, g);
      rc = soakStepStmt(s.pGen);
    }
    if( rc==SQLITE_OK ) rc = soakCommit(db, w);
  }
  if( rc!=SQLITE_OK ){
    soakFail("writer at generation %d: %s (%d)", w->pState->g, sqlite3_errmsg(db), rc);
  }else{
    w->ok = 1;
  }
  w->tEnd = soakNow();
  soakNoActiveStatement(db, "writer", 0);
  soakFinalizeWriter(&s);
  sqlite3_close(db);
  soakSetWriterDone(1);
  return 0;
}

/* ---- the readers -------------------------------------------------------------------- */

#define Q_PLAIN   0                   /* no filter */
#define Q_PART    1                   /* part = ?3 */
#define Q_NOTPART 2                   /* part != ?3: most rows match, the graph walk filters */
#define Q_GENRE   3                   /* genre = ?3 */
#define Q_ROWIDS  4                   /* rowid IN (?3..?10) */
#define Q_KINDS   5
#define N_IN      8

static const char *azFilter[Q_KINDS] = {
  "", " AND part = ?3", " AND part != ?3", " AND genre = ?3",
  " AND rowid IN (?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
};

typedef struct SoakReader {
  const char *zPath;
  int id, nRead;
  SoakState *pState;                  /* advances with the generations read */
  uint64_t rng;
  sqlite3_stmt *apKnn[Q_KINDS];       /* ... AND ef_search = ?11 */
  sqlite3_stmt *pGen, *pLookup;
  int nGenFinal;                      /* the writer's last generation */
  int nQuery, nBusy, nAuto, nAutoSpan;
  int nRecallHit, nRecallWant;
} SoakReader;

/* One query, its parameters and its answer. */
typedef struct SoakQuery {
  int kind, ef, param;
  int aIn[N_IN];
  float q[DIM];
  int nRes;
  int aRowid[K];
  double aDist[K];
} SoakQuery;

static uint64_t soakRand(SoakReader *r){
  r->rng = soakMix(r->rng);
  return r->rng;
}

static int soakMatches(const SoakState *p, const SoakQuery *q, int r){
  int i;
  if( !p->present[r] ) return 0;
  switch( q->kind ){
    case Q_PART: return soakPart(r)==q->param;
    case Q_NOTPART: return soakPart(r)!=q->param;
    case Q_GENRE: {
      const char *z = soakGenre(r, p->gver[r]);
      return z && strcmp(z, azGenre[q->param])==0;
    }
    case Q_ROWIDS:
      for(i=0; i<N_IN; i++) if( q->aIn[i]==r ) return 1;
      return 0;
  }
  return 1;
}

static double soakDist(const float *a, const float *b){
  double s = 0;
  int i;
  for(i=0; i<DIM; i++){ double d = (double)a[i] - (double)b[i]; s += d*d; }
  return sqrt(s);
}

static int soakClose(double a, double b){
  return fabs(a - b) <= 1e-4 * (1.0 + fabs(b));
}

/* Check an answer against state p: NULL if it agrees, else what is wrong
** (a static string; zBuf holds details). */
static const char *soakCheck(SoakReader *rd, const SoakState *p, const SoakQuery *q,
                             char *zBuf, int nBuf){
  double aBest[K];
  int aBestRow[K], nBest = 0, nMatch = 0, r, i, want;
  /* The true k nearest matching rows (insertion into a sorted array). */
  for(r=1; r<=soakNRow; r++){
    double d;
    if( !soakMatches(p, q, r) ) continue;
    nMatch++;
    d = soakDist(q->q, p->aVec[r]);
    if( nBest<K || d<aBest[nBest-1] ){
      i = nBest<K ? nBest++ : K-1;
      while( i>0 && aBest[i-1]>d ){ aBest[i] = aBest[i-1]; aBestRow[i] = aBestRow[i-1]; i--; }
      aBest[i] = d;
      aBestRow[i] = r;
    }
  }
  want = nMatch<K ? nMatch : K;
  if( q->nRes!=want ){
    snprintf(zBuf, (size_t)nBuf, "%d rows, expected %d (of %d matching)", q->nRes, want, nMatch);
    return zBuf;
  }
  for(i=0; i<q->nRes; i++){
    r = q->aRowid[i];
    if( r<1 || r>soakNRow || !soakMatches(p, q, r) ){
      snprintf(zBuf, (size_t)nBuf, "row %d does not exist or does not match", r);
      return zBuf;
    }
    if( !soakClose(q->aDist[i], soakDist(q->q, p->aVec[r])) ){
      snprintf(zBuf, (size_t)nBuf, "row %d distance %.6f, its vector gives %.6f",
               r, q->aDist[i], soakDist(q->q, p->aVec[r]));
      return zBuf;
    }
    if( i>0 && q->aDist[i]<q->aDist[i-1] ){
      snprintf(zBuf, (size_t)nBuf, "not sorted by distance at %d", i);
      return zBuf;
    }
    if( q->ef==0 && !soakClose(q->aDist[i], aBest[i]) ){
      snprintf(zBuf, (size_t)nBuf, "exact answer %d is row %d at %.6f, expected row %d at %.6f",
               i, r, q->aDist[i], aBestRow[i], aBest[i]);
      return zBuf;
    }
  }
  if( q->ef>0 && q->kind==Q_PLAIN ){
    int j, hit = 0;
    for(i=0; i<q->nRes; i++){
      for(j=0; j<nBest; j++) if( aBestRow[j]==q->aRowid[i] ){ hit++; break; }
    }
    rd->nRecallHit += hit;
    rd->nRecallWant += want;
  }
  return 0;
}

/* Run q; SQLITE_OK, SQLITE_BUSY or another error. */
static int soakRunQuery(SoakReader *rd, SoakQuery *q){
  sqlite3_stmt *pStmt = rd->apKnn[q->kind];
  int rc, i;
  sqlite3_bind_blob(pStmt, 1, q->q, (int)sizeof(q->q), SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 2, K);
  if( q->kind==Q_ROWIDS ){
    for(i=0; i<N_IN; i++) sqlite3_bind_int(pStmt, 3+i, q->aIn[i]);
  }else if( q->kind==Q_GENRE ){
    sqlite3_bind_text(pStmt, 3, azGenre[q->param], -1, SQLITE_STATIC);
  }else if( q->kind!=Q_PLAIN ){
    sqlite3_bind_int(pStmt, 3, q->param);
  }
  sqlite3_bind_int(pStmt, 11, q->ef);
  q->nRes = 0;
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    if( q->nRes<K ){
      q->aRowid[q->nRes] = sqlite3_column_int(pStmt, 0);
      q->aDist[q->nRes] = sqlite3_column_double(pStmt, 1);
    }
    q->nRes++;
  }
  rc = sqlite3_reset(pStmt);
  rd->nQuery++;
  return rc;
}

static void soakMakeQuery(SoakReader *rd, SoakQuery *q){
  static const int aEf[] = { 0, 0, 10, 16, 64 };
  int i;
  memset(q, 0, sizeof(*q));
  q->kind = (int)(soakRand(rd) % Q_KINDS);
  q->ef = aEf[soakRand(rd) % 5];
  /* A small beam under a broad filter: the graph walk answers. */
  if( q->kind==Q_NOTPART && q->ef>0 ) q->ef = 2;
  q->param = (int)(soakRand(rd) % (q->kind==Q_GENRE ? 3 : NPART));
  for(i=0; i<N_IN; i++) q->aIn[i] = 1 + (int)(soakRand(rd) % (soakNRow + 8));
  for(i=0; i<DIM; i++) q->q[i] = (float)((double)(soakRand(rd)>>11) / 4503599627370496.0 - 1.0);
}

/* SELECT g FROM gen; -1 with *pRc set on error. */
static int soakReadGen(SoakReader *rd, int *pRc){
  int g = -1, rc;
  rc = sqlite3_step(rd->pGen);
  if( rc==SQLITE_ROW ) g = sqlite3_column_int(rd->pGen, 0);
  *pRc = sqlite3_reset(rd->pGen);
  if( *pRc==SQLITE_OK && rc!=SQLITE_ROW ) *pRc = SQLITE_ERROR;
  return g;
}

static int soakAdvanceTo(SoakState *p, int g){
  SoakAction aAct[MAX_ACTIONS];
  if( g<p->g ) return 0;
  while( p->g<g ) soakStep(p, aAct);
  return 1;
}

/* A point lookup: the row's stored vector, partition and genre. */
static int soakLookup(SoakReader *rd, const SoakState *p, int r){
  int rc, found = 0;
  sqlite3_bind_int(rd->pLookup, 1, r);
  rc = sqlite3_step(rd->pLookup);
  if( rc==SQLITE_ROW ){
    const unsigned char *zGenre = sqlite3_column_text(rd->pLookup, 2);
    const char *zWant = soakGenre(r, p->gver[r]);
    found = 1;
    if( !p->present[r] ){
      soakFail("reader %d: row %d exists at generation %d", rd->id, r, p->g);
    }else if( sqlite3_column_bytes(rd->pLookup, 0)!=(int)sizeof(float)*DIM
     || memcmp(sqlite3_column_blob(rd->pLookup, 0), p->aVec[r], sizeof(float)*DIM)!=0 ){
      soakFail("reader %d: row %d has another vector than at generation %d", rd->id, r, p->g);
    }else if( sqlite3_column_int(rd->pLookup, 1)!=soakPart(r)
     || (zWant==0)!=(zGenre==0) || (zWant && strcmp(zWant, (const char*)zGenre)!=0) ){
      soakFail("reader %d: row %d has other columns than at generation %d", rd->id, r, p->g);
    }
  }
  rc = sqlite3_reset(rd->pLookup);
  rd->nQuery++;
  if( rc==SQLITE_OK && !found && p->present[r] ){
    soakFail("reader %d: row %d is missing at generation %d", rd->id, r, p->g);
  }
  return rc;
}

/* One read transaction: g, then several queries checked against g. */
static int soakReadTxn(SoakReader *rd, sqlite3 *db){
  char zBuf[200];
  int rc, g, i;
  rc = soakExec(db, "BEGIN");
  if( rc!=SQLITE_OK ) return rc;
  g = soakReadGen(rd, &rc);
  if( rc==SQLITE_OK && !soakAdvanceTo(rd->pState, g) ){
    soakFail("reader %d: generation %d after %d", rd->id, g, rd->pState->g);
  }
  for(i=0; rc==SQLITE_OK && i<QUERIES_PER_TXN; i++){
    SoakQuery q;
    if( soakRand(rd) % 4==0 ){
      rc = soakLookup(rd, rd->pState, 1 + (int)(soakRand(rd) % soakNRow));
      continue;
    }
    soakMakeQuery(rd, &q);
    rc = soakRunQuery(rd, &q);
    if( rc==SQLITE_OK ){
      const char *zErr = soakCheck(rd, rd->pState, &q, zBuf, sizeof(zBuf));
      if( zErr ){
        soakFail("reader %d, generation %d, %s%s ef_search=%d: %s",
                 rd->id, g, "KNN", azFilter[q.kind], q.ef, zErr);
      }
    }
  }
  if( rc==SQLITE_OK ) rc = soakExec(db, "COMMIT");
  else soakExec(db, "ROLLBACK");
  return rc;
}

/* Autocommit: g1, one query, g2; the answer agrees with a generation in
** g1..g2 (the state advances to the first that fits). */
static int soakReadAuto(SoakReader *rd){
  char zBuf[200];
  const char *zErr = 0;
  SoakQuery q;
  int rc, g1, g2 = -1;
  g1 = soakReadGen(rd, &rc);
  if( rc!=SQLITE_OK ) return rc;
  soakMakeQuery(rd, &q);
  rc = soakRunQuery(rd, &q);
  if( rc==SQLITE_OK ) g2 = soakReadGen(rd, &rc);
  if( rc!=SQLITE_OK ) return rc;
  if( g2<g1 || !soakAdvanceTo(rd->pState, g1) ){
    soakFail("reader %d: generations went backwards (%d, %d, %d)", rd->id, rd->pState->g, g1, g2);
    return SQLITE_OK;
  }
  rd->nAuto++;
  if( g2>g1 ) rd->nAutoSpan++;
  while( (zErr = soakCheck(rd, rd->pState, &q, zBuf, sizeof(zBuf)))!=0 && rd->pState->g<g2 ){
    soakAdvanceTo(rd->pState, rd->pState->g + 1);
  }
  if( zErr ){
    soakFail("reader %d, autocommit, generations %d..%d, KNN%s ef_search=%d: %s",
             rd->id, g1, g2, azFilter[q.kind], q.ef, zErr);
  }
  return SQLITE_OK;
}

static int soakPrepareReader(SoakReader *rd, sqlite3 *db){
  int rc = SQLITE_OK, i;
  for(i=0; rc==SQLITE_OK && i<Q_KINDS; i++){
    char *zSql = sqlite3_mprintf("SELECT rowid, distance FROM t WHERE e MATCH ?1 AND k = ?2%s"
                                 " AND ef_search = ?11", azFilter[i]);
    rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &rd->apKnn[i], 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
  }
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, "SELECT g FROM gen", -1, &rd->pGen, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "SELECT e, part, genre FROM t WHERE rowid = ?1", -1, &rd->pLookup, 0);
  }
  return rc;
}

/* After the writer's last commit: a new read must see it, and agree with
** it. */
static int soakReaderEnd(SoakReader *rd, sqlite3 *db){
  int rc, g;
  soakNoActiveStatement(db, "reader", rd->id);
  g = soakReadGen(rd, &rc);
  if( rc==SQLITE_OK && g!=rd->nGenFinal ){
    soakFail("reader %d sees generation %d after the writer's last commit, %d", rd->id, g, rd->nGenFinal);
  }
  if( rc==SQLITE_OK ){
    do{ rc = soakReadTxn(rd, db); }while( soakIsBusy(rc) );
  }
  return rc;
}

static void *soakReaderMain(void *pArg){
  SoakReader *rd = (SoakReader*)pArg;
  sqlite3 *db = soakOpen(rd->zPath);
  int rc = SQLITE_OK, i;
  if( db==0 ) return 0;
  rc = soakPrepareReader(rd, db);
  if( rc!=SQLITE_OK ) soakFail("reader %d prepare: %s", rd->id, sqlite3_errmsg(db));
  /* At least nRead queries, and on until the writer is done, so that the
  ** writer never runs alone. */
  while( rc==SQLITE_OK && (rd->nQuery<rd->nRead || !soakIsWriterDone()) ){
    rc = soakRand(rd) % 5==0 ? soakReadAuto(rd) : soakReadTxn(rd, db);
    if( soakIsBusy(rc) ){
      rd->nBusy++;
      rc = SQLITE_OK;
    }
  }
  if( rc==SQLITE_OK ) rc = soakReaderEnd(rd, db);
  if( rc!=SQLITE_OK ){
    soakFail("reader %d at generation %d: %s (%d)", rd->id, rd->pState->g, sqlite3_errmsg(db), rc);
  }
  for(i=0; i<Q_KINDS; i++) sqlite3_finalize(rd->apKnn[i]);
  sqlite3_finalize(rd->pGen);
  sqlite3_finalize(rd->pLookup);
  sqlite3_close(db);
  return 0;
}

/* ---- a run -------------------------------------------------------------------------- */

static int soakSetup(const char *zPath, const SoakState *p, int cacheMb, int isWal){
  sqlite3 *db;
  sqlite3_stmt *pStmt = 0;
  int rc, r;
  unlink(zPath);
  {
    char zAux[512];
    snprintf(zAux, sizeof(zAux), "%s-wal", zPath);
    unlink(zAux);
    snprintf(zAux, sizeof(zAux), "%s-shm", zPath);
    unlink(zAux);
    snprintf(zAux, sizeof(zAux), "%s-journal", zPath);
    unlink(zAux);
  }
  db = soakOpen(zPath);
  if( db==0 ) return SQLITE_CANTOPEN;
  rc = soakExec(db, isWal ? "PRAGMA journal_mode=WAL" : "PRAGMA journal_mode=DELETE");
  if( rc==SQLITE_OK ) rc = soakExec(db,
      "CREATE VIRTUAL TABLE t USING vectordb(e float[16] INDEXED BY hnsw(m=8, ef_construction=64),"
      " part integer partition key, genre text);"
      "CREATE TABLE gen(id INTEGER PRIMARY KEY CHECK(id=1), g INTEGER NOT NULL);"
      "INSERT INTO gen VALUES (1, 0);"
      "BEGIN");
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "INSERT INTO t(rowid, e, part, genre) VALUES (?1, ?2, ?3, ?4)", -1, &pStmt, 0);
  }
  for(r=1; rc==SQLITE_OK && r<=soakNRow; r++){
    if( p->present[r] ) rc = soakWriteRow(pStmt, r, p->aVec[r], soakGenre(r, p->gver[r]));
  }
  sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK ) rc = soakExec(db, "COMMIT");
  if( rc==SQLITE_OK && cacheMb>0 ){
    char *zCmd = sqlite3_mprintf("INSERT INTO t(t) VALUES ('cache_mb=%d')", cacheMb);
    rc = soakExec(db, zCmd);
    sqlite3_free(zCmd);
  }
  if( rc!=SQLITE_OK ) soakFail("setup: %s", sqlite3_errmsg(db));
  sqlite3_close(db);
  return rc;
}

static char *soakText(sqlite3 *db, const char *zSql){
  sqlite3_stmt *pStmt = 0;
  char *z = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    z = sqlite3_mprintf("%s", (const char*)sqlite3_column_text(pStmt, 0));
  }else{
    z = sqlite3_mprintf("error: %s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
  return z;
}

/* After the run: the table is exactly the writer's last generation, and
** both integrity checks pass. */
static void soakFinalCheck(const char *zPath, const SoakState *p){
  sqlite3 *db = soakOpen(zPath);
  sqlite3_stmt *pStmt = 0;
  unsigned char seen[MAX_NROW+1];
  int r, nBad = 0;
  char *z;
  if( db==0 ) return;
  memset(seen, 0, sizeof(seen));
  z = soakText(db, "PRAGMA integrity_check");
  CHECK(strcmp(z, "ok")==0, "PRAGMA integrity_check: %s", z);
  sqlite3_free(z);
  z = soakText(db, "SELECT vectordb_check('t')");
  CHECK(strcmp(z, "ok")==0, "vectordb_check: %s", z);
  sqlite3_free(z);
  z = soakText(db, "SELECT g FROM gen");
  CHECK(atoi(z)==p->g, "generation %s, the writer ended at %d", z, p->g);
  sqlite3_free(z);
  if( sqlite3_prepare_v2(db, "SELECT rowid, e, part, genre FROM t", -1, &pStmt, 0)==SQLITE_OK ){
    while( sqlite3_step(pStmt)==SQLITE_ROW ){
      const char *zG = (const char*)sqlite3_column_text(pStmt, 3);
      const char *zWant;
      r = sqlite3_column_int(pStmt, 0);
      if( r<1 || r>soakNRow || !p->present[r] ){ nBad++; continue; }
      seen[r] = 1;
      zWant = soakGenre(r, p->gver[r]);
      if( sqlite3_column_bytes(pStmt, 1)!=(int)sizeof(float)*DIM
       || memcmp(sqlite3_column_blob(pStmt, 1), p->aVec[r], sizeof(float)*DIM)!=0
       || sqlite3_column_int(pStmt, 2)!=soakPart(r)
       || (zWant==0)!=(zG==0) || (zWant && strcmp(zWant, zG)!=0) ){
        nBad++;
      }
    }
  }
  sqlite3_finalize(pStmt);
  for(r=1; r<=soakNRow; r++) if( p->present[r] && !seen[r] ) nBad++;
  CHECK(nBad==0, "%d rows differ from the last generation", nBad);
  sqlite3_close(db);
}

/* One run: a new database, the writer and nReader readers; cacheMb>0
** sets the graph cache budget of every connection (1 MiB holds about
** 2,000 of the table's nodes, so the caches evict and reload); isWal==0
** uses a rollback journal, where readers and the writer do block each
** other (the busy timeout waits). */
static void soakRun(const char *zPath, int nGen, int nRead, int nReader, int cacheMb, int isWal){
  SoakWriter w;
  SoakReader aRd[MAX_READERS];
  pthread_t aThread[MAX_READERS + 1];
  SoakState *pInit = (SoakState*)malloc(sizeof(SoakState));
  int i, nFailBefore = soakFailures(), nQuery = 0, nBusy = 0, nHit = 0, nWant = 0;
  int nAuto = 0, nSpan = 0;
  double t0, t1;

  soakInit(pInit);
  if( soakSetup(zPath, pInit, cacheMb, isWal)!=SQLITE_OK ){ free(pInit); CHECK(0, "setup"); return; }
  memset(&w, 0, sizeof(w));
  w.zPath = zPath;
  w.nGen = nGen;
  w.pState = (SoakState*)malloc(sizeof(SoakState));
  *w.pState = *pInit;
  memset(aRd, 0, sizeof(aRd));
  for(i=0; i<nReader; i++){
    aRd[i].zPath = zPath;
    aRd[i].id = i;
    aRd[i].nRead = nRead;
    aRd[i].nGenFinal = nGen;
    aRd[i].rng = 0x1234567ull + (uint64_t)i * 1000003u + (uint64_t)nReader * 77u;
    aRd[i].pState = (SoakState*)malloc(sizeof(SoakState));
    *aRd[i].pState = *pInit;
  }
  soakSetWriterDone(0);
  t0 = soakNow();
  pthread_create(&aThread[0], 0, soakWriterMain, &w);
  for(i=0; i<nReader; i++) pthread_create(&aThread[i+1], 0, soakReaderMain, &aRd[i]);
  for(i=0; i<nReader; i++){
    pthread_join(aThread[i+1], 0);
    nQuery += aRd[i].nQuery;
    nBusy += aRd[i].nBusy;
    nHit += aRd[i].nRecallHit;
    nWant += aRd[i].nRecallWant;
    nAuto += aRd[i].nAuto;
    nSpan += aRd[i].nAutoSpan;
  }
  t1 = soakNow();
  pthread_join(aThread[0], 0);

  CHECK(w.ok, "the writer finished its %d generations", nGen);
  CHECK(soakFailures()==nFailBefore, "%d reads or writes went wrong with %d readers",
        soakFailures() - nFailBefore, nReader);
  CHECK(nQuery>=nRead*nReader, "every reader ran its %d queries", nRead);
  /* A graph read from a stale or torn cache would fall far below this. */
  CHECK(nWant==0 || nHit >= 0.8*nWant, "HNSW recall@10 %d/%d", nHit, nWant);
  soakFinalCheck(zPath, w.pState);
  printf("%d reader%s%s%s: %d queries in %.2f s: %.0f reads/s; the writer's %d generations"
         " (%d more rolled back) took %.2f s; busy: writer %d, readers %d;"
         " %d autocommit reads (%d spanning commits); HNSW recall@10 %.4f\n",
         nReader, nReader==1 ? "" : "s", cacheMb ? ", 1 MiB graph caches" : "",
         isWal ? "" : ", rollback journal",
         nQuery, t1 - t0, nQuery / (t1 - t0),
         nGen, w.nRolledBack, w.tEnd - t0, w.nBusy, nBusy, nAuto, nSpan,
         nWant ? (double)nHit/nWant : 1.0);
  for(i=0; i<nReader; i++) free(aRd[i].pState);
  free(w.pState);
  free(pInit);
}

/* ---- a bulk load linked in the background ---------------------------------------
** With threads=2 a batch's first round links on another thread while this
** one inserts the next rows (vdbLinkStart). Under ThreadSanitizer
** (tsan-soak) this checks that the inserts and the round share nothing
** unguarded; everywhere it checks that a query, a delete, a savepoint's
** rollback, a ROLLBACK and a close in the middle of a round leave the
** table and its graph as the statements that stand say. */
#define BULK_ROWS 3000
#define BULK_MORE 1500

static void soakBulkVector(int r, float *v){
  unsigned int x = 2654435761u*(unsigned)r + 1;
  int i;
  for(i=0; i<DIM; i++){
    x = x*1664525u + 1013904223u;
    v[i] = (float)(x >> 8)/(float)(1u << 24);
  }
}

/* Insert rows iFirst..iLast; after row iKnn (0: none) the nearest row to
** row 7's vector must be row 7. */
static int soakBulkInsert(sqlite3 *db, int iFirst, int iLast, int iKnn){
  sqlite3_stmt *pIns = 0, *pKnn = 0;
  float v[DIM];
  int r, rc;
  rc = sqlite3_prepare_v2(db, "INSERT INTO b(rowid, e) VALUES (?1, ?2)", -1, &pIns, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, "SELECT rowid FROM b WHERE e MATCH ?1 AND k = 1", -1, &pKnn, 0);
  for(r=iFirst; rc==SQLITE_OK && r<=iLast; r++){
    soakBulkVector(r, v);
    sqlite3_bind_int(pIns, 1, r);
    sqlite3_bind_blob(pIns, 2, v, (int)sizeof(v), SQLITE_STATIC);
    sqlite3_step(pIns);
    rc = sqlite3_reset(pIns);
    if( rc==SQLITE_OK && r==iKnn ){
      soakBulkVector(7, v);
      sqlite3_bind_blob(pKnn, 1, v, (int)sizeof(v), SQLITE_STATIC);
      CHECK(sqlite3_step(pKnn)==SQLITE_ROW && sqlite3_column_int(pKnn, 0)==7,
            "bulk load: a query in the middle of a round finds row 7");
      rc = sqlite3_reset(pKnn);
    }
  }
  sqlite3_finalize(pIns);
  sqlite3_finalize(pKnn);
  return rc;
}

static void soakBulkCheck(sqlite3 *db, const char *zWhen){
  const int nWant = BULK_ROWS - 50;
  char *z = soakText(db, "SELECT count(*) FROM b");
  CHECK(atoi(z)==nWant, "bulk load, %s: %s rows, want %d", zWhen, z, nWant);
  sqlite3_free(z);
  z = soakText(db, "SELECT vectordb_check('b')");
  CHECK(strcmp(z, "ok")==0, "bulk load, %s: vectordb_check: %s", zWhen, z);
  sqlite3_free(z);
}

static void soakBulk(const char *zPath){
  sqlite3 *db;
  char zAux[300];
  char *z;
  int rc;
  unlink(zPath);
  snprintf(zAux, sizeof(zAux), "%s-journal", zPath);
  unlink(zAux);
  db = soakOpen(zPath);
  if( db==0 ) return;
  rc = soakExec(db, "CREATE VIRTUAL TABLE b USING vectordb(e float[16] INDEXED BY"
                    " hnsw(m=8, ef_construction=32, threads=2)); BEGIN");
  if( rc==SQLITE_OK ) rc = soakBulkInsert(db, 1, 2600, 1500);   /* rounds start at 1,024 and 2,524 */
  if( rc==SQLITE_OK ) rc = soakExec(db, "DELETE FROM b WHERE rowid BETWEEN 100 AND 149");
  if( rc==SQLITE_OK ) rc = soakBulkInsert(db, 2601, BULK_ROWS, 0);
  if( rc==SQLITE_OK ) rc = soakExec(db, "SAVEPOINT s");
  if( rc==SQLITE_OK ) rc = soakBulkInsert(db, BULK_ROWS+1, BULK_ROWS+BULK_MORE, 0);
  if( rc==SQLITE_OK ) rc = soakExec(db, "ROLLBACK TO s; RELEASE s; COMMIT");
  CHECK(rc==SQLITE_OK, "bulk load: %s", sqlite3_errmsg(db));
  z = soakText(db, "SELECT value FROM vectordb_stats('b') WHERE key='background_link_rounds'");
  CHECK(atoi(z)>=2, "bulk load: %s rounds in the background", z);
  sqlite3_free(z);
  z = soakText(db, "SELECT value FROM vectordb_stats('b') WHERE key='background_rounds_cancelled'");
  CHECK(atoi(z)>=1, "bulk load: %s background rounds cancelled (ROLLBACK TO)", z);
  sqlite3_free(z);
  soakBulkCheck(db, "committed");
  rc = soakExec(db, "BEGIN");
  if( rc==SQLITE_OK ) rc = soakBulkInsert(db, BULK_ROWS+1, BULK_ROWS+BULK_MORE, 0);
  if( rc==SQLITE_OK ) rc = soakExec(db, "ROLLBACK");
  CHECK(rc==SQLITE_OK, "bulk load, rolled back: %s", sqlite3_errmsg(db));
  soakBulkCheck(db, "after a ROLLBACK");
  rc = soakExec(db, "BEGIN");
  if( rc==SQLITE_OK ) rc = soakBulkInsert(db, BULK_ROWS+1, BULK_ROWS+BULK_MORE, 0);
  CHECK(rc==SQLITE_OK, "bulk load, left open: %s", sqlite3_errmsg(db));
  sqlite3_close(db);                       /* a round under way: cancelled, rolled back */
  db = soakOpen(zPath);
  if( db==0 ) return;
  soakBulkCheck(db, "after a close with a transaction open");
  sqlite3_close(db);
  unlink(zPath);
}

int main(int argc, char **argv){
  int nGen = argc>1 ? atoi(argv[1]) : 300;
  int nRead = argc>2 ? atoi(argv[2]) : 400;
  int nMax = argc>3 ? atoi(argv[3]) : 4;
  int nRow = argc>4 ? atoi(argv[4]) : MAX_NROW;
  char zPath[256];
  const char *zTmp = getenv("TMPDIR");
  if( nMax<1 ) nMax = 1;
  if( nRow<50 ) nRow = 50;
  if( nRow>MAX_NROW ) nRow = MAX_NROW;
  soakNRow = nRow;
  if( nMax>MAX_READERS ) nMax = MAX_READERS;
  snprintf(zPath, sizeof(zPath), "%s/vectordb-soak-%d.db", zTmp ? zTmp : "/tmp", (int)getpid());
  CHECK(sqlite3_threadsafe()!=0, "SQLite is built thread-safe");
  sqlite3_auto_extension((void(*)(void))sqlite3_vectordb_init);
  soakBulk(zPath);
  soakRun(zPath, nGen, nRead, 1, 0, 1);
  soakRun(zPath, nGen, nRead, 2, 0, 1);
  soakRun(zPath, nGen, nRead, nMax, 1, 1);
  soakRun(zPath, nGen, nRead, 2, 0, 0);
  {
    char zAux[300];
    unlink(zPath);
    snprintf(zAux, sizeof(zAux), "%s-wal", zPath);
    unlink(zAux);
    snprintf(zAux, sizeof(zAux), "%s-shm", zPath);
    unlink(zAux);
  }
  sqlite3_reset_auto_extension();
  return tuFinish();
}
