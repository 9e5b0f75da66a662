/*
** Scalar SQL functions over vectors, with sqlite-vec's names and
** semantics (stricter on input, see vdb_vector.h and README.md).
**
** Every function receives the connection's kernel table as its user data,
** so the SIMD level is chosen once per connection and no global state is
** written after load.
**
** A NULL vector argument yields NULL, as SQL's own scalar functions do, so
** that a LEFT JOIN or a row without an embedding does not abort a query.
*/
#include <math.h>
#include <string.h>
#include "vdb_func.h"
#include "vdb_vector.h"

#define VDB_VERSION_STRING "v" VDB_VERSION

static const VdbKernels *vdbFuncKernels(sqlite3_context *ctx){
  return (const VdbKernels*)sqlite3_user_data(ctx);
}

/* Report an error from a decoding helper: its message, or OOM. */
static void vdbResultError(sqlite3_context *ctx, int rc, char *zErr, const char *zFunc){
  if( rc==SQLITE_NOMEM || zErr==0 ){
    sqlite3_result_error_nomem(ctx);
  }else{
    char *zMsg = sqlite3_mprintf("%s: %s", zFunc, zErr);
    if( zMsg ){
      sqlite3_result_error(ctx, zMsg, -1);
      if( rc!=SQLITE_ERROR ) sqlite3_result_error_code(ctx, rc);
    }else{
      sqlite3_result_error_nomem(ctx);
    }
    sqlite3_free(zMsg);
  }
  sqlite3_free(zErr);
}

/* Decode argument iArg; on failure the error is already reported. A NULL
** argument sets *pIsNull and the caller returns NULL. */
static int vdbFuncArg(sqlite3_context *ctx, sqlite3_value **argv, int iArg,
                      const char *zFunc, VdbVector *pVec, int *pIsNull){
  char *zErr = 0;
  int rc;
  *pIsNull = sqlite3_value_type(argv[iArg])==SQLITE_NULL;
  memset(pVec, 0, sizeof(*pVec));
  if( *pIsNull ) return SQLITE_OK;
  rc = vdbVectorFromValue(argv[iArg], pVec, &zErr);
  if( rc!=SQLITE_OK ) vdbResultError(ctx, rc, zErr, zFunc);
  return rc;
}

/* Return a vector's bytes, tagged with its type's subtype. */
static void vdbResultVector(sqlite3_context *ctx, VdbElemType eType,
                            const void *pData, int nDim){
  int nByte = (int)vdbVectorByteSize(eType, nDim);
  sqlite3_result_blob(ctx, pData, nByte, SQLITE_TRANSIENT);
  sqlite3_result_subtype(ctx, (unsigned int)vdbElemTypeSubtype(eType));
}

/* ---- constructors ------------------------------------------------------ */

static void vdbConstructor(sqlite3_context *ctx, sqlite3_value *pArg,
                           VdbElemType eType, const char *zFunc){
  VdbVector v;
  char *zErr = 0;
  int rc;
  if( sqlite3_value_type(pArg)==SQLITE_NULL ){ sqlite3_result_null(ctx); return; }
  rc = vdbVectorFromValueAs(pArg, eType, &v, &zErr);
  if( rc!=SQLITE_OK ){ vdbResultError(ctx, rc, zErr, zFunc); return; }
  vdbResultVector(ctx, eType, v.pData, v.nDim);
  vdbVectorClear(&v);
}

static void vdbF32Func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbConstructor(ctx, argv[0], VDB_ELEM_F32, "vec_f32");
}
static void vdbInt8Func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbConstructor(ctx, argv[0], VDB_ELEM_INT8, "vec_int8");
}
static void vdbBitFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  if( sqlite3_value_type(argv[0])==SQLITE_TEXT ){
    sqlite3_result_error(ctx, "vec_bit: bit vectors must be given as a BLOB", -1);
    return;
  }
  vdbConstructor(ctx, argv[0], VDB_ELEM_BIT, "vec_bit");
}

/* ---- inspection -------------------------------------------------------- */

static void vdbLengthFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  VdbVector v;
  int isNull;
  (void)argc;
  if( vdbFuncArg(ctx, argv, 0, "vec_length", &v, &isNull) ) return;
  if( isNull ){ sqlite3_result_null(ctx); return; }
  sqlite3_result_int(ctx, v.nDim);
  vdbVectorClear(&v);
}

static void vdbTypeFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  VdbVector v;
  int isNull;
  (void)argc;
  if( vdbFuncArg(ctx, argv, 0, "vec_type", &v, &isNull) ) return;
  if( isNull ){ sqlite3_result_null(ctx); return; }
  sqlite3_result_text(ctx, vdbElemTypeName(v.eType), -1, SQLITE_STATIC);
  vdbVectorClear(&v);
}

static void vdbToJsonFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  VdbVector v;
  int isNull;
  char *zJson;
  (void)argc;
  if( vdbFuncArg(ctx, argv, 0, "vec_to_json", &v, &isNull) ) return;
  if( isNull ){ sqlite3_result_null(ctx); return; }
  zJson = vdbVectorToJson(&v);
  vdbVectorClear(&v);
  if( zJson==0 ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_text(ctx, zJson, -1, sqlite3_free);
  sqlite3_result_subtype(ctx, 74);   /* 'J': JSON, as SQLite's json1 tags it */
}

/* ---- arithmetic -------------------------------------------------------- */

/* Element-wise a+b or a-b. int8 wraps modulo 256 as in sqlite-vec;
** float32 rejects a result that overflows to infinity. */
static void vdbAddSub(sqlite3_context *ctx, sqlite3_value **argv, int isSub,
                      const char *zFunc){
  VdbVector a, b;
  int nullA, nullB, i;
  void *pOut = 0;
  char *zMismatch;
  if( vdbFuncArg(ctx, argv, 0, zFunc, &a, &nullA) ) return;
  if( vdbFuncArg(ctx, argv, 1, zFunc, &b, &nullB) ){ vdbVectorClear(&a); return; }
  if( nullA || nullB ){ sqlite3_result_null(ctx); goto done; }
  zMismatch = vdbVectorMismatch(&a, &b);
  if( zMismatch ){ vdbResultError(ctx, SQLITE_ERROR, zMismatch, zFunc); goto done; }
  if( a.eType==VDB_ELEM_BIT ){
    char *z = sqlite3_mprintf("%s is not defined for bit vectors", zFunc);
    if( z ){ sqlite3_result_error(ctx, z, -1); sqlite3_free(z); }
    else sqlite3_result_error_nomem(ctx);
    goto done;
  }
  pOut = sqlite3_malloc64(vdbVectorByteSize(a.eType, a.nDim));
  if( pOut==0 ){ sqlite3_result_error_nomem(ctx); goto done; }
  if( a.eType==VDB_ELEM_F32 ){
    const float *x = (const float*)a.pData, *y = (const float*)b.pData;
    float *r = (float*)pOut;
    for(i=0; i<a.nDim; i++){
      r[i] = isSub ? x[i]-y[i] : x[i]+y[i];
      if( !isfinite(r[i]) ){
        char *z = sqlite3_mprintf("%s: result element %d overflows float32", zFunc, i);
        if( z ){ sqlite3_result_error(ctx, z, -1); sqlite3_free(z); }
        else sqlite3_result_error_nomem(ctx);
        goto done;
      }
    }
  }else{
    const int8_t *x = (const int8_t*)a.pData, *y = (const int8_t*)b.pData;
    int8_t *r = (int8_t*)pOut;
    for(i=0; i<a.nDim; i++){
      int s = isSub ? (int)x[i]-(int)y[i] : (int)x[i]+(int)y[i];
      r[i] = (int8_t)(uint8_t)(unsigned)s;
    }
  }
  vdbResultVector(ctx, a.eType, pOut, a.nDim);
done:
  sqlite3_free(pOut);
  vdbVectorClear(&a);
  vdbVectorClear(&b);
}

static void vdbAddFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbAddSub(ctx, argv, 0, "vec_add");
}
static void vdbSubFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbAddSub(ctx, argv, 1, "vec_sub");
}

static void vdbNormalizeFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  VdbVector v;
  int isNull, i;
  double norm = 0;
  float *pOut;
  (void)argc;
  if( vdbFuncArg(ctx, argv, 0, "vec_normalize", &v, &isNull) ) return;
  if( isNull ){ sqlite3_result_null(ctx); return; }
  if( v.eType!=VDB_ELEM_F32 ){
    sqlite3_result_error(ctx, "vec_normalize: only float32 vectors can be normalized", -1);
    vdbVectorClear(&v);
    return;
  }
  for(i=0; i<v.nDim; i++){
    double x = ((const float*)v.pData)[i];
    norm += x*x;
  }
  if( norm==0 ){
    sqlite3_result_error(ctx, "vec_normalize: cannot normalize a zero vector", -1);
    vdbVectorClear(&v);
    return;
  }
  norm = sqrt(norm);
  pOut = (float*)sqlite3_malloc64((sqlite3_uint64)v.nDim * 4);
  if( pOut==0 ){ sqlite3_result_error_nomem(ctx); vdbVectorClear(&v); return; }
  for(i=0; i<v.nDim; i++) pOut[i] = (float)(((const float*)v.pData)[i] / norm);
  vdbResultVector(ctx, VDB_ELEM_F32, pOut, v.nDim);
  sqlite3_free(pOut);
  vdbVectorClear(&v);
}

static void vdbSliceFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  VdbVector v;
  int isNull;
  sqlite3_int64 iStart = 0, iEnd = 0;
  char *zErr = 0;
  int bad = 1;
  (void)argc;
  if( vdbFuncArg(ctx, argv, 0, "vec_slice", &v, &isNull) ) return;
  if( isNull ){ sqlite3_result_null(ctx); return; }
  if( sqlite3_value_type(argv[1])!=SQLITE_INTEGER
   || sqlite3_value_type(argv[2])!=SQLITE_INTEGER ){
    zErr = sqlite3_mprintf("start and end must be integers");
  }else{
    iStart = sqlite3_value_int64(argv[1]);
    iEnd = sqlite3_value_int64(argv[2]);
    if( iStart<0 || iEnd>v.nDim || iStart>iEnd ){
      zErr = sqlite3_mprintf("slice [%lld, %lld) is not within the vector's "
                             "%d elements", iStart, iEnd, v.nDim);
    }else if( iStart==iEnd ){
      zErr = sqlite3_mprintf("slice [%lld, %lld) is empty; zero-length vectors "
                             "are not supported", iStart, iEnd);
    }else if( v.eType==VDB_ELEM_BIT && (iStart%8 || iEnd%8) ){
      zErr = sqlite3_mprintf("bit vectors can only be sliced at multiples of 8");
    }else{
      bad = 0;
    }
  }
  if( bad ){
    vdbResultError(ctx, SQLITE_ERROR, zErr, "vec_slice");
  }else{
    size_t off = v.eType==VDB_ELEM_BIT ? (size_t)iStart/8
                                       : vdbVectorByteSize(v.eType, (int)iStart);
    vdbResultVector(ctx, v.eType, (const char*)v.pData + off, (int)(iEnd-iStart));
  }
  vdbVectorClear(&v);
}

/* ---- distances --------------------------------------------------------- */

static void vdbDistance(sqlite3_context *ctx, sqlite3_value **argv,
                        VdbMetric eMetric, const char *zFunc){
  VdbVector a, b;
  int nullA, nullB, isNull = 0, rc;
  double dist = 0;
  char *zErr = 0;
  if( vdbFuncArg(ctx, argv, 0, zFunc, &a, &nullA) ) return;
  if( vdbFuncArg(ctx, argv, 1, zFunc, &b, &nullB) ){ vdbVectorClear(&a); return; }
  if( nullA || nullB ){
    sqlite3_result_null(ctx);
  }else{
    rc = vdbVectorDistance(vdbFuncKernels(ctx), eMetric, &a, &b, &dist, &isNull, &zErr);
    if( rc!=SQLITE_OK ){
      vdbResultError(ctx, rc, zErr, zFunc);
    }else if( isNull ){
      sqlite3_result_null(ctx);
    }else if( eMetric==VDB_METRIC_L1 && a.eType==VDB_ELEM_INT8 ){
      /* sqlite-vec returns an INTEGER here: the sum is exact. */
      sqlite3_result_int64(ctx, (sqlite3_int64)dist);
    }else{
      sqlite3_result_double(ctx, dist);
    }
  }
  vdbVectorClear(&a);
  vdbVectorClear(&b);
}

static void vdbDistL2Func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbDistance(ctx, argv, VDB_METRIC_L2, "vec_distance_l2");
}
static void vdbDistL1Func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbDistance(ctx, argv, VDB_METRIC_L1, "vec_distance_l1");
}
static void vdbDistCosineFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbDistance(ctx, argv, VDB_METRIC_COSINE, "vec_distance_cosine");
}
static void vdbDistDotFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbDistance(ctx, argv, VDB_METRIC_DOT, "vec_distance_dot");
}
static void vdbDistHammingFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc;
  vdbDistance(ctx, argv, VDB_METRIC_HAMMING, "vec_distance_hamming");
}

/* ---- quantization ------------------------------------------------------ */

/* Sign bits, packed LSB-first: element i is bit i%8 of byte i/8. */
static void vdbQuantizeBinaryFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  VdbVector v;
  int isNull, i;
  uint8_t *pOut;
  (void)argc;
  if( vdbFuncArg(ctx, argv, 0, "vec_quantize_binary", &v, &isNull) ) return;
  if( isNull ){ sqlite3_result_null(ctx); return; }
  if( v.eType==VDB_ELEM_BIT ){
    sqlite3_result_error(ctx, "vec_quantize_binary: the vector is already a bit vector", -1);
  }else if( v.nDim % 8 ){
    char *z = sqlite3_mprintf("vec_quantize_binary: the vector has %d dimensions; "
                              "binary quantization needs a multiple of 8", v.nDim);
    if( z ){ sqlite3_result_error(ctx, z, -1); sqlite3_free(z); }
    else sqlite3_result_error_nomem(ctx);
  }else if( (pOut = (uint8_t*)sqlite3_malloc(v.nDim/8))==0 ){
    sqlite3_result_error_nomem(ctx);
  }else{
    memset(pOut, 0, (size_t)v.nDim/8);
    for(i=0; i<v.nDim; i++){
      if( vdbVectorElement(&v, i)>0 ) pOut[i/8] |= (uint8_t)(1u << (i%8));
    }
    vdbResultVector(ctx, VDB_ELEM_BIT, pOut, v.nDim);
    sqlite3_free(pOut);
  }
  vdbVectorClear(&v);
}

/* 'unit' maps [-1, 1] onto the 256 int8 steps exactly as sqlite-vec does
** (matched bit for bit over a million values in the differential test):
** a float32 step of 2/255, then (x+1)/step - 128 in double precision,
** truncated toward zero, so 1.0 gives 126; values outside [-1, 1]
** saturate at -128 and 127, as sqlite-vec clamps them. */
static int8_t vdbQuantizeUnit(float x){
  const float step = (1.0f - (-1.0f)) / 255.0f;
  double q = ((double)x + 1.0) / (double)step - 128.0;
  if( !(q>-128.0) ) return -128;
  if( q>=127.0 ) return 127;
  return (int8_t)q;
}

static void vdbQuantizeInt8Func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  VdbVector v;
  int isNull, i;
  int8_t *pOut;
  const char *zMode;
  (void)argc;
  if( vdbFuncArg(ctx, argv, 0, "vec_quantize_int8", &v, &isNull) ) return;
  if( isNull ){ sqlite3_result_null(ctx); return; }
  zMode = (const char*)sqlite3_value_text(argv[1]);
  if( v.eType!=VDB_ELEM_F32 ){
    sqlite3_result_error(ctx, "vec_quantize_int8: only float32 vectors can be quantized", -1);
  }else if( zMode==0 || sqlite3_stricmp(zMode, "unit")!=0 ){
    sqlite3_result_error(ctx,
        "vec_quantize_int8: unknown quantization range; the supported one is 'unit'", -1);
  }else if( (pOut = (int8_t*)sqlite3_malloc(v.nDim))==0 ){
    sqlite3_result_error_nomem(ctx);
  }else{
    for(i=0; i<v.nDim; i++) pOut[i] = vdbQuantizeUnit(((const float*)v.pData)[i]);
    vdbResultVector(ctx, VDB_ELEM_INT8, pOut, v.nDim);
    sqlite3_free(pOut);
  }
  vdbVectorClear(&v);
}

/* ---- build information ------------------------------------------------- */

static void vdbVersionFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  (void)argc; (void)argv;
  sqlite3_result_text(ctx, VDB_VERSION_STRING, -1, SQLITE_STATIC);
}

static void vdbDebugFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  sqlite3_str *pStr = sqlite3_str_new(0);
  int level;
  char *z;
  (void)argc; (void)argv;
  sqlite3_str_appendf(pStr, "Version: %s\nCommit: %s\nBuild flags: %s\n",
                      VDB_VERSION_STRING, VDB_COMMIT, VDB_BUILD_FLAGS);
  sqlite3_str_appendf(pStr, "SIMD: %s (available:", vdbFuncKernels(ctx)->zName);
  for(level=0; level<VDB_KLEVEL_COUNT; level++){
    const VdbKernels *k = vdbKernelsAt((VdbKernelLevel)level);
    if( k ) sqlite3_str_appendf(pStr, " %s", k->zName);
  }
  sqlite3_str_appendf(pStr, ")\nSQLite: %s", sqlite3_libversion());
  z = sqlite3_str_finish(pStr);
  if( z==0 ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/* ---- registration ------------------------------------------------------ */

#define VDB_F_PURE       0x01   /* deterministic and innocuous */
#define VDB_F_SUBTYPE    0x02   /* reads argument subtypes */
#define VDB_F_RESULT_ST  0x04   /* sets a result subtype */

int vdbRegisterFunctions(sqlite3 *db, const VdbKernels *pKernels){
  static const struct {
    const char *zName;
    int nArg;
    unsigned int mFlags;
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    { "vec_version",          0, VDB_F_PURE, vdbVersionFunc },
    { "vec_debug",            0, VDB_F_PURE, vdbDebugFunc },
    { "vec_f32",              1, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbF32Func },
    { "vec_int8",             1, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbInt8Func },
    { "vec_bit",              1, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbBitFunc },
    { "vec_length",           1, VDB_F_PURE|VDB_F_SUBTYPE, vdbLengthFunc },
    { "vec_type",             1, VDB_F_PURE|VDB_F_SUBTYPE, vdbTypeFunc },
    { "vec_to_json",          1, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbToJsonFunc },
    { "vec_add",              2, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbAddFunc },
    { "vec_sub",              2, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbSubFunc },
    { "vec_normalize",        1, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbNormalizeFunc },
    { "vec_slice",            3, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbSliceFunc },
    { "vec_distance_l2",      2, VDB_F_PURE|VDB_F_SUBTYPE, vdbDistL2Func },
    { "vec_distance_l1",      2, VDB_F_PURE|VDB_F_SUBTYPE, vdbDistL1Func },
    { "vec_distance_cosine",  2, VDB_F_PURE|VDB_F_SUBTYPE, vdbDistCosineFunc },
    { "vec_distance_dot",     2, VDB_F_PURE|VDB_F_SUBTYPE, vdbDistDotFunc },
    { "vec_distance_hamming", 2, VDB_F_PURE|VDB_F_SUBTYPE, vdbDistHammingFunc },
    { "vec_quantize_binary",  1, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbQuantizeBinaryFunc },
    { "vec_quantize_int8",    2, VDB_F_PURE|VDB_F_SUBTYPE|VDB_F_RESULT_ST, vdbQuantizeInt8Func },
  };
  int version = sqlite3_libversion_number();
  int rc = SQLITE_OK;
  size_t i;
  for(i=0; rc==SQLITE_OK && i<sizeof(aFunc)/sizeof(aFunc[0]); i++){
    int flags = SQLITE_UTF8;
    /* Pass only the flags the running library knows. */
    if( aFunc[i].mFlags & VDB_F_PURE ){
      flags |= SQLITE_DETERMINISTIC;
      if( version>=3031000 ) flags |= SQLITE_INNOCUOUS;
    }
    if( (aFunc[i].mFlags & VDB_F_SUBTYPE) && version>=3030000 ) flags |= SQLITE_SUBTYPE;
    if( (aFunc[i].mFlags & VDB_F_RESULT_ST) && version>=3045000 ) flags |= SQLITE_RESULT_SUBTYPE;
    rc = sqlite3_create_function_v2(db, aFunc[i].zName, aFunc[i].nArg, flags,
                                    (void*)pKernels, aFunc[i].xFunc, 0, 0, 0);
  }
  return rc;
}
