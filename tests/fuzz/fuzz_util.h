/*
** Helpers shared by the libFuzzer targets in tests/fuzz/.
**
** Each target links the vectordb sources compiled with -DSQLITE_CORE
** against the system SQLite and registers the extension on a fresh
** in-memory connection per input, so no state survives from one input to
** the next (libFuzzer's leak check then sees every allocation freed).
**
** FuzzIn hands out the input bytes as small decisions: a byte, a number in
** a range, a run of bytes. Running past the end yields zeros, so every
** input decodes to some sequence of operations.
*/
#ifndef VDB_FUZZ_UTIL_H
#define VDB_FUZZ_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "vectordb.h"

typedef struct FuzzIn {
  const uint8_t *p;
  size_t n;
} FuzzIn;

static inline int fuzzLeft(const FuzzIn *in){ return in->n>0; }

static inline unsigned fuzzByte(FuzzIn *in){
  unsigned v;
  if( in->n==0 ) return 0;
  v = in->p[0];
  in->p++; in->n--;
  return v;
}

/* A number in lo..hi (inclusive), from one or two bytes. */
static inline int fuzzRange(FuzzIn *in, int lo, int hi){
  unsigned span = (unsigned)(hi - lo) + 1, v = fuzzByte(in);
  if( span>256 ) v = (v<<8) | fuzzByte(in);
  return lo + (int)(v % span);
}

/* Up to nMax bytes; *pn receives how many. Points into the input. */
static inline const uint8_t *fuzzBytes(FuzzIn *in, size_t nMax, size_t *pn){
  const uint8_t *p = in->p;
  size_t n = nMax<in->n ? nMax : in->n;
  in->p += n; in->n -= n;
  *pn = n;
  return p;
}

/* A float from a small table of interesting values or four raw bytes. */
static inline float fuzzFloat(FuzzIn *in){
  static const float aPick[] = { 0.0f, 1.0f, -1.0f, 0.5f, 2.0f, -3.0f, 1e-7f, 100.0f };
  unsigned sel = fuzzByte(in);
  if( sel<0xf0 ) return aPick[sel & 7] + (float)((int)(sel>>3) - 15) * 0.125f;
  {
    uint32_t bits = 0;
    int i;
    float f;
    for(i=0; i<4; i++) bits = (bits<<8) | fuzzByte(in);
    memcpy(&f, &bits, 4);
    return f;
  }
}

/* With FUZZ_TRACE set in the environment, print every statement a
** connection runs (vectordb's own shadow-table statements included) and
** every error, to see what an input does. */
static int fuzzTraceCb(unsigned mask, void *pCtx, void *pStmt, void *pX){
  (void)pCtx; (void)pX;
  if( mask==SQLITE_TRACE_STMT ){
    char *z = sqlite3_expanded_sql((sqlite3_stmt*)pStmt);
    fprintf(stderr, "[%p] %s\n", (void*)sqlite3_db_handle((sqlite3_stmt*)pStmt), z ? z : "?");
    sqlite3_free(z);
  }
  return 0;
}
static void fuzzErrLog(void *pArg, int rc, const char *zMsg){
  (void)pArg;
  fprintf(stderr, "  -> error %d: %s\n", rc, zMsg);
}
static inline void fuzzTrace(sqlite3 *db){
  if( getenv("FUZZ_TRACE") ) sqlite3_trace_v2(db, SQLITE_TRACE_STMT, fuzzTraceCb, 0);
}
static inline void fuzzTraceInit(void){
  if( getenv("FUZZ_TRACE") ) sqlite3_config(SQLITE_CONFIG_LOG, fuzzErrLog, (void*)0);
}

/* A fresh in-memory database with vectordb registered. Limits keep a
** single statement's work proportional to the input. */
static inline sqlite3 *fuzzOpen(void){
  sqlite3 *db = 0;
  if( sqlite3_open(":memory:", &db)!=SQLITE_OK ){
    fprintf(stderr, "fuzz: cannot open a database\n");
    abort();
  }
  if( sqlite3_vectordb_init(db, 0, 0)!=SQLITE_OK ){
    fprintf(stderr, "fuzz: cannot register vectordb\n");
    abort();
  }
  fuzzTrace(db);
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 4000000);
  sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 200000);
  return db;
}

/* Run SQL, ignoring errors: most fuzzed statements are meant to fail. */
static inline int fuzzExec(sqlite3 *db, const char *zSql){
  return sqlite3_exec(db, zSql, 0, 0, 0);
}

/* Step a prepared statement to the end, reading every column of every
** row; returns the final result code. */
static inline int fuzzDrain(sqlite3_stmt *pStmt){
  int rc, i;
  while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
    for(i=0; i<sqlite3_column_count(pStmt); i++){
      switch( sqlite3_column_type(pStmt, i) ){
        case SQLITE_BLOB: (void)sqlite3_column_blob(pStmt, i); break;
        case SQLITE_TEXT: (void)sqlite3_column_text(pStmt, i); break;
        default: (void)sqlite3_column_double(pStmt, i); break;
      }
    }
  }
  return rc;
}

/* Fail loudly: libFuzzer records the input that got here. */
#define FUZZ_ASSERT(cond, ...) do{ if( !(cond) ){ \
  fprintf(stderr, "fuzz assertion failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
  fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); abort(); } }while(0)

/* Result codes no statement may end with, whatever its input: they mean
** an internal code escaped (SQLITE_NOTFOUND reads "unknown operation") or
** an interface was misused. */
static inline void fuzzCheckRc(sqlite3 *db, int rc, const char *zSql){
  int prim = rc & 0xff;
  FUZZ_ASSERT(prim!=SQLITE_INTERNAL && prim!=SQLITE_NOTFOUND && prim!=SQLITE_MISUSE
              && prim!=SQLITE_RANGE && prim!=SQLITE_EMPTY && prim!=SQLITE_FORMAT,
              "%s ended with code %d: %s", zSql, rc, sqlite3_errmsg(db));
}

#endif
