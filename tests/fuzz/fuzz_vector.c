/*
** fuzz_vector: vector parsing and the vec_* functions.
**
** The first input byte picks one of two modes:
**
**   parser  the rest of the input goes, as one exactly sized buffer,
**           through vdbVectorParseJson() and vdbVectorFromBlob() for each
**           element type. A vector that parses must print (vdbVectorToJson)
**           as JSON that parses back to the same bytes.
**
**   sql     the rest decodes into a statement template (a vec_* function
**           or vec_each, some with typed arguments) and up to three bound
**           arguments: raw text or BLOB bytes, integers, NULL, or
**           generated float vectors as JSON text or BLOB. Every result is
**           read; errors are expected. Oracle templates check that
**           vec_f32()/vec_int8() output survives vec_to_json() and back,
**           and that lengths follow from byte counts and slice bounds.
*/
#include "fuzz_util.h"
#include "vdb_vector.h"

/* ---- parser mode ------------------------------------------------------------ */

/* A parsed vector must print and parse back to identical bytes. */
static void checkRoundTrip(const VdbVector *pVec){
  VdbVector again;
  char *zErr = 0, *zJson;
  int rc;
  if( pVec->eType==VDB_ELEM_BIT ) return;     /* bit vectors have no JSON form */
  zJson = vdbVectorToJson(pVec);
  FUZZ_ASSERT(zJson!=0, "vdbVectorToJson failed");
  rc = vdbVectorParseJson(zJson, (int)strlen(zJson), pVec->eType, &again, &zErr);
  FUZZ_ASSERT(rc==SQLITE_OK, "printed vector %s does not parse: %s", zJson, zErr ? zErr : "?");
  FUZZ_ASSERT(again.nDim==pVec->nDim, "round trip changed the length: %s", zJson);
  FUZZ_ASSERT(memcmp(again.pData, pVec->pData, vdbVectorByteSize(pVec->eType, pVec->nDim))==0,
              "round trip changed the values: %s", zJson);
  vdbVectorClear(&again);
  sqlite3_free(zJson);
  sqlite3_free(zErr);
}

static void fuzzParser(const uint8_t *aData, size_t nData, unsigned misalign){
  /* An exactly sized copy, so ASan sees any read past the end; for BLOBs
  ** also at an odd offset, as SQLite may hand out. */
  unsigned char *pBuf = (unsigned char*)malloc(nData + (misalign & 3));
  unsigned char *pAt = pBuf + (misalign & 3);
  int e;
  if( pBuf==0 ) return;
  for(e=VDB_ELEM_F32; e<=VDB_ELEM_BIT; e++){
    VdbVector v;
    char *zErr = 0;
    int rc;
    unsigned char *pText = (unsigned char*)malloc(nData);
    if( pText==0 ) break;
    memcpy(pText, aData, nData);
    rc = vdbVectorParseJson((const char*)pText, (int)nData, (VdbElemType)e, &v, &zErr);
    if( rc==SQLITE_OK ){
      FUZZ_ASSERT(v.nDim>=1 && v.nDim<=vdbMaxDims((VdbElemType)e), "bad length %d", v.nDim);
      checkRoundTrip(&v);
      vdbVectorClear(&v);
    }else{
      FUZZ_ASSERT(zErr!=0 || rc==SQLITE_NOMEM, "an error without a message");
    }
    sqlite3_free(zErr);
    zErr = 0;
    free(pText);

    memcpy(pAt, aData, nData);
    rc = vdbVectorFromBlob(pAt, (int)nData, (VdbElemType)e, &v, &zErr);
    if( rc==SQLITE_OK ){
      FUZZ_ASSERT(vdbVectorByteSize(v.eType, v.nDim)==nData, "blob length mismatch");
      if( e==VDB_ELEM_F32 ) FUZZ_ASSERT(((uintptr_t)v.pData & 3)==0, "misaligned float data");
      checkRoundTrip(&v);
      vdbVectorClear(&v);
    }else{
      FUZZ_ASSERT(zErr!=0 || rc==SQLITE_NOMEM, "an error without a message");
    }
    sqlite3_free(zErr);
  }
  free(pBuf);
}

/* ---- SQL mode ------------------------------------------------------------------ */

static const char *azTemplate[] = {
  "SELECT vec_f32(?1)",
  "SELECT vec_int8(?1)",
  "SELECT vec_bit(?1)",
  "SELECT vec_length(?1), vec_type(?1)",
  "SELECT vec_to_json(?1)",
  "SELECT vec_add(?1, ?2), vec_sub(?1, ?2)",
  "SELECT vec_normalize(?1)",
  "SELECT vec_slice(?1, ?2, ?3)",
  "SELECT vec_distance_l2(?1, ?2), vec_distance_l1(?1, ?2)",
  "SELECT vec_distance_cosine(?1, ?2), vec_distance_dot(?1, ?2)",
  "SELECT vec_distance_hamming(?1, ?2)",
  "SELECT vec_quantize_binary(?1)",
  "SELECT vec_quantize_int8(?1, ?2)",
  "SELECT rowid, value FROM vec_each(?1)",
  "SELECT vec_distance_l2(vec_int8(?1), vec_int8(?2)), vec_distance_l1(vec_int8(?1), vec_int8(?2))",
  "SELECT vec_distance_cosine(vec_int8(?1), vec_int8(?2)), vec_distance_dot(vec_int8(?1), vec_int8(?2))",
  "SELECT vec_distance_hamming(vec_bit(?1), vec_bit(?2))",
  "SELECT vec_to_json(vec_int8(?1)), vec_to_json(vec_bit(?1))",
  "SELECT vec_slice(vec_bit(?1), ?2, ?3), vec_slice(vec_int8(?1), ?2, ?3)",
  "SELECT rowid, value FROM vec_each(vec_bit(?1))",
  "SELECT rowid, value FROM vec_each(vec_int8(?1))",
  "SELECT vec_add(vec_int8(?1), vec_int8(?2)), vec_sub(vec_bit(?1), vec_bit(?2))",
  "SELECT vec_to_json(vec_quantize_binary(?1)), vec_quantize_int8(?1, 'unit')",
  "SELECT vec_length(vec_f32(?1)), vec_length(vec_int8(?1)), vec_length(vec_bit(?1))",
  "SELECT vec_distance_l2(?1, vec_slice(?2, 0, vec_length(?1)))",
  "SELECT vec_f32(vec_int8(?1)), vec_int8(vec_bit(?1)), vec_bit(vec_f32(?1))",
  /* Oracles, last: whatever a constructor accepts survives its JSON form;
  ** a BLOB vector's length follows from its byte count. */
  "SELECT vec_f32(vec_to_json(vec_f32(?1))) IS vec_f32(?1)",
  "SELECT vec_int8(vec_to_json(vec_int8(?1))) IS vec_int8(?1)",
  "SELECT typeof(?1)!='blob' OR vec_length(?1) = length(?1)/4",
  "SELECT typeof(?1)!='blob' OR vec_length(vec_bit(?1)) = 8*length(?1)",
  "SELECT vec_length(vec_slice(?1, ?2, ?3)) = ?3 - ?2",
};
#define N_TEMPLATE ((int)(sizeof(azTemplate)/sizeof(azTemplate[0])))
#define N_ORACLE   5

/* Bind one argument as the input describes it. */
static void bindArg(sqlite3_stmt *pStmt, int iParam, FuzzIn *in){
  unsigned kind = fuzzByte(in) % 7;
  size_t n;
  const uint8_t *p;
  int nElem, i;
  switch( kind ){
    case 0:                                    /* raw text */
      p = fuzzBytes(in, fuzzByte(in), &n);
      sqlite3_bind_text(pStmt, iParam, (const char*)p, (int)n, SQLITE_TRANSIENT);
      break;
    case 1:                                    /* raw BLOB */
      p = fuzzBytes(in, fuzzByte(in), &n);
      sqlite3_bind_blob(pStmt, iParam, p, (int)n, SQLITE_TRANSIENT);
      break;
    case 2:                                    /* a small integer */
      sqlite3_bind_int64(pStmt, iParam, (sqlite3_int64)fuzzRange(in, -8, 80));
      break;
    case 3:
      sqlite3_bind_null(pStmt, iParam);
      break;
    case 4: {                                  /* generated JSON of floats or ints */
      sqlite3_str *s = sqlite3_str_new(0);
      int asInt = fuzzByte(in) & 1;
      char *z;
      nElem = fuzzRange(in, 1, 40);
      sqlite3_str_appendchar(s, 1, '[');
      for(i=0; i<nElem; i++){
        float f = fuzzFloat(in);
        if( i ) sqlite3_str_appendchar(s, 1, ',');
        if( asInt ) sqlite3_str_appendf(s, "%d", (int)(signed char)fuzzByte(in));
        else sqlite3_str_appendf(s, "%!.9g", (double)f);
      }
      sqlite3_str_appendchar(s, 1, ']');
      z = sqlite3_str_finish(s);
      sqlite3_bind_text(pStmt, iParam, z, -1, sqlite3_free);
      break;
    }
    case 5: {                                  /* generated float32 BLOB */
      float a[64];
      nElem = fuzzRange(in, 1, 64);
      for(i=0; i<nElem; i++) a[i] = fuzzFloat(in);
      sqlite3_bind_blob(pStmt, iParam, a, nElem*4, SQLITE_TRANSIENT);
      break;
    }
    default:                                   /* a REAL */
      sqlite3_bind_double(pStmt, iParam, (double)fuzzFloat(in));
      break;
  }
}

static void fuzzSql(FuzzIn *in){
  sqlite3 *db = fuzzOpen();
  int nStmt = 0;
  while( fuzzLeft(in) && nStmt++<8 ){
    sqlite3_stmt *pStmt = 0;
    int iTemplate = fuzzRange(in, 0, N_TEMPLATE-1), i;
    if( sqlite3_prepare_v2(db, azTemplate[iTemplate], -1, &pStmt, 0)!=SQLITE_OK ){
      fprintf(stderr, "fuzz: template %d does not prepare: %s\n", iTemplate, sqlite3_errmsg(db));
      abort();
    }
    for(i=1; i<=sqlite3_bind_parameter_count(pStmt); i++) bindArg(pStmt, i, in);
    if( iTemplate>=N_TEMPLATE-N_ORACLE ){
      /* An oracle: a row, if any, says 1 (or NULL for a NULL argument). */
      if( sqlite3_step(pStmt)==SQLITE_ROW && sqlite3_column_type(pStmt, 0)!=SQLITE_NULL ){
        FUZZ_ASSERT(sqlite3_column_int(pStmt, 0)==1, "oracle %s returned %s",
                    azTemplate[iTemplate], sqlite3_column_text(pStmt, 0));
      }
    }else{
      fuzzDrain(pStmt);
    }
    sqlite3_finalize(pStmt);
  }
  sqlite3_close(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData){
  FuzzIn in;
  unsigned mode;
  if( nData==0 ) return 0;
  mode = aData[0];
  in.p = aData + 1;
  in.n = nData - 1;
  if( mode < 0x60 ){
    if( in.n<=65536 ) fuzzParser(in.p, in.n, mode);
  }else{
    fuzzSql(&in);
  }
  return 0;
}
