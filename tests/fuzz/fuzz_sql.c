/*
** fuzz_sql: sequences of SQL statements against an HNSW-indexed table.
**
** Two connections share one in-memory database (the memdb VFS), so cache
** coherence across connections is exercised too. The first input byte
** picks the table's shape (metric, m, dimensions, a text primary key, a
** second vector column, the chunk size); every following byte starts one
** operation: inserts (single, multi-row, OR REPLACE / OR IGNORE, rowid or
** automatic), updates of the vector, the metadata or the rowid, deletes,
** KNN queries with k, ef_search, filters and distance bounds, BEGIN /
** COMMIT / ROLLBACK, SAVEPOINT / RELEASE / ROLLBACK TO, table commands,
** invalid writes that must fail cleanly, and a switch to the other
** connection. Vectors come from a small set of values, so ties and
** duplicates are common.
**
** Every operation is valid SQL; those that fail (constraints, invalid
** vectors, a busy database) must fail cleanly. So after any sequence:
**   - vectordb_check('t') says 'ok' on both connections;
**   - an exact KNN query (ef_search = 0) returns the same rows as a
**     brute-force scan with vec_distance_*();
**   - a graph KNN query with k and ef_search at least the row count
**     returns every row exactly as the exact query does (the graph is
**     connected, so a beam that wide reaches every node).
** Anything else is a bug: abort().
*/
#include "fuzz_util.h"

typedef struct Shape {
  const char *zMetric;     /* l2, cosine, dot */
  const char *zDistFunc;   /* vec_distance_... for the oracle */
  int m, nDim, textPk, secondVec, chunk;
} Shape;

typedef struct Fuzz {
  sqlite3 *aDb[2];
  sqlite3 *db;             /* the connection operations run on */
  Shape shape;
  FuzzIn in;
} Fuzz;

/* ---- values --------------------------------------------------------------------- */

/* A vector of the column's dimension from a small set of values; rarely a
** non-finite one (then the write must fail cleanly). */
static void bindVector(Fuzz *f, sqlite3_stmt *pStmt, int iParam, int nDim){
  float a[16];
  unsigned sel = fuzzByte(&f->in);
  int i;
  for(i=0; i<nDim; i++){
    if( sel==0xff ) a[i] = fuzzFloat(&f->in);
    else a[i] = (float)((int)((sel >> (i%4)*2) & 3) - 1) + (float)(i==(int)(sel%nDim)) * 0.5f;
  }
  if( sel>=0xfc && sel<0xff ){
    /* As JSON text, sometimes of the wrong length. */
    sqlite3_str *s = sqlite3_str_new(0);
    int n = sel==0xfc ? nDim+1 : nDim;
    sqlite3_str_appendchar(s, 1, '[');
    for(i=0; i<n; i++) sqlite3_str_appendf(s, "%s%!.9g", i ? "," : "", (double)a[i % nDim]);
    sqlite3_str_appendchar(s, 1, ']');
    sqlite3_bind_text(pStmt, iParam, sqlite3_str_finish(s), -1, sqlite3_free);
    return;
  }
  sqlite3_bind_blob(pStmt, iParam, a, nDim*4, SQLITE_TRANSIENT);
}

static sqlite3_int64 pickRowid(Fuzz *f){
  unsigned v = fuzzByte(&f->in);
  if( v==0xff ) return INT64_MAX;
  if( v==0xfe ) return -5;
  return 1 + v % 40;
}

static void bindGenre(Fuzz *f, sqlite3_stmt *pStmt, int iParam){
  static const char *azGenre[] = { "drama", "comedy", "news", "jazz" };
  unsigned v = fuzzByte(&f->in) % 6;
  if( v<4 ) sqlite3_bind_text(pStmt, iParam, azGenre[v], -1, SQLITE_STATIC);
  else if( v==4 ) sqlite3_bind_null(pStmt, iParam);
  else sqlite3_bind_int(pStmt, iParam, 7);          /* wrong type: must be refused */
}

/* Prepare, bind through xBind, run to the end, finalize. Errors are fine. */
static void run(Fuzz *f, const char *zSql, void (*xBind)(Fuzz*, sqlite3_stmt*)){
  sqlite3_stmt *pStmt = 0;
  int rc = sqlite3_prepare_v2(f->db, zSql, -1, &pStmt, 0);
  if( rc==SQLITE_BUSY || rc==SQLITE_LOCKED ) return;    /* the other connection writes */
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "fuzz_sql: cannot prepare %s: %s\n", zSql, sqlite3_errmsg(f->db));
    abort();
  }
  if( xBind ) xBind(f, pStmt);
  fuzzCheckRc(f->db, fuzzDrain(pStmt), zSql);
  sqlite3_finalize(pStmt);
}

/* ---- operations ------------------------------------------------------------------ */

static void bindInsert(Fuzz *f, sqlite3_stmt *pStmt){
  int n = sqlite3_bind_parameter_count(pStmt), i;
  for(i=1; i<=n; i+=5){
    unsigned r = fuzzByte(&f->in);
    if( r%8==0 ) sqlite3_bind_null(pStmt, i);
    else sqlite3_bind_int64(pStmt, i, r==0xff ? INT64_MAX : 1 + r%40);
    bindVector(f, pStmt, i+1, f->shape.nDim);
    bindGenre(f, pStmt, i+2);
    sqlite3_bind_int(pStmt, i+3, (int)(fuzzByte(&f->in) % 4));
    if( f->shape.secondVec ){
      /* int8[2]: two bytes, an untagged BLOB taken as the column's type. */
      unsigned char a[2];
      a[0] = (unsigned char)fuzzByte(&f->in);
      a[1] = (unsigned char)fuzzByte(&f->in);
      sqlite3_bind_blob(pStmt, i+4, a, 2, SQLITE_TRANSIENT);
    }else{
      sqlite3_bind_null(pStmt, i+4);
    }
  }
}

static void opInsert(Fuzz *f, unsigned op){
  static const char *azVerb[] = { "INSERT", "INSERT OR REPLACE", "INSERT OR IGNORE", "REPLACE" };
  sqlite3_str *s = sqlite3_str_new(0);
  int nRow = 1 + (int)(op>>4) % 3, i;
  char *zSql;
  sqlite3_str_appendf(s, "%s INTO t(rowid, %se, genre, part, %s) VALUES ",
                      azVerb[(op>>2) & 3], f->shape.textPk ? "id, " : "",
                      f->shape.secondVec ? "e2" : "aux");
  for(i=0; i<nRow; i++){
    int b = 5*i;
    sqlite3_str_appendf(s, "%s(?%d, ", i ? ", " : "", b+1);
    if( f->shape.textPk ) sqlite3_str_appendf(s, "'k' || coalesce(?%d, 0), ", b+1);
    sqlite3_str_appendf(s, "?%d, ?%d, ?%d, ?%d)", b+2, b+3, b+4, b+5);
  }
  zSql = sqlite3_str_finish(s);
  run(f, zSql, bindInsert);
  sqlite3_free(zSql);
}

static void bindUpdateVector(Fuzz *f, sqlite3_stmt *pStmt){
  bindVector(f, pStmt, 1, f->shape.nDim);
  sqlite3_bind_int64(pStmt, 2, pickRowid(f));
}
static void bindUpdateGenre(Fuzz *f, sqlite3_stmt *pStmt){
  bindGenre(f, pStmt, 1);
  sqlite3_bind_int64(pStmt, 2, pickRowid(f));
}
static void bindTwoRowids(Fuzz *f, sqlite3_stmt *pStmt){
  sqlite3_bind_int64(pStmt, 1, pickRowid(f));
  sqlite3_bind_int64(pStmt, 2, pickRowid(f));
}
static void bindRowid(Fuzz *f, sqlite3_stmt *pStmt){
  sqlite3_bind_int64(pStmt, 1, pickRowid(f));
}
static void bindGenreOnly(Fuzz *f, sqlite3_stmt *pStmt){
  bindGenre(f, pStmt, 1);
}

static void bindKnn(Fuzz *f, sqlite3_stmt *pStmt){
  int n = sqlite3_bind_parameter_count(pStmt), i;
  bindVector(f, pStmt, 1, f->shape.nDim);
  for(i=2; i<=n; i++){
    const char *zName = sqlite3_bind_parameter_name(pStmt, i);
    if( zName==0 ) continue;
    if( strcmp(zName, ":k")==0 ){
      unsigned v = fuzzByte(&f->in);
      sqlite3_bind_int64(pStmt, i, v==0xff ? 100000 : v==0xfe ? -1 : v%50);
    }else if( strcmp(zName, ":ef")==0 ){
      unsigned v = fuzzByte(&f->in);
      sqlite3_bind_int64(pStmt, i, v==0xff ? 5000 : v%70);
    }else if( strcmp(zName, ":g")==0 ){
      bindGenre(f, pStmt, i);
    }else if( strcmp(zName, ":d")==0 ){
      sqlite3_bind_double(pStmt, i, (double)(fuzzByte(&f->in) % 16) * 0.25);
    }else{
      sqlite3_bind_int64(pStmt, i, pickRowid(f));
    }
  }
}

static void opKnn(Fuzz *f, unsigned op){
  sqlite3_str *s = sqlite3_str_new(0);
  char *zSql;
  sqlite3_str_appendall(s, "SELECT rowid, distance, genre, part FROM t WHERE e MATCH :q AND k = :k");
  if( op & 0x10 ) sqlite3_str_appendall(s, " AND ef_search = :ef");
  if( op & 0x20 ) sqlite3_str_appendall(s, " AND genre = :g");
  if( op & 0x40 ) sqlite3_str_appendall(s, " AND rowid IN (:r1, :r2, :r3)");
  if( op & 0x80 ) sqlite3_str_appendall(s, (op & 1) ? " AND distance < :d" : " AND part != 2");
  zSql = sqlite3_str_finish(s);
  run(f, zSql, bindKnn);
  sqlite3_free(zSql);
}

static void bindCommand(Fuzz *f, sqlite3_stmt *pStmt){
  static const char *azCmd[] = { "ef_search=1", "ef_search=3", "ef_search=64", "cache_mb=1",
                                 "cache_mb=0", "integrity-check", "ef_search=4097" };
  sqlite3_bind_text(pStmt, 1, azCmd[fuzzByte(&f->in) % 7], -1, SQLITE_STATIC);
}

static void opSavepoint(Fuzz *f, const char *zVerb){
  char zSql[64];
  snprintf(zSql, sizeof(zSql), "%s s%u", zVerb, fuzzByte(&f->in) % 3);
  fuzzExec(f->db, zSql);
}

static void step(Fuzz *f){
  unsigned op = fuzzByte(&f->in);
  switch( op & 0x0f ){
    case 0: case 1: opInsert(f, op); break;
    case 2: run(f, "UPDATE t SET e = ?1 WHERE rowid = ?2", bindUpdateVector); break;
    case 3:
      if( op & 0x10 ) run(f, "UPDATE t SET rowid = ?2 WHERE rowid = ?1", bindTwoRowids);
      else run(f, "UPDATE t SET genre = ?1 WHERE rowid = ?2", bindUpdateGenre);
      break;
    case 4:
      if( op & 0x10 ) run(f, "DELETE FROM t WHERE genre = ?1", bindGenreOnly);
      else run(f, "DELETE FROM t WHERE rowid = ?1", bindRowid);
      break;
    case 5: case 6: opKnn(f, op); break;
    case 7: fuzzExec(f->db, (op & 0x10) ? "COMMIT" : "BEGIN"); break;
    case 8: fuzzExec(f->db, "ROLLBACK"); break;
    case 9: opSavepoint(f, "SAVEPOINT"); break;
    case 10: opSavepoint(f, (op & 0x10) ? "RELEASE" : "ROLLBACK TO"); break;
    case 11: run(f, "INSERT INTO t(t) VALUES (?1)", bindCommand); break;
    case 12:
      /* Writes that must fail whole: a bad vector, a NULL vector, a
      ** metadata value of the wrong type in the last row. */
      if( op & 0x10 ) fuzzExec(f->db, "INSERT INTO t(rowid, e) VALUES (90, NULL)");
      else if( op & 0x20 ) run(f, "UPDATE t SET e = '[1,2' WHERE rowid = ?1", bindRowid);
      else opInsert(f, 0x20);
      break;
    case 13: f->db = f->aDb[(op>>4) & 1]; break;
    case 14:
      run(f, (op & 0x10) ? "SELECT * FROM t WHERE rowid = ?1"
                         : "SELECT rowid, genre FROM t WHERE rowid >= ?1 ORDER BY rowid", bindRowid);
      break;
    default:
      run(f, "DELETE FROM t WHERE rowid IN (SELECT rowid FROM t WHERE rowid > ?1 LIMIT 3)", bindRowid);
      break;
  }
}

/* ---- the invariants ---------------------------------------------------------------- */

static void checkConsistent(sqlite3 *db, const char *zWhen, int busyOk){
  sqlite3_stmt *pStmt = 0;
  int rc;
  rc = sqlite3_prepare_v2(db, "SELECT vectordb_check('t')", -1, &pStmt, 0);
  if( busyOk && (rc==SQLITE_BUSY || rc==SQLITE_LOCKED) ) return;
  if( rc ) abort();
  rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    const char *z = (const char*)sqlite3_column_text(pStmt, 0);
    FUZZ_ASSERT(z && strcmp(z, "ok")==0, "vectordb_check %s: %s", zWhen, z ? z : "NULL");
  }else{
    FUZZ_ASSERT(busyOk && ((rc&0xff)==SQLITE_BUSY || (rc&0xff)==SQLITE_LOCKED),
                "vectordb_check %s failed: %s", zWhen, sqlite3_errmsg(db));
  }
  sqlite3_finalize(pStmt);
}

typedef struct Hits { int n; sqlite3_int64 aRowid[64]; double aDist[64]; } Hits;

static void collect(sqlite3 *db, const char *zSql, const float *q, int nDim, int k, Hits *p){
  sqlite3_stmt *pStmt = 0;
  int rc;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0) ){
    fprintf(stderr, "fuzz_sql: cannot prepare %s: %s\n", zSql, sqlite3_errmsg(db));
    abort();
  }
  sqlite3_bind_blob(pStmt, 1, q, nDim*4, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 2, k);
  p->n = 0;
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW && p->n<64 ){
    p->aRowid[p->n] = sqlite3_column_int64(pStmt, 0);
    p->aDist[p->n] = sqlite3_column_double(pStmt, 1);
    p->n++;
  }
  FUZZ_ASSERT(rc==SQLITE_ROW || rc==SQLITE_DONE, "%s failed: %s", zSql, sqlite3_errmsg(db));
  sqlite3_finalize(pStmt);
}

static void expectSame(const Hits *a, const Hits *b, const char *zWhat){
  int i;
  FUZZ_ASSERT(a->n==b->n, "%s: %d rows against %d", zWhat, a->n, b->n);
  for(i=0; i<a->n; i++){
    FUZZ_ASSERT(a->aRowid[i]==b->aRowid[i] && a->aDist[i]==b->aDist[i],
                "%s: row %d is %lld (%.9g) against %lld (%.9g)", zWhat, i,
                (long long)a->aRowid[i], a->aDist[i], (long long)b->aRowid[i], b->aDist[i]);
  }
}

/* Exact search against brute force, graph search against exact search. */
static void checkAnswers(Fuzz *f, sqlite3 *db){
  static const float aQuery[3][16] = {
    { 0.5f, -1, 0, 1, 0.5f, -1, 0, 1, 0.5f, -1, 0, 1, 0.5f, -1, 0, 1 },
    { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 },
    { -1, 0, 0.25f, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3 },
  };
  sqlite3_stmt *pStmt = 0;
  char zBrute[200];
  int nRow = 0, iq;
  Hits exact, brute, graph;
  if( sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &pStmt, 0) ) abort();
  if( sqlite3_step(pStmt)==SQLITE_ROW ) nRow = sqlite3_column_int(pStmt, 0);
  sqlite3_finalize(pStmt);
  if( nRow>60 ) return;
  snprintf(zBrute, sizeof(zBrute),
           "SELECT rowid, %s(e, ?1) AS d FROM t WHERE d IS NOT NULL ORDER BY d, rowid LIMIT ?2",
           f->shape.zDistFunc);
  for(iq=0; iq<3; iq++){
    const float *q = aQuery[iq];
    collect(db, "SELECT rowid, distance FROM t WHERE e MATCH ?1 AND k = ?2 AND ef_search = 0",
            q, f->shape.nDim, nRow, &exact);
    collect(db, zBrute, q, f->shape.nDim, nRow, &brute);
    expectSame(&exact, &brute, "exact KNN against brute force");
    collect(db, "SELECT rowid, distance FROM t WHERE e MATCH ?1 AND k = ?2 AND ef_search = 4096",
            q, f->shape.nDim, nRow, &graph);
    expectSame(&graph, &exact, "graph KNN with ef_search >= rows against exact KNN");
  }
}

static const char *azMetric[] = { "l2", "cosine", "dot" };
static const char *azDistFunc[] = { "vec_distance_l2", "vec_distance_cosine", "vec_distance_dot" };

int LLVMFuzzerInitialize(int *pArgc, char ***pArgv){
  (void)pArgc; (void)pArgv;
  fuzzTraceInit();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  Fuzz f;
  char zCreate[400];
  unsigned shape;
  int i, nOp = 0;
  memset(&f, 0, sizeof(f));
  if( nData==0 ) return 0;
  f.in.p = aData;
  f.in.n = nData;
  shape = fuzzByte(&f.in);
  f.shape.zMetric = azMetric[shape % 3];
  f.shape.zDistFunc = azDistFunc[shape % 3];
  f.shape.m = (shape>>2 & 3)==3 ? 8 : 2 + (int)(shape>>2 & 3);
  f.shape.nDim = (shape & 0x10) ? 2 : 4 + 4*(int)(shape>>7);
  f.shape.textPk = (shape>>5) & 1;
  f.shape.secondVec = (shape>>6) & 1;
  f.shape.chunk = (shape & 0x10) ? 8 : 16;

  for(i=0; i<2; i++){
    if( sqlite3_open_v2("file:/fuzz_sql?vfs=memdb", &f.aDb[i],
                        SQLITE_OPEN_READWRITE|SQLITE_OPEN_CREATE|SQLITE_OPEN_URI, 0)!=SQLITE_OK
     || sqlite3_vectordb_init(f.aDb[i], 0, 0)!=SQLITE_OK ){
      fprintf(stderr, "fuzz_sql: cannot open the shared in-memory database\n");
      abort();
    }
    sqlite3_busy_timeout(f.aDb[i], 0);
    fuzzTrace(f.aDb[i]);
  }
  f.db = f.aDb[0];
  snprintf(zCreate, sizeof(zCreate),
           "CREATE VIRTUAL TABLE t USING vectordb(%se float[%d] distance_metric=%s "
           "INDEXED BY hnsw(m=%d, ef_construction=%d), genre text, part integer partition key, %s, "
           "chunk_size=%d)",
           f.shape.textPk ? "id text primary key, " : "", f.shape.nDim, f.shape.zMetric,
           f.shape.m, 2*f.shape.m, f.shape.secondVec ? "e2 int8[2]" : "+aux", f.shape.chunk);
  if( fuzzExec(f.db, zCreate)!=SQLITE_OK ){
    fprintf(stderr, "fuzz_sql: %s: %s\n", zCreate, sqlite3_errmsg(f.db));
    abort();
  }

  while( fuzzLeft(&f.in) && nOp++<200 ){
    step(&f);
    /* FUZZ_CHECK_EACH=1: check after every operation, to find the first
    ** one that breaks the index (for diagnosis; slow). */
    if( getenv("FUZZ_CHECK_EACH") ) checkConsistent(f.db, "after this operation", 1);
  }

  /* End any open transaction; a failed COMMIT is rolled back. */
  for(i=0; i<2; i++){
    if( !sqlite3_get_autocommit(f.aDb[i]) && fuzzExec(f.aDb[i], "COMMIT")!=SQLITE_OK ){
      fuzzExec(f.aDb[i], "ROLLBACK");
    }
  }
  for(i=0; i<2; i++){
    checkConsistent(f.aDb[i], i ? "on the second connection" : "on the first connection", 0);
    checkAnswers(&f, f.aDb[i]);
  }
  fuzzExec(f.aDb[0], "DROP TABLE t");
  sqlite3_close(f.aDb[0]);
  sqlite3_close(f.aDb[1]);
  return 0;
}
