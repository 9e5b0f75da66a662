/*
** Scenarios shared by the fault-injection tests (test_faults.c: I/O errors
** and power loss through tests/faultvfs.c; test_oom.c: failing
** allocations).
**
** The database holds an HNSW-indexed vectordb table and a ledger:
**
**   items  USING vectordb(embedding float[8] INDEXED BY hnsw(m=4, ...), tag integer)
**   ledger(tx INTEGER PRIMARY KEY, note TEXT)
**
** Every write transaction of a scenario inserts its id into the ledger,
** so after any failure the ledger says which transactions committed.
** A C model of the table (rowid -> vector, tag) follows the transactions;
** the checks compare the database with the model that the ledger implies:
** every row and vector, exact and graph KNN against a recomputation in C,
** PRAGMA integrity_check and vectordb_check().
**
** A transaction's outcome, as the caller sees it:
**   COMMITTED  COMMIT returned SQLITE_OK: it must be there;
**   ABORTED    it failed before COMMIT, or did not start: it must not be;
**   MAYBE      COMMIT failed: either, but whole (SQLite may have made it
**              durable before the failing step, as a WAL commit whose
**              frames were written before the sync failed).
** The scenarios (scBuildScenarios), two or three transactions each:
**   insert     single-row and multi-row inserts into the graph
**   delete     deletes with graph repair, an insert deleted again
**   update     new vectors (a new node each), tags, a rowid, INSERT OR REPLACE
**   query      graph, filtered and exact KNN in autocommit mode, then a write
**   savepoint  SAVEPOINT / ROLLBACK TO / RELEASE inside BEGIN, and a
**              transaction opened by SAVEPOINT and rolled back to its start
**   rename     ALTER TABLE RENAME there and back with graph changes pending
**   bulk       enough inserts in one transaction for their links to be made
**              by two threads (threads=0: one per core), a query that
**              needs them linked inside it, and more linked at COMMIT
** A statement that fails inside an open transaction is retried once (the
** fault, if transient, is gone) to test that the statement's rollback left
** the table and its graph cache coherent; if it fails again, or SQLite
** rolled the transaction back, the transaction is ABORTED.
*/
#ifndef FAULTSCEN_H
#define FAULTSCEN_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>
#include "testutil.h"
#include "vectordb.h"

#define SC_DIM       8
#define SC_MAXROWS   1024
#define SC_MAXOP     40
#define SC_MAXTX     24
#define SC_K         5
#define SC_NBASE     48

/* ---- the model ------------------------------------------------------------ */

typedef struct ScRow {
  sqlite3_int64 rowid;
  int tag;
  float aVec[SC_DIM];
} ScRow;

typedef struct ScModel {
  int n;
  ScRow aRow[SC_MAXROWS];
} ScModel;

/* The vector of (rowid, version): deterministic, so a run can be replayed. */
static void scVector(sqlite3_int64 rowid, int ver, float *a){
  unsigned long long x = 0x9E3779B97F4A7C15ull ^ ((unsigned long long)rowid*7919u + (unsigned long long)ver*104729u);
  int i;
  for(i=0; i<SC_DIM; i++){
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    a[i] = (float)((double)((x*2685821657736338717ull) >> 11) / 4503599627370496.0 - 1.0);
  }
}

static int scFind(const ScModel *m, sqlite3_int64 rowid){
  int i;
  for(i=0; i<m->n; i++) if( m->aRow[i].rowid==rowid ) return i;
  return -1;
}

/* ---- scenarios -------------------------------------------------------------- */

enum {
  SC_INSERT = 1, SC_DELETE, SC_UPD_VEC, SC_UPD_TAG, SC_UPD_ROWID, SC_QUERY, SC_QUERY_TAG,
  SC_SAVEPOINT, SC_ROLLBACK_TO, SC_RELEASE, SC_LEDGER, SC_INSERT3, SC_REPLACE, SC_RENAME,
  SC_ROLLBACK_TX
};

/* SC_INSERT3 inserts rowid, rowid+1 and rowid+2 in one statement. Single-
** row writes run without a statement journal; multi-row ones (SC_INSERT3,
** the ledger's INSERT ... SELECT form) have one, so SQLite calls xSavepoint
** before them -- where the graph cache is flushed -- and rolls back just
** the statement when it fails for want of memory. */
typedef struct ScOp {
  int e;
  sqlite3_int64 rowid;              /* SC_UPD_ROWID: the old rowid */
  int ver;                          /* vector version; SC_QUERY*: query number */
  int tag;                          /* SC_UPD_ROWID: the new rowid; SC_LEDGER: 1 for INSERT ... SELECT;
                                    ** SC_QUERY: 1 for an exact scan; SC_RENAME: 1 to items_r, 0 back */
} ScOp;

typedef struct ScTx {
  int id;                           /* ledger id, unique in the run */
  int noTxn;                        /* statements in autocommit mode, no ledger (reads) */
  int spTxn;                        /* SAVEPOINT tx ... RELEASE tx instead of BEGIN ... COMMIT;
                                    ** SC_ROLLBACK_TX rolls back to its start */
  int nOp;
  ScOp aOp[SC_MAXOP];
} ScTx;

typedef struct ScScenario {
  char zName[32];
  int timingDependent;              /* threads link its rows: how many allocations
                                    ** and writes it makes varies from run to run */
  int nTx;
  ScTx aTx[SC_MAXTX];
} ScScenario;

static ScOp *scAdd(ScTx *t, int e, sqlite3_int64 rowid, int ver, int tag){
  ScOp *o = &t->aOp[t->nOp++];
  o->e = e; o->rowid = rowid; o->ver = ver; o->tag = tag;
  return o;
}

/* Apply one write op to a model (queries and the ledger change nothing;
** savepoints are handled by the caller). SQL semantics: a DELETE or
** UPDATE of an absent row does nothing. */
static void scApply(ScModel *m, const ScOp *o){
  int i = scFind(m, o->rowid);
  switch( o->e ){
    case SC_INSERT3: {
      int j;
      for(j=0; j<3; j++){
        ScOp o1 = *o;
        o1.e = SC_INSERT;
        o1.rowid = o->rowid + j;
        scApply(m, &o1);
      }
      break;
    }
    case SC_INSERT:
      if( i<0 && m->n<SC_MAXROWS ){
        ScRow *r = &m->aRow[m->n++];
        r->rowid = o->rowid;
        r->tag = o->tag;
        scVector(o->rowid, o->ver, r->aVec);
      }
      break;
    case SC_DELETE:
      if( i>=0 ) m->aRow[i] = m->aRow[--m->n];
      break;
    case SC_UPD_VEC:
      if( i>=0 ) scVector(o->rowid, o->ver, m->aRow[i].aVec);
      break;
    case SC_UPD_TAG:
      if( i>=0 ) m->aRow[i].tag = o->tag;
      break;
    case SC_REPLACE:
      if( i>=0 ){
        scVector(o->rowid, o->ver, m->aRow[i].aVec);
        m->aRow[i].tag = o->tag;
      }else{
        ScOp o1 = *o;
        o1.e = SC_INSERT;
        scApply(m, &o1);
      }
      break;
    case SC_UPD_ROWID:
      if( i>=0 && scFind(m, o->tag)<0 ) m->aRow[i].rowid = o->tag;
      break;
  }
}

/* A whole committed transaction, savepoints included. */
static void scApplyTx(ScModel *m, const ScTx *t){
  static ScModel aSave[4], start;
  int nSave = 0, i;
  start = *m;
  for(i=0; i<t->nOp; i++){
    const ScOp *o = &t->aOp[i];
    if( o->e==SC_ROLLBACK_TX ){ *m = start; }
    else if( o->e==SC_SAVEPOINT ){ aSave[nSave++] = *m; }
    else if( o->e==SC_ROLLBACK_TO ){ *m = aSave[nSave-1]; }
    else if( o->e==SC_RELEASE ){ nSave--; }
    else scApply(m, o);
  }
}

static void scBaseModel(ScModel *m){
  int i;
  m->n = 0;
  for(i=1; i<=SC_NBASE; i++){
    ScOp o = {SC_INSERT, i, 0, i%4};
    scApply(m, &o);
  }
}

/* The short scenarios: each is two or three transactions, so a fault in
** one is followed by work on whatever it left. Rowids of new rows start at
** 1000 and are never reused. */
static int scBuildScenarios(ScScenario *a){
  int n = 0, i, id = 1;
  ScTx *t;
  ScScenario *s;

  s = &a[n++]; memset(s, 0, sizeof(*s)); sqlite3_snprintf(32, s->zName, "insert");
  t = &s->aTx[s->nTx++]; t->id = id++;
  for(i=0; i<3; i++) scAdd(t, SC_INSERT, 1000+i, 0, i%4);
  scAdd(t, SC_INSERT3, 1003, 0, 3);
  scAdd(t, SC_LEDGER, 0, 0, 1);
  t = &s->aTx[s->nTx++]; t->id = id++;
  scAdd(t, SC_LEDGER, 0, 0, 0);
  for(i=0; i<3; i++) scAdd(t, SC_INSERT, 1010+i, 0, 1);
  scAdd(t, SC_QUERY, 0, 1, 0);

  s = &a[n++]; memset(s, 0, sizeof(*s)); sqlite3_snprintf(32, s->zName, "delete");
  t = &s->aTx[s->nTx++]; t->id = id++;
  for(i=0; i<6; i++) scAdd(t, SC_DELETE, 3 + 7*i, 0, 0);
  scAdd(t, SC_LEDGER, 0, 0, 1);
  t = &s->aTx[s->nTx++]; t->id = id++;
  scAdd(t, SC_INSERT, 1020, 0, 2);
  scAdd(t, SC_DELETE, 5, 0, 0);
  scAdd(t, SC_QUERY, 0, 2, 0);
  scAdd(t, SC_DELETE, 1020, 0, 0);
  scAdd(t, SC_LEDGER, 0, 0, 0);

  s = &a[n++]; memset(s, 0, sizeof(*s)); sqlite3_snprintf(32, s->zName, "update");
  t = &s->aTx[s->nTx++]; t->id = id++;
  for(i=0; i<3; i++) scAdd(t, SC_UPD_VEC, 2 + 5*i, 1, 0);
  scAdd(t, SC_UPD_TAG, 4, 0, 9);
  scAdd(t, SC_UPD_ROWID, 6, 0, 1030);
  scAdd(t, SC_LEDGER, 0, 0, 1);
  t = &s->aTx[s->nTx++]; t->id = id++;
  scAdd(t, SC_QUERY_TAG, 0, 3, 1);
  scAdd(t, SC_UPD_VEC, 1030, 2, 0);
  scAdd(t, SC_UPD_VEC, 7, 2, 0);
  scAdd(t, SC_REPLACE, 8, 4, 2);
  scAdd(t, SC_LEDGER, 0, 0, 1);

  s = &a[n++]; memset(s, 0, sizeof(*s)); sqlite3_snprintf(32, s->zName, "query");
  t = &s->aTx[s->nTx++]; t->id = id++; t->noTxn = 1;
  scAdd(t, SC_QUERY, 0, 4, 0);
  scAdd(t, SC_QUERY_TAG, 0, 5, 2);
  scAdd(t, SC_QUERY, 0, 6, 0);
  scAdd(t, SC_QUERY, 0, 10, 1);
  t = &s->aTx[s->nTx++]; t->id = id++;
  scAdd(t, SC_INSERT, 1040, 0, 0);
  scAdd(t, SC_QUERY, 0, 7, 0);
  scAdd(t, SC_LEDGER, 0, 0, 0);

  s = &a[n++]; memset(s, 0, sizeof(*s)); sqlite3_snprintf(32, s->zName, "savepoint");
  t = &s->aTx[s->nTx++]; t->id = id++;
  scAdd(t, SC_INSERT, 1050, 0, 1);
  scAdd(t, SC_SAVEPOINT, 0, 0, 0);
  scAdd(t, SC_DELETE, 10, 0, 0);
  scAdd(t, SC_INSERT3, 1051, 0, 1);
  scAdd(t, SC_ROLLBACK_TO, 0, 0, 0);
  scAdd(t, SC_DELETE, 11, 0, 0);
  scAdd(t, SC_UPD_VEC, 12, 3, 0);
  scAdd(t, SC_RELEASE, 0, 0, 0);
  scAdd(t, SC_QUERY, 0, 8, 0);
  scAdd(t, SC_LEDGER, 0, 0, 1);
  t = &s->aTx[s->nTx++]; t->id = id++;
  scAdd(t, SC_DELETE, 1050, 0, 0);
  scAdd(t, SC_LEDGER, 0, 0, 0);
  /* A transaction opened by SAVEPOINT, rolled back to its start once. */
  t = &s->aTx[s->nTx++]; t->id = id++; t->spTxn = 1;
  scAdd(t, SC_INSERT, 1055, 0, 2);
  scAdd(t, SC_DELETE, 14, 0, 0);
  scAdd(t, SC_ROLLBACK_TX, 0, 0, 0);
  scAdd(t, SC_DELETE, 15, 0, 0);
  scAdd(t, SC_INSERT3, 1056, 0, 2);
  scAdd(t, SC_LEDGER, 0, 0, 1);

  /* ALTER TABLE ... RENAME with graph changes pending in the cache. */
  s = &a[n++]; memset(s, 0, sizeof(*s)); sqlite3_snprintf(32, s->zName, "rename");
  t = &s->aTx[s->nTx++]; t->id = id++;
  scAdd(t, SC_INSERT, 1060, 0, 1);
  scAdd(t, SC_DELETE, 13, 0, 0);
  scAdd(t, SC_RENAME, 0, 0, 1);
  scAdd(t, SC_RENAME, 0, 0, 0);
  scAdd(t, SC_INSERT, 1061, 0, 1);
  scAdd(t, SC_QUERY, 0, 9, 0);
  scAdd(t, SC_LEDGER, 0, 0, 1);
  t = &s->aTx[s->nTx++]; t->id = id++;
  scAdd(t, SC_DELETE, 1060, 0, 0);
  scAdd(t, SC_LEDGER, 0, 0, 0);

  /* A bulk insert: 34 rows wait to be linked (2 threads take 16 or more
  ** each), in rounds that read what the cold cache lacks; a query links
  ** them inside the transaction, COMMIT links the next 34. */
  s = &a[n++]; memset(s, 0, sizeof(*s)); sqlite3_snprintf(32, s->zName, "bulk");
  s->timingDependent = 1;
  t = &s->aTx[s->nTx++]; t->id = id++;
  for(i=0; i<34; i++) scAdd(t, SC_INSERT, 1100+i, 0, i%4);
  scAdd(t, SC_QUERY, 0, 11, 0);
  scAdd(t, SC_LEDGER, 0, 0, 0);
  t = &s->aTx[s->nTx++]; t->id = id++;
  for(i=0; i<34; i++) scAdd(t, SC_INSERT, 1140+i, 1, i%4);
  scAdd(t, SC_LEDGER, 0, 0, 1);
  return n;
}

/* ---- running statements --------------------------------------------------------- */

typedef struct ScRun {
  sqlite3 *db;
  const char *zLabel;               /* for failure messages */
  int (*xAllowed)(int rc);          /* may a fault produce this error code? */
  int (*xLive)(void);               /* can the armed fault still fire? */
  ScModel model;                    /* committed state, while known */
  int modelKnown;
  int aOutcome[SC_MAXTX];
  int nErr;                         /* statements that failed */
  int nStmtRollback;                /* of which inside a transaction that went on */
  int staleSchemaOk;                /* see scNoteError */
} ScRun;

#define SC_COMMITTED 1
#define SC_ABORTED   2
#define SC_MAYBE     3

/* Run one SQL statement to completion; the first error, or SQLITE_OK. */
static int scExec(sqlite3 *db, const char *zSql){
  return sqlite3_exec(db, zSql, 0, 0, 0);
}

static int scStepAll(sqlite3_stmt *pStmt){
  int rc;
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){}
  return rc==SQLITE_DONE ? SQLITE_OK : rc;
}

/* The first column of the single row zSql returns, as text; "" if none. */
static int scQueryText(sqlite3 *db, const char *zSql, char *zOut, int nOut){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  zOut[0] = 0;
  if( rc==SQLITE_OK ){
    int nRow = 0;
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
      const char *z = (const char*)sqlite3_column_text(pStmt, 0);
      if( nRow++==0 ) sqlite3_snprintf(nOut, zOut, "%s", z ? z : "NULL");
      else sqlite3_snprintf(nOut, zOut, "%s (and more rows)", zOut);
    }
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  sqlite3_finalize(pStmt);
  return rc;
}

static double scDist(const float *a, const float *b){
  double s = 0;
  int i;
  for(i=0; i<SC_DIM; i++){ double d = (double)a[i] - (double)b[i]; s += d*d; }
  return sqrt(s);
}

typedef struct ScHit { double d; sqlite3_int64 rowid; } ScHit;
static int scHitCmp(const void *pA, const void *pB){
  const ScHit *a = (const ScHit*)pA, *b = (const ScHit*)pB;
  if( a->d!=b->d ) return a->d<b->d ? -1 : 1;
  return a->rowid<b->rowid ? -1 : a->rowid>b->rowid;
}

/* Compare a KNN answer with the model: min(k, matches) rows, distances
** right for their rows and non-decreasing, none farther than the k-th
** nearest match (ties within rounding may come in either order). */
static int scCheckKnn(const ScModel *m, const float *q, int tagFilter, int k,
                      const sqlite3_int64 *aRowid, const double *aDist, int n, char *zWhy, int nWhy){
  static ScHit aHit[SC_MAXROWS];
  int nHit = 0, i, want;
  for(i=0; i<m->n; i++){
    if( tagFilter>=0 && m->aRow[i].tag!=tagFilter ) continue;
    aHit[nHit].d = scDist(q, m->aRow[i].aVec);
    aHit[nHit].rowid = m->aRow[i].rowid;
    nHit++;
  }
  qsort(aHit, (size_t)nHit, sizeof(ScHit), scHitCmp);
  want = nHit<k ? nHit : k;
  if( n!=want ){
    sqlite3_snprintf(nWhy, zWhy, "%d rows for %d expected", n, want);
    return 0;
  }
  for(i=0; i<n; i++){
    int j = scFind(m, aRowid[i]);
    double dTrue;
    if( j<0 || (tagFilter>=0 && m->aRow[j].tag!=tagFilter) ){
      sqlite3_snprintf(nWhy, zWhy, "row %lld is not a match", aRowid[i]);
      return 0;
    }
    dTrue = scDist(q, m->aRow[j].aVec);
    if( fabs(dTrue - aDist[i])>1e-4*(1+dTrue) ){
      sqlite3_snprintf(nWhy, zWhy, "row %lld at distance %g, model says %g", aRowid[i], aDist[i], dTrue);
      return 0;
    }
    if( dTrue>aHit[want-1].d + 1e-4 ){
      sqlite3_snprintf(nWhy, zWhy, "row %lld (distance %g) is beyond the k-th nearest (%g)",
                       aRowid[i], dTrue, aHit[want-1].d);
      return 0;
    }
    if( i>0 && aDist[i] < aDist[i-1] - 1e-6 ){
      sqlite3_snprintf(nWhy, zWhy, "distances out of order at %d", i);
      return 0;
    }
  }
  return 1;
}

/* KNN query number iq (optionally only tag = tagFilter) with beam ef (0:
** exact scan); on success, when pModel is given, the answer must match it. */
static int scKnn(ScRun *r, const ScModel *pModel, int iq, int tagFilter, int ef){
  sqlite3_int64 aRowid[SC_K+1];
  double aDist[SC_K+1];
  float q[SC_DIM];
  sqlite3_stmt *pStmt = 0;
  int n = 0, rc;
  scVector(-1, iq, q);
  rc = sqlite3_prepare_v2(r->db, tagFilter>=0
      ? "SELECT rowid, distance FROM items WHERE embedding MATCH ?1 AND k = ?2 AND ef_search = ?3 AND tag = ?4"
      : "SELECT rowid, distance FROM items WHERE embedding MATCH ?1 AND k = ?2 AND ef_search = ?3",
      -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_blob(pStmt, 1, q, sizeof(q), SQLITE_STATIC);
    sqlite3_bind_int(pStmt, 2, SC_K);
    sqlite3_bind_int(pStmt, 3, ef);
    if( tagFilter>=0 ) sqlite3_bind_int(pStmt, 4, tagFilter);
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
      if( n<=SC_K ){
        aRowid[n] = sqlite3_column_int64(pStmt, 0);
        aDist[n] = sqlite3_column_double(pStmt, 1);
      }
      n++;
    }
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  sqlite3_finalize(pStmt);
  if( rc==SQLITE_OK && pModel ){
    char zWhy[200];
    int ok = n<=SC_K && scCheckKnn(pModel, q, tagFilter, SC_K, aRowid, aDist, n, zWhy, sizeof(zWhy));
    if( n>SC_K ) sqlite3_snprintf(sizeof(zWhy), zWhy, "%d rows for k=%d", n, SC_K);
    CHECK(ok, "%s: knn query %d (tag %d, ef %d): %s", r->zLabel, iq, tagFilter, ef, zWhy);
  }
  return rc;
}

/* One op of a scenario; SQLITE_OK or the statement's error. */
static int scRunOp(ScRun *r, const ScTx *t, const ScOp *o, const ScModel *pWork){
  sqlite3_stmt *pStmt = 0;
  const char *zSql = 0;
  float v[SC_DIM], v1[SC_DIM], v2[SC_DIM];
  int rc;
  switch( o->e ){
    case SC_INSERT:    zSql = "INSERT INTO items(rowid, embedding, tag) VALUES (?1, ?2, ?3)"; break;
    case SC_REPLACE:   zSql = "INSERT OR REPLACE INTO items(rowid, embedding, tag) VALUES (?1, ?2, ?3)"; break;
    case SC_INSERT3:
      zSql = "INSERT INTO items(rowid, embedding, tag) VALUES (?1, ?2, ?3), (?1+1, ?4, ?3), (?1+2, ?5, ?3)";
      break;
    case SC_DELETE:    zSql = "DELETE FROM items WHERE rowid = ?1"; break;
    case SC_UPD_VEC:   zSql = "UPDATE items SET embedding = ?2 WHERE rowid = ?1"; break;
    case SC_UPD_TAG:   zSql = "UPDATE items SET tag = ?3 WHERE rowid = ?1"; break;
    case SC_UPD_ROWID: zSql = "UPDATE items SET rowid = ?3 WHERE rowid = ?1"; break;
    case SC_LEDGER:
      zSql = o->tag ? "INSERT INTO ledger(tx, note) SELECT ?1, 'committed'"
                    : "INSERT INTO ledger(tx, note) VALUES (?1, 'committed')";
      break;
    case SC_SAVEPOINT:   return scExec(r->db, "SAVEPOINT sp");
    case SC_ROLLBACK_TX: return scExec(r->db, "ROLLBACK TO tx");
    case SC_RENAME:
      return scExec(r->db, o->tag ? "ALTER TABLE items RENAME TO items_r" : "ALTER TABLE items_r RENAME TO items");
    case SC_ROLLBACK_TO: return scExec(r->db, "ROLLBACK TO sp");
    case SC_RELEASE:     return scExec(r->db, "RELEASE sp");
    case SC_QUERY:
      /* The graph with a beam wider than the table: exact on a sound
      ** graph; or (tag 1) the exact scan. */
      return scKnn(r, pWork, o->ver, -1, o->tag ? 0 : 4096);
    case SC_QUERY_TAG:
      return scKnn(r, pWork, o->ver, o->tag, 64);
  }
  rc = sqlite3_prepare_v2(r->db, zSql, -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    scVector(o->rowid, o->ver, v);
    sqlite3_bind_int64(pStmt, 1, o->e==SC_LEDGER ? t->id : o->rowid);
    if( o->e!=SC_LEDGER && o->e!=SC_DELETE && sqlite3_bind_parameter_count(pStmt)>=2 ){
      sqlite3_bind_blob(pStmt, 2, v, sizeof(v), SQLITE_STATIC);
    }
    if( sqlite3_bind_parameter_count(pStmt)>=3 ) sqlite3_bind_int64(pStmt, 3, o->tag);
    if( o->e==SC_INSERT3 ){
      scVector(o->rowid+1, o->ver, v1);
      scVector(o->rowid+2, o->ver, v2);
      sqlite3_bind_blob(pStmt, 4, v1, sizeof(v1), SQLITE_STATIC);
      sqlite3_bind_blob(pStmt, 5, v2, sizeof(v2), SQLITE_STATIC);
    }
    rc = scStepAll(pStmt);
  }
  sqlite3_finalize(pStmt);
  return rc;
}

static void scNoteError(ScRun *r, int rc, const char *zWhat){
  if( getenv("SC_TRACE") ) fprintf(stderr, "%s: %s failed: %d %s\n", r->zLabel, zWhat, rc, sqlite3_errmsg(r->db));
  r->nErr++;
  /* When every write fails from some point on, a transaction that renamed
  ** the table can end with the file's rollback still pending; until the
  ** pager recovers, SQLite resolves names against the renamed schema it
  ** still holds ("no such table: items"). SQLite's, and harmless: the
  ** checks after the fault see the recovered database. */
  if( r->staleSchemaOk && rc==SQLITE_ERROR
   && strncmp(sqlite3_errmsg(r->db), "no such table", 13)==0 ) return;
  CHECK(r->xAllowed(rc), "%s: %s failed with unexpected code %d (%s): %s",
        r->zLabel, zWhat, rc, sqlite3_errstr(rc), sqlite3_errmsg(r->db));
}

/* Is transaction id in the ledger? -1 if that cannot be read. */
static int scInLedger(sqlite3 *db, int id){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM ledger WHERE tx = ?1", -1, &pStmt, 0);
  int n = -1;
  if( rc==SQLITE_OK ){
    sqlite3_bind_int(pStmt, 1, id);
    if( sqlite3_step(pStmt)==SQLITE_ROW ) n = sqlite3_column_int(pStmt, 0);
  }
  if( sqlite3_finalize(pStmt)!=SQLITE_OK ) n = -1;
  return n;
}

/* End a transaction that a failed ROLLBACK (itself out of memory, say)
** left open: it committed nothing. */
static void scLeaveTxn(sqlite3 *db){
  if( !sqlite3_get_autocommit(db) ) scExec(db, "ROLLBACK");
}

/* Run transaction t; sets r->aOutcome[iTx] and follows the model. */
static void scRunTx(ScRun *r, int iTx, const ScTx *t){
  static ScModel work, aSave[4];
  int nSave = 0, i, rc;
  work = r->model;
  scLeaveTxn(r->db);
  if( t->noTxn ){
    for(i=0; i<t->nOp; i++){
      rc = scRunOp(r, t, &t->aOp[i], r->modelKnown ? &work : 0);
      if( rc!=SQLITE_OK ){
        scNoteError(r, rc, "read statement");
        rc = scRunOp(r, t, &t->aOp[i], r->modelKnown ? &work : 0);
      }
    }
    r->aOutcome[iTx] = SC_COMMITTED;
    return;
  }
  rc = scExec(r->db, t->spTxn ? "SAVEPOINT tx" : "BEGIN");
  if( rc!=SQLITE_OK ){
    scNoteError(r, rc, "BEGIN");
    r->aOutcome[iTx] = SC_ABORTED;
    return;
  }
  for(i=0; i<t->nOp; i++){
    const ScOp *o = &t->aOp[i];
    rc = scRunOp(r, t, o, r->modelKnown ? &work : 0);
    if( rc!=SQLITE_OK ){
      scNoteError(r, rc, "statement");
      if( sqlite3_get_autocommit(r->db) ) break;       /* SQLite rolled it all back */
      r->nStmtRollback++;
      /* A ROLLBACK TO that failed may have left the savepoint half undone:
      ** retrying is still right, SQLite keeps the savepoint open. */
      rc = scRunOp(r, t, o, r->modelKnown ? &work : 0);
      if( rc!=SQLITE_OK ){
        scNoteError(r, rc, "retried statement");
        break;
      }
    }
    if( o->e==SC_ROLLBACK_TX ) work = r->model;
    else if( o->e==SC_SAVEPOINT ) aSave[nSave++] = work;
    else if( o->e==SC_ROLLBACK_TO ) work = aSave[nSave-1];
    else if( o->e==SC_RELEASE ) nSave--;
    else scApply(&work, o);
  }
  if( rc!=SQLITE_OK ){
    if( !sqlite3_get_autocommit(r->db) ) scExec(r->db, "ROLLBACK");
    r->aOutcome[iTx] = SC_ABORTED;
    return;
  }
  rc = scExec(r->db, t->spTxn ? "RELEASE tx" : "COMMIT");
  if( rc!=SQLITE_OK && !sqlite3_get_autocommit(r->db) && !t->spTxn ){
    scNoteError(r, rc, "COMMIT (transaction still open)");
    rc = scExec(r->db, "COMMIT");
    if( rc!=SQLITE_OK && !sqlite3_get_autocommit(r->db) ){
      scExec(r->db, "ROLLBACK");
      r->aOutcome[iTx] = SC_ABORTED;
      return;
    }
  }
  if( rc==SQLITE_OK ){
    if( getenv("SC_TRACE") ) fprintf(stderr, "%s: transaction %d committed\n", r->zLabel, t->id);
    r->aOutcome[iTx] = SC_COMMITTED;
    r->model = work;
    return;
  }
  scNoteError(r, rc, "COMMIT");
  /* A RELEASE of the transaction's savepoint whose commit failed leaves
  ** the connection looking inside a transaction (SQLite 3.40 sets
  ** autocommit off again) although it rolled the transaction back; a
  ** second RELEASE would "succeed" and commit nothing. End it. */
  scLeaveTxn(r->db);
  r->aOutcome[iTx] = SC_MAYBE;
  /* Learn the truth now if the fault is spent; else stop checking
  ** query answers for the rest of this run. */
  if( r->modelKnown && !r->xLive() ){
    int in = scInLedger(r->db, t->id);
    if( in==1 ) r->model = work;
    if( in<0 ) r->modelKnown = 0;
  }else{
    r->modelKnown = 0;
  }
}

static void scRunScenario(ScRun *r, const ScScenario *s, const ScModel *pBase){
  int i;
  r->model = *pBase;
  r->modelKnown = 1;
  r->nErr = 0;
  for(i=0; i<s->nTx; i++) scRunTx(r, i, &s->aTx[i]);
}

/* ---- checks ------------------------------------------------------------------------- */

/* Everything that must hold of a database after a fault is lifted: the
** ledger agrees with the outcomes, the table equals the model those
** transactions imply, KNN answers match, and both integrity checks pass.
** Returns the number of failed checks. */
static int scVerify(ScRun *r, const ScScenario *s, const ScModel *pBase, const char *zPhase){
  static ScModel m;
  sqlite3_stmt *pStmt = 0;
  char zText[512];
  int nFail0 = tuFailed, i, rc, nRow = 0, ok = 1;

  scLeaveTxn(r->db);
  CHECK(sqlite3_get_autocommit(r->db), "%s %s: cannot end the open transaction: %s",
        r->zLabel, zPhase, sqlite3_errmsg(r->db));
  rc = scQueryText(r->db, "PRAGMA integrity_check", zText, sizeof(zText));
  CHECK(rc==SQLITE_OK && strcmp(zText, "ok")==0, "%s %s: integrity_check rc=%d: %s",
        r->zLabel, zPhase, rc, zText);
  rc = scQueryText(r->db, "SELECT vectordb_check('items')", zText, sizeof(zText));
  CHECK(rc==SQLITE_OK && strcmp(zText, "ok")==0, "%s %s: vectordb_check rc=%d: %s (%s)",
        r->zLabel, zPhase, rc, zText, sqlite3_errmsg(r->db));

  /* The ledger against the outcomes; the model it implies. */
  m = *pBase;
  for(i=0; i<s->nTx; i++){
    const ScTx *t = &s->aTx[i];
    int in;
    if( t->noTxn ) continue;
    in = scInLedger(r->db, t->id);
    CHECK(in==0 || in==1, "%s %s: ledger unreadable (%s)", r->zLabel, zPhase, sqlite3_errmsg(r->db));
    if( r->aOutcome[i]==SC_COMMITTED ){
      CHECK(in==1, "%s %s: committed transaction %d is missing", r->zLabel, zPhase, t->id);
    }else if( r->aOutcome[i]==SC_ABORTED ){
      CHECK(in==0, "%s %s: aborted transaction %d is present", r->zLabel, zPhase, t->id);
    }
    if( in==1 ) scApplyTx(&m, t);
  }

  /* Every row, vector and tag. */
  rc = sqlite3_prepare_v2(r->db, "SELECT rowid, embedding, tag FROM items ORDER BY rowid", -1, &pStmt, 0);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    sqlite3_int64 rowid = sqlite3_column_int64(pStmt, 0);
    int j = scFind(&m, rowid);
    nRow++;
    if( j<0 ){
      if( ok ) CHECK(0, "%s %s: row %lld is not in the model", r->zLabel, zPhase, rowid);
      ok = 0;
    }else if( sqlite3_column_bytes(pStmt, 1)!=(int)sizeof(m.aRow[j].aVec)
           || memcmp(sqlite3_column_blob(pStmt, 1), m.aRow[j].aVec, sizeof(m.aRow[j].aVec))!=0
           || sqlite3_column_int(pStmt, 2)!=m.aRow[j].tag ){
      if( ok ) CHECK(0, "%s %s: row %lld differs from the model", r->zLabel, zPhase, rowid);
      ok = 0;
    }
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt);
  else sqlite3_finalize(pStmt);
  CHECK(rc==SQLITE_OK, "%s %s: reading the table: %s", r->zLabel, zPhase, sqlite3_errmsg(r->db));
  CHECK(nRow==m.n, "%s %s: %d rows, the model has %d", r->zLabel, zPhase, nRow, m.n);

  /* KNN, exact and through the graph, checked against the model. */
  for(i=0; i<3; i++){
    rc = scKnn(r, &m, 100+i, -1, 0);
    CHECK(rc==SQLITE_OK, "%s %s: exact knn: %s", r->zLabel, zPhase, sqlite3_errmsg(r->db));
    rc = scKnn(r, &m, 100+i, -1, 4096);
    CHECK(rc==SQLITE_OK, "%s %s: graph knn: %s", r->zLabel, zPhase, sqlite3_errmsg(r->db));
  }
  r->model = m;
  r->modelKnown = 1;
  return tuFailed - nFail0;
}

/* The database still works: a new row is found as its own nearest
** neighbour, and the table checks out afterwards. */
static int scUsable(ScRun *r){
  sqlite3_stmt *pStmt = 0;
  float v[SC_DIM];
  char zText[512];
  int nFail0 = tuFailed, rc;
  sqlite3_int64 got = -1;
  scVector(999999, 0, v);
  rc = sqlite3_prepare_v2(r->db, "INSERT INTO items(rowid, embedding, tag) VALUES (999999, ?1, 0)", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_blob(pStmt, 1, v, sizeof(v), SQLITE_STATIC);
    rc = scStepAll(pStmt);
  }
  sqlite3_finalize(pStmt);
  CHECK(rc==SQLITE_OK, "%s: insert after the fault: %s", r->zLabel, sqlite3_errmsg(r->db));
  pStmt = 0;
  rc = sqlite3_prepare_v2(r->db, "SELECT rowid FROM items WHERE embedding MATCH ?1 AND k = 1", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_blob(pStmt, 1, v, sizeof(v), SQLITE_STATIC);
    if( sqlite3_step(pStmt)==SQLITE_ROW ) got = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  CHECK(got==999999, "%s: query after the fault found %lld: %s", r->zLabel, got, sqlite3_errmsg(r->db));
  rc = scQueryText(r->db, "SELECT vectordb_check('items')", zText, sizeof(zText));
  CHECK(rc==SQLITE_OK && strcmp(zText, "ok")==0, "%s: vectordb_check after the insert: %s", r->zLabel, zText);
  return tuFailed - nFail0;
}

/* ---- database files ------------------------------------------------------------------ */

typedef struct ScImage {
  unsigned char *a;
  long n;
} ScImage;

static int scReadFile(const char *zPath, ScImage *p){
  FILE *f = fopen(zPath, "rb");
  if( f==0 ) return 0;
  fseek(f, 0, SEEK_END);
  p->n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p->a = (unsigned char*)malloc((size_t)p->n + 1);
  if( p->a==0 || fread(p->a, 1, (size_t)p->n, f)!=(size_t)p->n ){ fclose(f); return 0; }
  fclose(f);
  return 1;
}

/* SQLITE_CONFIG_LOG for "one" runs: SQLite's log on stderr, to find where
** an error came from. */
static void scLog(void *pArg, int rc, const char *zMsg){
  (void)pArg;
  fprintf(stderr, "sqlite log %d: %s\n", rc, zMsg);
}

/* A mkdtemp template in memory-backed /dev/shm when there is one (the
** runs rewrite their database hundreds of times), else in /tmp. */
static void scTempDir(char *zDir, int nDir, const char *zPrefix){
  const char *zBase = access("/dev/shm", W_OK)==0 ? "/dev/shm" : "/tmp";
  snprintf(zDir, (size_t)nDir, "%s/%s-XXXXXX", zBase, zPrefix);
}

static void scRemoveDb(const char *zPath){
  char z[600];
  unlink(zPath);
  snprintf(z, sizeof(z), "%s-journal", zPath); unlink(z);
  snprintf(z, sizeof(z), "%s-wal", zPath); unlink(z);
  snprintf(z, sizeof(z), "%s-shm", zPath); unlink(z);
}

static int scWriteImage(const char *zPath, const ScImage *p){
  FILE *f;
  scRemoveDb(zPath);
  f = fopen(zPath, "wb");
  if( f==0 ) return 0;
  if( fwrite(p->a, 1, (size_t)p->n, f)!=(size_t)p->n ){ fclose(f); return 0; }
  return fclose(f)==0;
}

/* Page cache size of the connections: a tiny cache makes SQLite spill
** pages to the files in the middle of transactions. */
static int scCacheSize = 20;

/* Per-connection settings of a run (persistent ones are in the image). */
static int scConfigure(sqlite3 *db, int isWal){
  char zSql[100];
  int rc;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_snprintf(sizeof(zSql), zSql, "PRAGMA synchronous=FULL; PRAGMA cache_size=%d", scCacheSize);
  rc = scExec(db, zSql);
  if( rc==SQLITE_OK && isWal ) rc = scExec(db, "PRAGMA wal_autocheckpoint=12; PRAGMA journal_size_limit=0");
  return rc;
}

/* Build the base database (SC_NBASE rows) with zVfs in journal mode
** zMode, close it cleanly and keep its bytes. */
static int scMakeBase(const char *zPath, const char *zVfs, const char *zMode, ScImage *pImg){
  sqlite3 *db = 0;
  char zSql[200];
  ScModel m;
  int rc, i;
  scRemoveDb(zPath);
  rc = sqlite3_open_v2(zPath, &db, SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE, zVfs);
  sqlite3_snprintf(sizeof(zSql), zSql, "PRAGMA journal_mode=%s", zMode);
  if( rc==SQLITE_OK ) rc = scExec(db, zSql);
  if( rc==SQLITE_OK ) rc = scExec(db,
      "CREATE VIRTUAL TABLE items USING vectordb(embedding float[8] "
      "INDEXED BY hnsw(m=4, ef_construction=16), tag integer);"
      "CREATE TABLE ledger(tx INTEGER PRIMARY KEY, note TEXT);");
  scBaseModel(&m);
  if( rc==SQLITE_OK ) rc = scExec(db, "BEGIN");
  for(i=0; rc==SQLITE_OK && i<m.n; i++){
    sqlite3_stmt *pStmt = 0;
    rc = sqlite3_prepare_v2(db, "INSERT INTO items(rowid, embedding, tag) VALUES (?1, ?2, ?3)", -1, &pStmt, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_int64(pStmt, 1, m.aRow[i].rowid);
      sqlite3_bind_blob(pStmt, 2, m.aRow[i].aVec, sizeof(m.aRow[i].aVec), SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 3, m.aRow[i].tag);
      rc = scStepAll(pStmt);
    }
    sqlite3_finalize(pStmt);
  }
  if( rc==SQLITE_OK ) rc = scExec(db, "COMMIT");
  if( rc!=SQLITE_OK ) fprintf(stderr, "base database: %s\n", sqlite3_errmsg(db));
  sqlite3_close(db);
  return rc==SQLITE_OK && scReadFile(zPath, pImg);
}

#endif
