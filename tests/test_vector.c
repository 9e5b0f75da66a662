/*
** Unit tests for vector decoding, JSON parsing and printing, and typed
** distances (src/vdb_vector.c), without SQL.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "vdb_vector.h"

/* Parse z as eType; expect success with nDim elements equal to want[]. */
static void expectParse(const char *z, VdbElemType eType, int nDim, const double *want){
  VdbVector v;
  char *zErr = 0;
  int rc = vdbVectorParseJson(z, (int)strlen(z), eType, &v, &zErr);
  CHECK(rc==SQLITE_OK, "parse %s: %s", z, zErr ? zErr : "?");
  if( rc==SQLITE_OK ){
    int i, same = v.nDim==nDim;
    for(i=0; same && i<nDim; i++) same = vdbVectorElement(&v, i)==want[i];
    CHECK(same, "parse %s: wrong values (nDim %d)", z, v.nDim);
    CHECK(v.eType==eType, "parse %s: type", z);
  }
  vdbVectorClear(&v);
  sqlite3_free(zErr);
}

/* Parse z as eType; expect failure whose message contains zWant. */
static void expectReject(const char *z, VdbElemType eType, const char *zWant){
  VdbVector v;
  char *zErr = 0;
  int rc = vdbVectorParseJson(z, (int)strlen(z), eType, &v, &zErr);
  CHECK(rc!=SQLITE_OK, "parse %s should fail", z);
  CHECK(zErr && strstr(zErr, zWant), "parse %s: message \"%s\" lacks \"%s\"",
        z, zErr ? zErr : "(none)", zWant);
  vdbVectorClear(&v);
  sqlite3_free(zErr);
}

static void testJsonAccepted(void){
  static const double a[] = {1, 2.5, -3};
  static const double b[] = {0, -0.0, 1e-7f, 12345.5};
  static const double c[] = {-128, 0, 127};
  expectParse("[1, 2.5, -3]", VDB_ELEM_F32, 3, a);
  expectParse(" \t\n[1,2.5,-3]\r\n ", VDB_ELEM_F32, 3, a);
  expectParse("[1e0,25E-1,-0.3e1]", VDB_ELEM_F32, 3, a);
  expectParse("[0,-0,1e-7,1.23455e4]", VDB_ELEM_F32, 4, b);
  expectParse("[-128,0,127]", VDB_ELEM_INT8, 3, c);
  expectParse("[ -128 , 0 , 127 ]", VDB_ELEM_INT8, 3, c);
}

static void testJsonRejected(void){
  expectReject("[1 2]", VDB_ELEM_F32, "expected ',' or ']'");
  expectReject("[1,2,]", VDB_ELEM_F32, "expected a number");
  expectReject("[1,2] x", VDB_ELEM_F32, "unexpected text after ']'");
  expectReject("[1,2", VDB_ELEM_F32, "missing ']'");
  expectReject("1,2]", VDB_ELEM_F32, "expected '['");
  expectReject("", VDB_ELEM_F32, "expected '['");
  expectReject("[]", VDB_ELEM_F32, "zero-length");
  expectReject("[ ]", VDB_ELEM_F32, "zero-length");
  expectReject("[nan]", VDB_ELEM_F32, "expected a number");
  expectReject("[inf]", VDB_ELEM_F32, "expected a number");
  expectReject("[+1]", VDB_ELEM_F32, "expected a number");
  expectReject("[.5]", VDB_ELEM_F32, "expected a number");
  expectReject("[1.]", VDB_ELEM_F32, "expected a number");
  expectReject("[01]", VDB_ELEM_F32, "expected ',' or ']'");
  expectReject("[0x10]", VDB_ELEM_F32, "expected ',' or ']'");
  expectReject("[1e]", VDB_ELEM_F32, "expected a number");
  expectReject("[1,,2]", VDB_ELEM_F32, "expected a number");
  expectReject("[[1]]", VDB_ELEM_F32, "expected a number");
  expectReject("[\"1\"]", VDB_ELEM_F32, "expected a number");
  expectReject("[1e39]", VDB_ELEM_F32, "out of the float32 range");
  expectReject("[-1e39]", VDB_ELEM_F32, "out of the float32 range");
  expectReject("[1.5]", VDB_ELEM_INT8, "not an integer");
  expectReject("[1e2]", VDB_ELEM_INT8, "not an integer");
  expectReject("[128]", VDB_ELEM_INT8, "out of range -128..127");
  expectReject("[-129]", VDB_ELEM_INT8, "out of range -128..127");
  expectReject("[1]", VDB_ELEM_BIT, "no JSON form");
}

static void testJsonDimensionLimit(void){
  sqlite3_str *p = sqlite3_str_new(0);
  char *z;
  int i;
  VdbVector v;
  char *zErr = 0;
  sqlite3_str_appendchar(p, 1, '[');
  for(i=0; i<VDB_MAX_DIMS; i++) sqlite3_str_appendf(p, i ? ",%d" : "%d", i%100);
  sqlite3_str_appendchar(p, 1, ']');
  z = sqlite3_str_finish(p);
  CHECK(vdbVectorParseJson(z, (int)strlen(z), VDB_ELEM_F32, &v, &zErr)==SQLITE_OK
        && v.nDim==VDB_MAX_DIMS, "exactly the maximum dimensions parse");
  vdbVectorClear(&v);
  z[strlen(z)-1] = 0;
  z = sqlite3_mprintf("%z,1]", z);
  CHECK(vdbVectorParseJson(z, (int)strlen(z), VDB_ELEM_F32, &v, &zErr)==SQLITE_TOOBIG
        && zErr && strstr(zErr, "maximum of 8192"), "one over the maximum is rejected");
  vdbVectorClear(&v);
  sqlite3_free(zErr);
  sqlite3_free(z);
}

static void testBlobs(void){
  float f[4] = {1, 2, 3, 4};
  unsigned char raw[4*5 + 1];
  VdbVector v;
  char *zErr = 0;
  int rc;

  rc = vdbVectorFromBlob(f, 16, VDB_ELEM_F32, &v, &zErr);
  CHECK(rc==SQLITE_OK && v.nDim==4 && v.pData==(void*)f && v.pOwned==0,
        "aligned float blob is used in place");
  vdbVectorClear(&v);

  /* A blob at an odd address is copied so float loads are aligned. */
  memcpy(raw+1, f, 16);
  rc = vdbVectorFromBlob(raw+1, 16, VDB_ELEM_F32, &v, &zErr);
  CHECK(rc==SQLITE_OK && v.pOwned!=0 && ((uintptr_t)v.pData & 3)==0
        && vdbVectorElement(&v, 3)==4, "misaligned float blob is copied");
  vdbVectorClear(&v);

  rc = vdbVectorFromBlob(f, 6, VDB_ELEM_F32, &v, &zErr);
  CHECK(rc==SQLITE_ERROR && zErr && strstr(zErr, "not a multiple of 4"), "float blob length");
  sqlite3_free(zErr); zErr = 0;

  rc = vdbVectorFromBlob(f, 0, VDB_ELEM_INT8, &v, &zErr);
  CHECK(rc==SQLITE_ERROR && zErr && strstr(zErr, "zero-length"), "empty blob");
  sqlite3_free(zErr); zErr = 0;

  f[2] = NAN;
  rc = vdbVectorFromBlob(f, 16, VDB_ELEM_F32, &v, &zErr);
  CHECK(rc==SQLITE_ERROR && zErr && strstr(zErr, "NaN") && strstr(zErr, "element 2"),
        "NaN in blob: %s", zErr ? zErr : "");
  sqlite3_free(zErr); zErr = 0;
  f[2] = -INFINITY;
  rc = vdbVectorFromBlob(f, 16, VDB_ELEM_F32, &v, &zErr);
  CHECK(rc==SQLITE_ERROR && zErr && strstr(zErr, "-Inf"), "-Inf in blob");
  sqlite3_free(zErr); zErr = 0;

  {
    void *big = calloc((VDB_MAX_DIMS+1)*4, 1);
    rc = vdbVectorFromBlob(big, VDB_MAX_BITS/8, VDB_ELEM_BIT, &v, &zErr);
    CHECK(rc==SQLITE_OK && v.nDim==VDB_MAX_BITS, "bit blob at the limit");
    rc = vdbVectorFromBlob(big, VDB_MAX_BITS/8 + 1, VDB_ELEM_BIT, &v, &zErr);
    CHECK(rc==SQLITE_TOOBIG, "bit blob over the limit");
    sqlite3_free(zErr); zErr = 0;
    rc = vdbVectorFromBlob(big, (VDB_MAX_DIMS+1)*4, VDB_ELEM_F32, &v, &zErr);
    CHECK(rc==SQLITE_TOOBIG && zErr && strstr(zErr, "8193 dimensions"),
          "float blob over the limit: %s", zErr ? zErr : "");
    sqlite3_free(zErr); zErr = 0;
    rc = vdbVectorFromBlob(big, VDB_MAX_DIMS*4, VDB_ELEM_F32, &v, &zErr);
    CHECK(rc==SQLITE_OK && v.nDim==VDB_MAX_DIMS, "float blob at the limit");
    free(big);
  }
  sqlite3_free(zErr);
}

/* Printing then parsing any finite float gives back the same bits. */
static void testJsonRoundTrip(void){
  int i, k;
  for(k=0; k<2000; k++){
    float a[8];
    VdbVector v, w;
    char *zJson, *zErr = 0;
    int same = 1;
    for(i=0; i<8; i++){
      uint32_t bits;
      do{ bits = (uint32_t)tuRand(); memcpy(&a[i], &bits, 4); }while( !isfinite(a[i]) );
    }
    v.eType = VDB_ELEM_F32; v.nDim = 8; v.pData = a; v.pOwned = 0;
    zJson = vdbVectorToJson(&v);
    CHECK(zJson!=0, "to json");
    if( zJson==0 ) continue;
    if( vdbVectorParseJson(zJson, (int)strlen(zJson), VDB_ELEM_F32, &w, &zErr)!=SQLITE_OK ){
      CHECK(0, "reparse %s: %s", zJson, zErr);
    }else{
      for(i=0; i<8; i++){
        same = same && (memcmp(&a[i], &((const float*)w.pData)[i], 4)==0
                        || (a[i]==0 && ((const float*)w.pData)[i]==0));
      }
      CHECK(same, "round trip of %s", zJson);
      vdbVectorClear(&w);
    }
    sqlite3_free(zJson);
    sqlite3_free(zErr);
  }
}

static void testDistances(void){
  const VdbKernels *k = vdbKernelsBest();
  float a[2] = {0, 0}, b[2] = {3, 4}, c[3] = {1, 2, 3};
  int8_t ia[2] = {1, 2}, ib[2] = {3, 5};
  uint8_t ba[1] = {0xff}, bb[1] = {0x0f};
  VdbVector va = {VDB_ELEM_F32, 2, a, 0}, vb = {VDB_ELEM_F32, 2, b, 0};
  VdbVector vc = {VDB_ELEM_F32, 3, c, 0};
  VdbVector via = {VDB_ELEM_INT8, 2, ia, 0}, vib = {VDB_ELEM_INT8, 2, ib, 0};
  VdbVector vba = {VDB_ELEM_BIT, 8, ba, 0}, vbb = {VDB_ELEM_BIT, 8, bb, 0};
  double d;
  int isNull;
  char *zErr = 0;

  CHECK(vdbVectorDistance(k, VDB_METRIC_L2, &va, &vb, &d, &isNull, &zErr)==SQLITE_OK && d==5.0, "l2");
  CHECK(vdbVectorDistance(k, VDB_METRIC_L1, &va, &vb, &d, &isNull, &zErr)==SQLITE_OK && d==7.0, "l1");
  CHECK(vdbVectorDistance(k, VDB_METRIC_DOT, &vb, &vb, &d, &isNull, &zErr)==SQLITE_OK && d==-25.0, "dot");
  CHECK(vdbVectorDistance(k, VDB_METRIC_COSINE, &va, &vb, &d, &isNull, &zErr)==SQLITE_OK && isNull,
        "cosine of a zero vector is NULL");
  CHECK(vdbVectorDistance(k, VDB_METRIC_COSINE, &vb, &vb, &d, &isNull, &zErr)==SQLITE_OK && !isNull
        && fabs(d)<1e-7, "cosine of a vector with itself");
  CHECK(vdbVectorDistance(k, VDB_METRIC_L2, &via, &vib, &d, &isNull, &zErr)==SQLITE_OK
        && fabs(d-sqrt(13.0))<1e-12, "int8 l2");
  CHECK(vdbVectorDistance(k, VDB_METRIC_HAMMING, &vba, &vbb, &d, &isNull, &zErr)==SQLITE_OK && d==4, "hamming");

  CHECK(vdbVectorDistance(k, VDB_METRIC_L2, &va, &vc, &d, &isNull, &zErr)==SQLITE_ERROR
        && zErr && strstr(zErr, "dimension mismatch: 2 vs 3"), "dimension mismatch");
  sqlite3_free(zErr); zErr = 0;
  CHECK(vdbVectorDistance(k, VDB_METRIC_L2, &va, &via, &d, &isNull, &zErr)==SQLITE_ERROR
        && zErr && strstr(zErr, "type mismatch: float32 vs int8"), "type mismatch");
  sqlite3_free(zErr); zErr = 0;
  CHECK(vdbVectorDistance(k, VDB_METRIC_HAMMING, &va, &vb, &d, &isNull, &zErr)==SQLITE_ERROR
        && zErr && strstr(zErr, "needs bit vectors"), "hamming on floats");
  sqlite3_free(zErr); zErr = 0;
  CHECK(vdbVectorDistance(k, VDB_METRIC_L2, &vba, &vbb, &d, &isNull, &zErr)==SQLITE_ERROR
        && zErr && strstr(zErr, "use hamming"), "l2 on bits");
  sqlite3_free(zErr);
}

int main(void){
  sqlite3_initialize();
  testJsonAccepted();
  testJsonRejected();
  testJsonDimensionLimit();
  testBlobs();
  testJsonRoundTrip();
  testDistances();
  return tuFinish();
}
