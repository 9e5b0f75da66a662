/*
** fuzz_dbimage: damaged shadow-table content.
**
** At start-up the target builds a small valid database (512-byte pages)
** with an HNSW-indexed table t -- rows in several chunks, deleted slots, a
** graph of a few levels, table settings -- and serializes it. Each input
** then damages a copy of it in one of two ways, chosen by its first byte:
**
**   image   (first byte >= 0x80) the rest of the input is a whole database
**           image, loaded with sqlite3_deserialize(); the seed is the
**           valid image, so the fuzzer mutates its bytes;
**   sql     (first byte < 0x80) the valid image is loaded and the rest of
**           the input is a list of edits to the shadow tables made with
**           plain SQL (defensive mode off): bytes overwritten inside graph
**           link lists, chunk bitmaps, slot rowids and vector blobs, blobs
**           truncated or extended, levels, slots, settings and entry points
**           set to odd values, rows deleted or added, with queries on t in
**           between so the node cache holds state the edits contradict.
**
** Then the target runs vectordb_check(), KNN queries (graph, exact,
** filtered, ranged), a full scan, inserts, updates, deletes and commands.
** Any result or error is acceptable (SQLITE_CORRUPT_VTAB is expected);
** a crash, a sanitizer report, a hang or an unbounded allocation is a bug.
**
** FUZZ_DBIMAGE_SEEDS=DIR build/fuzz/fuzz_dbimage writes the seed inputs
** (tests/fuzz/gen_corpus.py does this) and exits.
*/
#include "fuzz_util.h"

static unsigned char *gImage = 0;      /* the valid database */
static sqlite3_int64 gImageSize = 0;

#define PAGE_SIZE 512

static void mustExec(sqlite3 *db, const char *zSql){
  char *zErr = 0;
  if( sqlite3_exec(db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
    fprintf(stderr, "fuzz_dbimage: %s: %s\n", zSql, zErr ? zErr : "?");
    abort();
  }
}

/* The valid database: 40 rows in 8-row chunks, some deleted, a second
** chunk emptied and refilled, an HNSW graph with m=3 (so several levels),
** stored settings. */
static void buildImage(void){
  sqlite3 *db = fuzzOpen();
  sqlite3_stmt *pStmt = 0;
  unsigned char *p;
  int i;
  mustExec(db, "PRAGMA page_size=512; PRAGMA auto_vacuum=0;");
  mustExec(db, "CREATE VIRTUAL TABLE t USING vectordb(e float[4] distance_metric=l2 "
               "INDEXED BY hnsw(m=3, ef_construction=6, ef_search=8), genre text, "
               "part integer partition key, +aux, chunk_size=8)");
  mustExec(db, "BEGIN");
  if( sqlite3_prepare_v2(db, "INSERT INTO t(rowid, e, genre, part, aux) VALUES (?1, ?2, ?3, ?4, ?5)",
                         -1, &pStmt, 0) ) abort();
  for(i=1; i<=40; i++){
    float v[4];
    int j;
    for(j=0; j<4; j++) v[j] = (float)((i*(j+3)) % 11) - 5.0f + (float)j*0.25f;
    sqlite3_bind_int(pStmt, 1, i);
    sqlite3_bind_blob(pStmt, 2, v, sizeof(v), SQLITE_TRANSIENT);
    sqlite3_bind_text(pStmt, 3, i%3 ? "drama" : "news", -1, SQLITE_STATIC);
    sqlite3_bind_int(pStmt, 4, i%4);
    if( i%5 ) sqlite3_bind_int(pStmt, 5, i*100);
    else sqlite3_bind_blob(pStmt, 5, "\x01\x02\x03", 3, SQLITE_STATIC);
    if( sqlite3_step(pStmt)!=SQLITE_DONE ) abort();
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  mustExec(db, "DELETE FROM t WHERE rowid % 7 = 0 OR rowid BETWEEN 9 AND 16");
  mustExec(db, "INSERT INTO t(rowid, e, genre) VALUES (100, '[1,2,3,4]', 'jazz'), (101, '[0,0,0,1]', NULL)");
  mustExec(db, "UPDATE t SET e = '[4,3,2,1]' WHERE rowid = 3");
  mustExec(db, "COMMIT");
  mustExec(db, "INSERT INTO t(t) VALUES ('ef_search=10'); INSERT INTO t(t) VALUES ('cache_mb=4')");
  if( sqlite3_prepare_v2(db, "SELECT vectordb_check('t')", -1, &pStmt, 0) ) abort();
  if( sqlite3_step(pStmt)!=SQLITE_ROW || strcmp((const char*)sqlite3_column_text(pStmt, 0), "ok") ){
    fprintf(stderr, "fuzz_dbimage: the base database is not consistent\n");
    abort();
  }
  sqlite3_finalize(pStmt);
  p = sqlite3_serialize(db, "main", &gImageSize, 0);
  if( p==0 ) abort();
  gImage = (unsigned char*)malloc((size_t)gImageSize);
  memcpy(gImage, p, (size_t)gImageSize);
  sqlite3_free(p);
  sqlite3_close(db);
}

/* A connection on a private copy of an image, or NULL if SQLite refuses it. */
static sqlite3 *openImage(const unsigned char *a, size_t n){
  sqlite3 *db = fuzzOpen();
  unsigned char *pCopy = (unsigned char*)sqlite3_malloc64(n ? n : 1);
  if( pCopy==0 ) abort();
  memcpy(pCopy, a, n);
  if( sqlite3_deserialize(db, "main", pCopy, (sqlite3_int64)n, (sqlite3_int64)n,
                          SQLITE_DESERIALIZE_FREEONCLOSE|SQLITE_DESERIALIZE_RESIZEABLE)!=SQLITE_OK ){
    sqlite3_close(db);
    return 0;
  }
  /* Let SQLite's own b-tree code reject damaged pages early. */
  fuzzExec(db, "PRAGMA cell_size_check=ON");
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1000000);
  return db;
}

/* ---- SQL-level damage ------------------------------------------------------------ */

typedef struct BlobColumn { const char *zTable, *zColumn; } BlobColumn;
static const BlobColumn aBlobCol[] = {
  { "t_hnsw00", "links" }, { "t_chunks", "validity" }, { "t_chunks", "rowids" },
  { "t_vectors00", "vectors" }, { "t_hnsw00", "links" }, { "t_rows", "c3" },
};
typedef struct IntColumn { const char *zTable, *zColumn; } IntColumn;
static const IntColumn aIntCol[] = {
  { "t_hnsw00", "level" }, { "t_hnsw00", "rowid" }, { "t_hnsw00", "chunk_id" },
  { "t_hnsw00", "chunk_offset" }, { "t_hnsw00", "nid" }, { "t_rows", "chunk_id" },
  { "t_rows", "chunk_offset" }, { "t_rows", "rowid" }, { "t_chunks", "chunk_id" },
  { "t_vectors00", "chunk_id" }, { "t_free", "chunk_id" }, { "t_rows", "c1" },
};
static const char *azInfoKey[] = {
  "hnsw00_entry", "hnsw00_entry_level", "hnsw00_next_nid", "ef_search", "cache_mb",
  "format", "layout",
};
static const char *azTable[] = {
  "t_hnsw00", "t_rows", "t_chunks", "t_vectors00", "t_free", "t_info",
};

/* An odd value for an integer column or setting. */
static void bindOdd(FuzzIn *in, sqlite3_stmt *pStmt, int iParam){
  static const sqlite3_int64 aInt[] = {
    -1, 0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 40, 41, 100, 101, 4096, 4097, 65536,
    2147483647LL, -2147483647LL-1, 9223372036854775807LL, -9223372036854775807LL-1,
    1048576, 1048577, -4096,
  };
  unsigned sel = fuzzByte(in);
  if( sel<200 ) sqlite3_bind_int64(pStmt, iParam, aInt[sel % (sizeof(aInt)/sizeof(aInt[0]))]);
  else if( sel<210 ) sqlite3_bind_null(pStmt, iParam);
  else if( sel<220 ) sqlite3_bind_text(pStmt, iParam, "x", -1, SQLITE_STATIC);
  else if( sel<230 ) sqlite3_bind_double(pStmt, iParam, 2.5);
  else if( sel<240 ) sqlite3_bind_blob(pStmt, iParam, "\x05", 1, SQLITE_STATIC);
  else sqlite3_bind_int64(pStmt, iParam, (sqlite3_int64)(int16_t)(fuzzByte(in)<<8 | fuzzByte(in)));
}

static void runEdit(sqlite3 *db, const char *zSql, FuzzIn *in, int nOdd, int nRowPick,
                    const uint8_t *pBytes, int nBytes){
  sqlite3_stmt *pStmt = 0;
  int i, iParam = 1;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)!=SQLITE_OK ) return;
  for(i=0; i<nOdd; i++) bindOdd(in, pStmt, iParam++);
  for(i=0; i<nRowPick; i++) sqlite3_bind_int(pStmt, iParam++, (int)fuzzByte(in) % 48);
  if( pBytes ) sqlite3_bind_blob(pStmt, iParam++, pBytes, nBytes, SQLITE_TRANSIENT);
  fuzzDrain(pStmt);
  sqlite3_finalize(pStmt);
}

static void workload(sqlite3 *db, int nRound);

/* One edit of a shadow table, decoded from the input. */
static void editOnce(sqlite3 *db, FuzzIn *in){
  unsigned op = fuzzByte(in);
  char *zSql = 0;
  switch( op % 8 ){
    case 0: case 1: case 2: {           /* bytes of a blob column */
      const BlobColumn *c = &aBlobCol[(op>>3) % 6];
      size_t n;
      const uint8_t *p;
      int iOff = (int)fuzzByte(in);
      unsigned how = fuzzByte(in) % 5;
      p = fuzzBytes(in, 1 + fuzzByte(in) % 16, &n);
      switch( how ){
        case 0: case 1:                 /* overwrite at an offset */
          zSql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = substr(\"%w\", 1, %d) || ?2 || "
                                 "substr(\"%w\", %d) WHERE rowid = (SELECT rowid FROM \"%w\" "
                                 "LIMIT 1 OFFSET ?1)", c->zTable, c->zColumn, c->zColumn,
                                 iOff, c->zColumn, iOff + (int)n + 1, c->zTable);
          break;
        case 2:                         /* truncate */
          zSql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = substr(\"%w\", 1, %d) || substr(?2, 1, 0)"
                                 " WHERE rowid = (SELECT rowid FROM \"%w\" LIMIT 1 OFFSET ?1)",
                                 c->zTable, c->zColumn, c->zColumn, iOff, c->zTable);
          break;
        case 3:                         /* extend */
          zSql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = \"%w\" || ?2 WHERE rowid = "
                                 "(SELECT rowid FROM \"%w\" LIMIT 1 OFFSET ?1)",
                                 c->zTable, c->zColumn, c->zColumn, c->zTable);
          break;
        default:                        /* replace whole */
          zSql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?2 WHERE rowid = "
                                 "(SELECT rowid FROM \"%w\" LIMIT 1 OFFSET ?1)",
                                 c->zTable, c->zColumn, c->zTable);
          break;
      }
      if( zSql ){
        sqlite3_stmt *pStmt = 0;
        if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)==SQLITE_OK ){
          sqlite3_bind_int(pStmt, 1, (int)(op>>6) * 7 % 48);
          sqlite3_bind_blob(pStmt, 2, p, (int)n, SQLITE_TRANSIENT);
          fuzzDrain(pStmt);
        }
        sqlite3_finalize(pStmt);
      }
      break;
    }
    case 3: {                           /* an integer column */
      const IntColumn *c = &aIntCol[(op>>3) % 12];
      zSql = sqlite3_mprintf("UPDATE OR IGNORE \"%w\" SET \"%w\" = ?1 WHERE rowid = "
                             "(SELECT rowid FROM \"%w\" LIMIT 1 OFFSET ?2)",
                             c->zTable, c->zColumn, c->zTable);
      runEdit(db, zSql, in, 1, 1, 0, 0);
      break;
    }
    case 4: {                           /* a setting or entry point */
      const char *zKey = azInfoKey[(op>>3) % 7];
      zSql = sqlite3_mprintf("INSERT OR REPLACE INTO t_info(key, value) VALUES (%Q, ?1)", zKey);
      if( (op>>6)==3 ) zSql = (sqlite3_free(zSql), sqlite3_mprintf("DELETE FROM t_info WHERE key=%Q", zKey));
      runEdit(db, zSql, in, (op>>6)==3 ? 0 : 1, 0, 0, 0);
      break;
    }
    case 5: {                           /* a row goes */
      const char *zTab = azTable[(op>>3) % 6];
      if( strcmp(zTab, "t_info")==0 ) break;
      zSql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE rowid = (SELECT rowid FROM \"%w\" LIMIT 1 OFFSET ?1)",
                             zTab, zTab);
      runEdit(db, zSql, in, 0, 1, 0, 0);
      break;
    }
    case 6: {                           /* a row appears, copied from another */
      static const char *azCopy[] = {
        "INSERT OR IGNORE INTO t_hnsw00 SELECT ?1, rowid+?2, chunk_id, chunk_offset, level, links FROM t_hnsw00 LIMIT 1 OFFSET ?3",
        "INSERT OR IGNORE INTO t_rows(rowid, chunk_id, chunk_offset) SELECT ?1, ?2, chunk_offset FROM t_rows LIMIT 1 OFFSET ?3",
        "INSERT OR IGNORE INTO t_chunks SELECT ?1, validity, rowids FROM t_chunks WHERE ?2 IS NOT NULL LIMIT 1 OFFSET ?3",
        "INSERT OR IGNORE INTO t_vectors00 SELECT ?1, vectors FROM t_vectors00 WHERE ?2 IS NOT NULL LIMIT 1 OFFSET ?3",
      };
      runEdit(db, azCopy[(op>>3) % 4], in, 2, 1, 0, 0);
      break;
    }
    default:                            /* use the table now: the cache fills */
      workload(db, (int)(op>>3) % 2);
      break;
  }
  sqlite3_free(zSql);
}

/* ---- what runs against the damaged table ------------------------------------------ */

static void query(sqlite3 *db, const char *zSql, const float *q){
  sqlite3_stmt *pStmt = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0)!=SQLITE_OK ) return;
  if( q ) sqlite3_bind_blob(pStmt, 1, q, 16, SQLITE_STATIC);
  fuzzCheckRc(db, fuzzDrain(pStmt), zSql);
  sqlite3_finalize(pStmt);
}

static void workload(sqlite3 *db, int nRound){
  static const float aQ[3][4] = { { 1, 2, 3, 4 }, { -5, 0, 0.25f, 1 }, { 0, 0, 0, 1 } };
  int r;
  for(r=0; r<=nRound; r++){
    const float *q = aQ[r % 3];
    query(db, "SELECT vectordb_check('t')", 0);
    query(db, "SELECT rowid, distance, genre, aux FROM t WHERE e MATCH ?1 AND k = 5", q);
    query(db, "SELECT rowid, distance FROM t WHERE e MATCH ?1 AND k = 40 AND ef_search = 200", q);
    query(db, "SELECT rowid, distance FROM t WHERE e MATCH ?1 AND k = 3 AND ef_search = 0", q);
    query(db, "SELECT rowid, distance FROM t WHERE e MATCH ?1 AND k = 4 AND genre = 'drama'", q);
    query(db, "SELECT rowid, distance FROM t WHERE e MATCH ?1 AND k = 4 AND part = 1 AND rowid > 2", q);
    query(db, "SELECT rowid, distance FROM t WHERE e MATCH ?1 AND k = 9 AND distance < 6", q);
    query(db, "SELECT * FROM t", 0);
    query(db, "SELECT e FROM t WHERE rowid IN (1, 2, 3, 100)", 0);
    query(db, "INSERT INTO t(rowid, e, genre) VALUES (200, ?1, 'news')", q);
    query(db, "INSERT INTO t(e, genre, part) VALUES (?1, 'drama', 2)", q);
    query(db, "UPDATE t SET e = ?1 WHERE rowid IN (1, 5, 100)", q);
    query(db, "UPDATE t SET rowid = rowid + 1000 WHERE rowid IN (2, 17)", 0);
    query(db, "UPDATE t SET genre = 'jazz' WHERE rowid = 4", 0);
    query(db, "DELETE FROM t WHERE rowid IN (3, 18, 101, 200)", 0);
    query(db, "INSERT INTO t(t) VALUES ('integrity-check')", 0);
    query(db, "INSERT INTO t(t) VALUES ('cache_mb=1')", 0);
    query(db, "SELECT vectordb_check('t')", 0);
  }
}

/* ---- entry points ---------------------------------------------------------------------- */

static void writeSeed(const char *zDir, const char *zName, const unsigned char *a, size_t n){
  char zPath[512];
  FILE *f;
  snprintf(zPath, sizeof(zPath), "%s/%s", zDir, zName);
  f = fopen(zPath, "wb");
  if( f==0 || fwrite(a, 1, n, f)!=n ){ fprintf(stderr, "cannot write %s\n", zPath); exit(1); }
  fclose(f);
}

int LLVMFuzzerInitialize(int *pArgc, char ***pArgv){
  const char *zSeeds = getenv("FUZZ_DBIMAGE_SEEDS");
  (void)pArgc; (void)pArgv;
  fuzzTraceInit();
  buildImage();
  if( zSeeds ){
    /* The valid image as it is, and a few edit lists. */
    static const unsigned char aEdit[][12] = {
      { 0x10, 0x00, 0x00, 0x08, 0x02, 0xff, 0x7f },            /* link count of a node */
      { 0x00, 0x30, 0x0a, 0x03, 0x08, 0x01, 0x00, 0x00 },      /* a link nid */
      { 0x03, 0x00, 0x05 },                                    /* a node's level */
      { 0x04, 0x03, 0x00 },                                    /* the entry point */
      { 0x24, 0x0c },                                          /* entry level */
      { 0x01, 0x00, 0x00, 0x01, 0x00 },                        /* a chunk bitmap */
      { 0x0a, 0x00, 0x02, 0x00 },                              /* truncate a vector blob */
      { 0x07, 0x00, 0x05, 0x00, 0x1b, 0x05, 0x00 },           /* query, delete a row, query */
      { 0x27, 0x00, 0x1c, 0x02 },                              /* cache_mb */
    };
    unsigned char *a = (unsigned char*)malloc((size_t)gImageSize + 1);
    char zName[32];
    size_t i;
    a[0] = 0x80;
    memcpy(a+1, gImage, (size_t)gImageSize);
    writeSeed(zSeeds, "image-valid", a, (size_t)gImageSize + 1);
    free(a);
    for(i=0; i<sizeof(aEdit)/sizeof(aEdit[0]); i++){
      unsigned char aSeed[1 + sizeof(aEdit[0])];
      aSeed[0] = 0x00;                                         /* sql mode */
      memcpy(aSeed+1, aEdit[i], sizeof(aEdit[i]));
      snprintf(zName, sizeof(zName), "edit-%02d", (int)i);
      writeSeed(zSeeds, zName, aSeed, sizeof(aSeed));
    }
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  sqlite3 *db;
  FuzzIn in;
  int nEdit = 0;
  if( nData==0 ) return 0;
  if( aData[0]>=0x80 ){
    db = openImage(aData+1, nData-1);
    if( db==0 ) return 0;
  }else{
    db = openImage(gImage, (size_t)gImageSize);
    if( db==0 ) abort();
    in.p = aData+1;
    in.n = nData-1;
    while( fuzzLeft(&in) && nEdit++<32 ) editOnce(db, &in);
  }
  workload(db, 0);
  sqlite3_close(db);
  return 0;
}
