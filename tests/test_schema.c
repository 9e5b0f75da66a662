/*
** Unit tests for the vectordb(...) declaration parser.
*/
#include <string.h>
#include "testutil.h"
#include "vdb_index.h"
#include "vdb_schema.h"

/* Parse the NULL-terminated argument list; returns the definition or NULL
** with *pzErr set. */
static VdbTableDef *parse(const char **azArg, char **pzErr){
  int n = 0;
  VdbTableDef *pDef = 0;
  while( azArg[n] ) n++;
  *pzErr = 0;
  vdbSchemaParse(n, azArg, &pDef, pzErr);
  return pDef;
}

static void expectError(const char **azArg, const char *zWant){
  char *zErr;
  VdbTableDef *pDef = parse(azArg, &zErr);
  CHECK(pDef==0, "\"%s\" should be rejected", azArg[0]);
  CHECK(zErr && strstr(zErr, zWant), "\"%s\": message \"%s\" lacks \"%s\"",
        azArg[0], zErr ? zErr : "(none)", zWant);
  vdbSchemaFree(pDef);
  sqlite3_free(zErr);
}

#define ARGS(...) ((const char*[]){ __VA_ARGS__, 0 })

/* A column's index is of the named kind. */
static int isKind(const VdbColumnDef *c, const char *zKind){
  return c->index.pKind==vdbIndexKindFind(zKind, -1);
}
/* A parameter's default in the named kind's table. */
static int paramDefault(const char *zKind, const char *zParam){
  const VdbIndexParam *p = vdbIndexParamFind(vdbIndexKindFind(zKind, -1), zParam, 0);
  return p ? p->iDefault : -1;
}

static void testFullDeclaration(void){
  char *zErr;
  VdbTableDef *p = parse(ARGS("id integer primary key",
      "embedding float[768] distance_metric=cosine INDEXED BY hnsw(m=32, ef_construction=100, ef_search=50)",
      "user_id integer partition key", "genre text", "year integer", "score float",
      "flag boolean", "+body text", "+extra", "codes int8[16]", "sig bit[64]",
      "chunk_size=256"), &zErr);
  CHECK(p!=0, "full declaration parses: %s", zErr ? zErr : "");
  if( p==0 ){ sqlite3_free(zErr); return; }
  CHECK(p->zPkName && strcmp(p->zPkName, "id")==0 && !p->pkIsText, "integer primary key");
  CHECK(p->chunkSize==256, "chunk_size");
  CHECK(p->nCol==10, "ten non-key columns, got %d", p->nCol);
  CHECK(p->aCol[0].eKind==VDB_COL_VECTOR && p->aCol[0].eElem==VDB_ELEM_F32 && p->aCol[0].nDim==768
        && p->aCol[0].eMetric==VDB_METRIC_COSINE, "vector column");
  CHECK(isKind(&p->aCol[0], "hnsw") && vdbIndexParamValue(&p->aCol[0].index, "m")==32
        && vdbIndexParamValue(&p->aCol[0].index, "ef_construction")==100
        && vdbIndexParamValue(&p->aCol[0].index, "ef_search")==50, "hnsw parameters");
  CHECK(strcmp(p->aCol[0].index.zSignature, ":hnsw(32,100,cosine)")==0, "hnsw layout signature %s",
        p->aCol[0].index.zSignature);
  CHECK(p->aCol[1].eKind==VDB_COL_PARTITION && p->aCol[1].eValType==VDB_VAL_INTEGER, "partition key");
  CHECK(p->aCol[2].eKind==VDB_COL_METADATA && p->aCol[2].eValType==VDB_VAL_TEXT, "metadata text");
  CHECK(p->aCol[4].eValType==VDB_VAL_FLOAT && p->aCol[5].eValType==VDB_VAL_BOOLEAN, "metadata float, boolean");
  CHECK(p->aCol[6].eKind==VDB_COL_AUX && p->aCol[6].eValType==VDB_VAL_TEXT, "aux text");
  CHECK(p->aCol[7].eKind==VDB_COL_AUX && p->aCol[7].eValType==VDB_VAL_ANY, "aux without type");
  CHECK(p->aCol[8].eElem==VDB_ELEM_INT8 && p->aCol[8].eMetric==VDB_METRIC_L2
        && isKind(&p->aCol[8], "flat") && p->aCol[8].index.zSignature[0]==0, "int8 column defaults");
  CHECK(p->aCol[9].eElem==VDB_ELEM_BIT && p->aCol[9].nDim==64 && p->aCol[9].eMetric==VDB_METRIC_HAMMING,
        "bit column uses hamming");
  CHECK(vdbSchemaCount(p, VDB_COL_VECTOR)==3 && vdbSchemaCount(p, VDB_COL_AUX)==2, "counts");
  vdbSchemaFree(p);
}

static void testSpellings(void){
  char *zErr;
  VdbTableDef *p = parse(ARGS("\"my vec\" F32 [ 4 ]  DISTANCE_METRIC = L1", "`key` TEXT PRIMARY KEY",
                              "[odd name] int", "e float[8] indexed by flat()"), &zErr);
  CHECK(p!=0, "alternative spellings parse: %s", zErr ? zErr : "");
  if( p ){
    CHECK(strcmp(p->aCol[0].zName, "my vec")==0 && p->aCol[0].nDim==4 && p->aCol[0].eMetric==VDB_METRIC_L1,
          "quoted vector column");
    CHECK(p->pkIsText && strcmp(p->zPkName, "key")==0, "text primary key");
    CHECK(strcmp(p->aCol[1].zName, "odd name")==0, "bracket-quoted name");
    CHECK(isKind(&p->aCol[2], "flat"), "flat()");
  }
  vdbSchemaFree(p);
  sqlite3_free(zErr);
  /* Comments between tokens reach the module verbatim. */
  p = parse(ARGS("embedding float /* pixels */ [784] -- 28 x 28\n  INDEXED BY hnsw(m=8) -- graph",
                 "id integer /* the key */ primary key"), &zErr);
  CHECK(p && p->aCol[0].nDim==784 && isKind(&p->aCol[0], "hnsw") && vdbIndexParamValue(&p->aCol[0].index, "m")==8
        && p->zPkName, "comments inside declarations: %s", zErr ? zErr : "");
  vdbSchemaFree(p);
  sqlite3_free(zErr); zErr = 0;
  p = parse(ARGS("e float[128]"), &zErr);
  CHECK(p && p->chunkSize==1024, "128-d floats: default chunk of 1024 rows");
  vdbSchemaFree(p);
  p = parse(ARGS("e float[784]", "small float[4]"), &zErr);
  CHECK(p && p->chunkSize==256, "784-d floats: chunk blobs kept near 1 MiB (256 rows)");
  vdbSchemaFree(p);
  p = parse(ARGS("e float[8192]"), &zErr);
  CHECK(p && p->chunkSize==64, "the smallest default chunk is 64 rows");
  vdbSchemaFree(p);
  /* With an hnsw column the chunks stay near 16 KiB: a cold graph walk
  ** reads a whole chunk for each node it meets. */
  p = parse(ARGS("e float[128] INDEXED BY hnsw()"), &zErr);
  CHECK(p && p->chunkSize==32, "128-d floats with hnsw: 32 rows, got %d", p ? p->chunkSize : -1);
  vdbSchemaFree(p);
  p = parse(ARGS("e float[384] INDEXED BY hnsw()"), &zErr);
  CHECK(p && p->chunkSize==8, "384-d floats with hnsw: 8 rows (12 KiB), got %d", p ? p->chunkSize : -1);
  vdbSchemaFree(p);
  p = parse(ARGS("e float[784] INDEXED BY hnsw()", "f float[4]"), &zErr);
  CHECK(p && p->chunkSize==8, "784-d floats with hnsw: 8 rows, got %d", p ? p->chunkSize : -1);
  vdbSchemaFree(p);
  p = parse(ARGS("e float[8192] INDEXED BY hnsw()"), &zErr);
  CHECK(p && p->chunkSize==8, "8192-d floats with hnsw: the smallest chunk, 8 rows, got %d", p ? p->chunkSize : -1);
  vdbSchemaFree(p);
  p = parse(ARGS("e float[128] INDEXED BY hnsw()", "chunk_size=512"), &zErr);
  CHECK(p && p->chunkSize==512, "a declared chunk_size wins over the hnsw default");
  vdbSchemaFree(p);
  p = parse(ARGS("e float[4] INDEXED BY hnsw()"), &zErr);
  CHECK(p && vdbIndexParamValue(&p->aCol[0].index, "m")==paramDefault("hnsw", "m")
        && vdbIndexParamValue(&p->aCol[0].index, "ef_construction")==paramDefault("hnsw", "ef_construction")
        && vdbIndexParamValue(&p->aCol[0].index, "ef_search")==paramDefault("hnsw", "ef_search")
        && paramDefault("hnsw", "m")==16 && paramDefault("hnsw", "ef_construction")==200
        && paramDefault("hnsw", "ef_search")==64, "hnsw defaults");
  vdbSchemaFree(p);
}

static void testRejections(void){
  expectError(ARGS("e float64[4]"), "unknown column type \"float64\"");
  expectError(ARGS("e bitter[8]"), "unknown column type \"bitter\"");
  expectError(ARGS("e float[0]"), "dimension count must be an integer from 1 to 8192");
  expectError(ARGS("e float[8193]"), "from 1 to 8192");
  expectError(ARGS("e float[x]"), "dimension count");
  expectError(ARGS("e float[4"), "expected ']'");
  expectError(ARGS("e bit[12]"), "divisible by 8");
  expectError(ARGS("e float[4] distance_metric=euclid"), "unknown distance_metric \"euclid\"");
  expectError(ARGS("e float[4] distance_metric=hamming"), "needs a bit[N] column");
  expectError(ARGS("e bit[8] distance_metric=l2"), "hamming only");
  expectError(ARGS("e float[4] distance=l2"), "unexpected \"distance\"");
  expectError(ARGS("e float[4] INDEXED BY ivf()"), "unknown index \"ivf\" (expected hnsw(...) or flat())");
  expectError(ARGS("e float[4] INDEXED BY hnsw(cache_mb=8)"), "unknown hnsw parameter \"cache_mb\"");
  expectError(ARGS("e float[4] INDEXED BY hnsw(m=1)"), "m must be an integer from 2 to 128");
  expectError(ARGS("e float[4] INDEXED BY hnsw(ef=10)"), "unknown hnsw parameter \"ef\"");
  expectError(ARGS("e float[4] INDEXED BY hnsw(m=16, ef_construction=8)"), "at least m");
  expectError(ARGS("e float[4] INDEXED BY hnsw(m=16"), "expected ',' or ')'");
  expectError(ARGS("e float[4] INDEXED BY flat(m=2)"), "flat() takes no parameters");
  expectError(ARGS("e int8[4] INDEXED BY hnsw()"), "needs a float[N] column");
  expectError(ARGS("e float[4] distance_metric=l1 INDEXED BY hnsw()"), "l2, cosine or dot");
  expectError(ARGS("e float[4]", "chunk_size=7"), "multiple of 8");
  expectError(ARGS("e float[4]", "colour=red"), "unknown table option \"colour\"");
  expectError(ARGS("e float[4]", "E text"), "duplicate or reserved column name \"E\"");
  expectError(ARGS("e float[4]", "distance float"), "reserved column name \"distance\"");
  expectError(ARGS("e float[4]", "k integer"), "reserved");
  expectError(ARGS("e float[4]", "a int primary key", "b int primary key"), "at most one primary key");
  expectError(ARGS("e float[4]", "a float primary key"), "integer or text");
  expectError(ARGS("e float[4]", "+a int primary key"), "auxiliary column cannot be the primary key");
  expectError(ARGS("e float[4]", "p float partition key"), "partition key must be integer or text");
  expectError(ARGS("e float[4]", "m blob"), "metadata columns cannot be blob");
  expectError(ARGS("e float[4]", "m text not null"), "unexpected \"not\"");
  expectError(ARGS("e float[4]", "m varchar"), "unknown column type \"varchar\"");
  expectError(ARGS("e float[4]", "m"), "needs a type");
  expectError(ARGS("e float[4]", ""), "empty column definition");
  expectError(ARGS("genre text"), "at least one vector column");
  expectError(ARGS("a float[1]", "b float[1]", "c float[1]", "d float[1]", "e float[1]", "f float[1]",
                   "g float[1]", "h float[1]", "i float[1]", "j float[1]", "k2 float[1]", "l float[1]",
                   "m float[1]", "n float[1]", "o float[1]", "p float[1]", "q float[1]"),
              "17 vector columns declared; the maximum is 16");
  expectError(ARGS("e float[4]", "a int partition key", "b int partition key", "c int partition key",
                   "d int partition key", "f int partition key"), "5 partition key columns");
}

int main(void){
  sqlite3_initialize();
  testFullDeclaration();
  testSpellings();
  testRejections();
  return tuFinish();
}
