/*
** Vector decoding, validation, JSON conversion and typed distances.
*/
#include <float.h>
#include <stdarg.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "vdb_vector.h"

const char *vdbElemTypeName(VdbElemType eType){
  switch( eType ){
    case VDB_ELEM_F32:  return "float32";
    case VDB_ELEM_INT8: return "int8";
    case VDB_ELEM_BIT:  return "bit";
  }
  return "unknown";
}

int vdbElemTypeSubtype(VdbElemType eType){
  switch( eType ){
    case VDB_ELEM_F32:  return VDB_SUBTYPE_F32;
    case VDB_ELEM_INT8: return VDB_SUBTYPE_INT8;
    case VDB_ELEM_BIT:  return VDB_SUBTYPE_BIT;
  }
  return 0;
}

size_t vdbVectorByteSize(VdbElemType eType, int nDim){
  switch( eType ){
    case VDB_ELEM_F32:  return (size_t)nDim * 4;
    case VDB_ELEM_INT8: return (size_t)nDim;
    case VDB_ELEM_BIT:  return ((size_t)nDim + 7) / 8;
  }
  return 0;
}

int vdbMaxDims(VdbElemType eType){
  return eType==VDB_ELEM_BIT ? VDB_MAX_BITS : VDB_MAX_DIMS;
}

void vdbVectorClear(VdbVector *pVec){
  sqlite3_free(pVec->pOwned);
  memset(pVec, 0, sizeof(*pVec));
}

static int vdbSetError(char **pzErr, int rc, const char *zFmt, ...){
  va_list ap;
  va_start(ap, zFmt);
  sqlite3_free(*pzErr);
  *pzErr = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  return *pzErr ? rc : SQLITE_NOMEM;
}

/* Index of the first NaN or infinity in a[0..n-1], or -1. Tests the
** exponent bits directly, which vectorises and is locale- and
** fast-math-proof. */
static int vdbFirstNonFinite(const float *a, int n){
  int i;
  for(i=0; i<n; i++){
    uint32_t bits;
    memcpy(&bits, &a[i], 4);
    if( (bits & 0x7f800000u)==0x7f800000u ) return i;
  }
  return -1;
}

static int vdbCheckDims(VdbElemType eType, int nDim, char **pzErr){
  if( nDim<=0 ){
    return vdbSetError(pzErr, SQLITE_ERROR, "zero-length vectors are not supported");
  }
  if( nDim>vdbMaxDims(eType) ){
    return vdbSetError(pzErr, SQLITE_TOOBIG,
        "%s vector has %d dimensions, more than the maximum of %d",
        vdbElemTypeName(eType), nDim, vdbMaxDims(eType));
  }
  return SQLITE_OK;
}

int vdbVectorFromBlob(const void *pBlob, int nByte, VdbElemType eType,
                      VdbVector *pVec, char **pzErr){
  int nDim;
  int rc;
  memset(pVec, 0, sizeof(*pVec));
  switch( eType ){
    case VDB_ELEM_F32:
      if( nByte % 4 ){
        return vdbSetError(pzErr, SQLITE_ERROR,
            "invalid float32 vector BLOB: length %d is not a multiple of 4", nByte);
      }
      nDim = nByte / 4;
      break;
    case VDB_ELEM_INT8: nDim = nByte; break;
    default: nDim = nByte * 8; break;
  }
  rc = vdbCheckDims(eType, nDim, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  pVec->eType = eType;
  pVec->nDim = nDim;
  pVec->pData = pBlob;
  if( eType==VDB_ELEM_F32 ){
    int iBad;
    if( ((uintptr_t)pBlob) & 3 ){
      /* SQLite may hand out a BLOB at any byte offset inside a page. */
      pVec->pOwned = sqlite3_malloc(nByte);
      if( pVec->pOwned==0 ) return SQLITE_NOMEM;
      memcpy(pVec->pOwned, pBlob, nByte);
      pVec->pData = pVec->pOwned;
    }
    iBad = vdbFirstNonFinite((const float*)pVec->pData, nDim);
    if( iBad>=0 ){
      float f = ((const float*)pVec->pData)[iBad];
      vdbVectorClear(pVec);
      return vdbSetError(pzErr, SQLITE_ERROR,
          "float32 vector has a non-finite value (%s) at element %d",
          isnan(f) ? "NaN" : (f>0 ? "+Inf" : "-Inf"), iBad);
    }
  }
  return SQLITE_OK;
}

/* ---- JSON ---------------------------------------------------------------
** Strict RFC 8259 arrays of numbers: optional white space, '[', numbers
** separated by single commas, ']', optional white space, end. Numbers
** follow JSON's grammar exactly (no '+', no leading '.', no hex, no
** "nan"/"inf"); int8 vectors accept integers only.
*/
static int vdbIsJsonSpace(char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\r';
}

/* Length of the JSON number at z[0..n-1], or 0 if none. *pIsInt is set
** when it has neither a fraction nor an exponent. */
static int vdbJsonNumberLength(const char *z, int n, int *pIsInt){
  int i = 0;
  *pIsInt = 1;
  if( i<n && z[i]=='-' ) i++;
  if( i>=n || z[i]<'0' || z[i]>'9' ) return 0;
  if( z[i]=='0' ){
    i++;
  }else{
    while( i<n && z[i]>='0' && z[i]<='9' ) i++;
  }
  if( i<n && z[i]=='.' ){
    int j = ++i;
    while( i<n && z[i]>='0' && z[i]<='9' ) i++;
    if( i==j ) return 0;
    *pIsInt = 0;
  }
  if( i<n && (z[i]=='e' || z[i]=='E') ){
    int j;
    i++;
    if( i<n && (z[i]=='+' || z[i]=='-') ) i++;
    j = i;
    while( i<n && z[i]>='0' && z[i]<='9' ) i++;
    if( i==j ) return 0;
    *pIsInt = 0;
  }
  return i;
}

/* strtod on a validated JSON number, immune to the process locale: the
** token's '.' is replaced by the locale's radix character first. A long
** token is copied to the heap through SQLite's allocator, so running out
** of memory is SQLITE_NOMEM, never a NaN taken for the input's. */
static int vdbJsonNumberValue(const char *z, int n, double *pV){
  char aBuf[64];
  char *zCopy = n < (int)sizeof(aBuf) ? aBuf : (char*)sqlite3_malloc64((sqlite3_uint64)n + 1);
  const char *zRadix = localeconv()->decimal_point;
  char cRadix = (zRadix && zRadix[0]) ? zRadix[0] : '.';
  int i;
  if( zCopy==0 ) return SQLITE_NOMEM;
  memcpy(zCopy, z, (size_t)n);
  zCopy[n] = 0;
  if( cRadix!='.' ){
    for(i=0; i<n; i++) if( zCopy[i]=='.' ) zCopy[i] = cRadix;
  }
  *pV = strtod(zCopy, 0);
  if( zCopy!=aBuf ) sqlite3_free(zCopy);
  return SQLITE_OK;
}

int vdbVectorParseJson(const char *zJson, int nJson, VdbElemType eType,
                       VdbVector *pVec, char **pzErr){
  int i = 0;
  int nAlloc = 0, nDim = 0;
  float *aF32 = 0;
  int8_t *aI8 = 0;
  void *pBuf = 0;
  int rc = SQLITE_OK;

  memset(pVec, 0, sizeof(*pVec));
  if( eType==VDB_ELEM_BIT ){
    return vdbSetError(pzErr, SQLITE_ERROR,
        "bit vectors have no JSON form; pass a BLOB to vec_bit()");
  }
  while( i<nJson && vdbIsJsonSpace(zJson[i]) ) i++;
  if( i>=nJson || zJson[i]!='[' ){
    return vdbSetError(pzErr, SQLITE_ERROR,
        "malformed JSON vector: expected '[' at offset %d", i);
  }
  i++;
  while( i<nJson && vdbIsJsonSpace(zJson[i]) ) i++;
  if( i<nJson && zJson[i]==']' ){
    return vdbSetError(pzErr, SQLITE_ERROR, "zero-length vectors are not supported");
  }
  for(;;){
    int isInt, nTok;
    double v;
    nTok = vdbJsonNumberLength(zJson+i, nJson-i, &isInt);
    if( nTok==0 ){
      rc = vdbSetError(pzErr, SQLITE_ERROR,
          "malformed JSON vector: expected a number at offset %d", i);
      break;
    }
    if( nDim>=vdbMaxDims(eType) ){
      rc = vdbSetError(pzErr, SQLITE_TOOBIG,
          "%s vector has more than the maximum of %d dimensions",
          vdbElemTypeName(eType), vdbMaxDims(eType));
      break;
    }
    if( nDim>=nAlloc ){
      int nNew = nAlloc ? nAlloc*2 : 16;
      void *pNew;
      if( nNew>vdbMaxDims(eType) ) nNew = vdbMaxDims(eType);
      pNew = sqlite3_realloc64(pBuf, (sqlite3_uint64)nNew * (eType==VDB_ELEM_F32 ? 4 : 1));
      if( pNew==0 ){ rc = SQLITE_NOMEM; break; }
      pBuf = pNew;
      nAlloc = nNew;
      aF32 = (float*)pBuf;
      aI8 = (int8_t*)pBuf;
    }
    rc = vdbJsonNumberValue(zJson+i, nTok, &v);
    if( rc!=SQLITE_OK ) break;
    if( eType==VDB_ELEM_INT8 ){
      if( !isInt ){
        rc = vdbSetError(pzErr, SQLITE_ERROR,
            "int8 vector element %d is not an integer: %.*s", nDim, nTok, zJson+i);
        break;
      }
      if( v<-128.0 || v>127.0 ){
        rc = vdbSetError(pzErr, SQLITE_ERROR,
            "int8 vector element %d is out of range -128..127: %.*s", nDim, nTok, zJson+i);
        break;
      }
      aI8[nDim] = (int8_t)v;
    }else{
      /* Judge the float32 it becomes: 3.4028235e38 is FLT_MAX rounded. */
      if( isinf((float)v) || isnan(v) ){
        rc = vdbSetError(pzErr, SQLITE_ERROR,
            "float32 vector element %d is out of the float32 range: %.*s",
            nDim, nTok, zJson+i);
        break;
      }
      aF32[nDim] = (float)v;
    }
    nDim++;
    i += nTok;
    while( i<nJson && vdbIsJsonSpace(zJson[i]) ) i++;
    if( i<nJson && zJson[i]==',' ){
      i++;
      while( i<nJson && vdbIsJsonSpace(zJson[i]) ) i++;
      continue;
    }
    if( i<nJson && zJson[i]==']' ){
      i++;
      while( i<nJson && vdbIsJsonSpace(zJson[i]) ) i++;
      if( i<nJson ){
        rc = vdbSetError(pzErr, SQLITE_ERROR,
            "malformed JSON vector: unexpected text after ']' at offset %d", i);
      }
      break;
    }
    rc = vdbSetError(pzErr, SQLITE_ERROR,
        i<nJson ? "malformed JSON vector: expected ',' or ']' at offset %d"
                : "malformed JSON vector: missing ']' at offset %d", i);
    break;
  }
  if( rc!=SQLITE_OK ){
    sqlite3_free(pBuf);
    return rc;
  }
  pVec->eType = eType;
  pVec->nDim = nDim;
  pVec->pData = pBuf;
  pVec->pOwned = pBuf;
  return SQLITE_OK;
}

static VdbElemType vdbElemTypeOfSubtype(unsigned int subtype){
  switch( subtype ){
    case VDB_SUBTYPE_INT8: return VDB_ELEM_INT8;
    case VDB_SUBTYPE_BIT:  return VDB_ELEM_BIT;
    default:               return VDB_ELEM_F32;
  }
}

static int vdbVectorFromTypedValue(sqlite3_value *pVal, VdbElemType eType,
                                   VdbVector *pVec, char **pzErr){
  switch( sqlite3_value_type(pVal) ){
    case SQLITE_BLOB:
      return vdbVectorFromBlob(sqlite3_value_blob(pVal), sqlite3_value_bytes(pVal),
                               eType, pVec, pzErr);
    case SQLITE_TEXT: {
      const char *z = (const char*)sqlite3_value_text(pVal);
      int n = sqlite3_value_bytes(pVal);
      if( z==0 ) return SQLITE_NOMEM;
      return vdbVectorParseJson(z, n, eType, pVec, pzErr);
    }
    case SQLITE_NULL:
      return vdbSetError(pzErr, SQLITE_ERROR, "vector is NULL");
    default:
      return vdbSetError(pzErr, SQLITE_ERROR,
          "a vector must be a BLOB or JSON text, not %s",
          sqlite3_value_type(pVal)==SQLITE_INTEGER ? "an INTEGER" : "a REAL");
  }
}

int vdbVectorFromValue(sqlite3_value *pVal, VdbVector *pVec, char **pzErr){
  VdbElemType eType = VDB_ELEM_F32;
  memset(pVec, 0, sizeof(*pVec));
  if( sqlite3_value_type(pVal)==SQLITE_BLOB ){
    eType = vdbElemTypeOfSubtype(sqlite3_value_subtype(pVal));
  }
  return vdbVectorFromTypedValue(pVal, eType, pVec, pzErr);
}

int vdbVectorFromValueAs(sqlite3_value *pVal, VdbElemType eType,
                         VdbVector *pVec, char **pzErr){
  memset(pVec, 0, sizeof(*pVec));
  if( sqlite3_value_type(pVal)==SQLITE_BLOB ){
    unsigned int subtype = sqlite3_value_subtype(pVal);
    VdbElemType eHas = vdbElemTypeOfSubtype(subtype);
    if( subtype!=0 && eHas!=eType ){
      return vdbSetError(pzErr, SQLITE_ERROR,
          "expected a %s vector but got a %s vector",
          vdbElemTypeName(eType), vdbElemTypeName(eHas));
    }
  }
  return vdbVectorFromTypedValue(pVal, eType, pVec, pzErr);
}

double vdbVectorElement(const VdbVector *pVec, int i){
  switch( pVec->eType ){
    case VDB_ELEM_F32:  return ((const float*)pVec->pData)[i];
    case VDB_ELEM_INT8: return ((const int8_t*)pVec->pData)[i];
    default: return (((const uint8_t*)pVec->pData)[i/8] >> (i%8)) & 1;
  }
}

/* Shortest decimal (up to 9 significant digits, always enough for
** float32) that reads back as exactly f. */
static void vdbFormatFloat(char *zBuf, int nBuf, float f){
  int prec;
  double v;
  if( f==0.0f ){
    /* SQLite's printf drops the sign of zero, and -0.0 compares equal to
    ** 0.0: without this, -0.0 would print as 0.0 and read back changed. */
    sqlite3_snprintf(nBuf, zBuf, "%s", signbit(f) ? "-0.0" : "0.0");
    return;
  }
  for(prec=6; prec<=9; prec++){
    sqlite3_snprintf(nBuf, zBuf, "%!.*g", prec, (double)f);
    if( vdbJsonNumberValue(zBuf, (int)strlen(zBuf), &v)==SQLITE_OK && (float)v==f ) return;
  }
}

char *vdbVectorToJson(const VdbVector *pVec){
  sqlite3_str *pStr = sqlite3_str_new(0);
  int i;
  sqlite3_str_appendchar(pStr, 1, '[');
  for(i=0; i<pVec->nDim; i++){
    if( i ) sqlite3_str_appendchar(pStr, 1, ',');
    if( pVec->eType==VDB_ELEM_F32 ){
      char zNum[40];
      vdbFormatFloat(zNum, sizeof(zNum), ((const float*)pVec->pData)[i]);
      sqlite3_str_appendall(pStr, zNum);
    }else{
      sqlite3_str_appendf(pStr, "%d", (int)vdbVectorElement(pVec, i));
    }
  }
  sqlite3_str_appendchar(pStr, 1, ']');
  return sqlite3_str_finish(pStr);
}

char *vdbVectorMismatch(const VdbVector *pA, const VdbVector *pB){
  if( pA->eType!=pB->eType ){
    return sqlite3_mprintf("vector type mismatch: %s vs %s",
        vdbElemTypeName(pA->eType), vdbElemTypeName(pB->eType));
  }
  if( pA->nDim!=pB->nDim ){
    return sqlite3_mprintf("vector dimension mismatch: %d vs %d", pA->nDim, pB->nDim);
  }
  return 0;
}

int vdbRawDistance(const VdbKernels *pK, VdbElemType eElem, VdbMetric eMetric, int nDim,
                   const void *pA, const void *pB, double *pDist){
  size_t n = (size_t)nDim;
  VdbCosParts c;
  if( eElem==VDB_ELEM_F32 ){
    const float *a = (const float*)pA, *b = (const float*)pB;
    switch( eMetric ){
      case VDB_METRIC_L2:  *pDist = sqrt((double)pK->f32L2Sq(a, b, n)); return 1;
      case VDB_METRIC_L1:  *pDist = pK->f32L1(a, b, n); return 1;
      /* Products that overflow float32 can sum to NaN: no distance. */
      case VDB_METRIC_DOT: *pDist = -(double)pK->f32Dot(a, b, n); return !isnan(*pDist);
      default:             c = pK->f32Cos(a, b, n); break;
    }
  }else if( eElem==VDB_ELEM_INT8 ){
    const int8_t *a = (const int8_t*)pA, *b = (const int8_t*)pB;
    switch( eMetric ){
      case VDB_METRIC_L2:  *pDist = sqrt((double)pK->i8L2Sq(a, b, n)); return 1;
      case VDB_METRIC_L1:  *pDist = (double)pK->i8L1(a, b, n); return 1;
      case VDB_METRIC_DOT: *pDist = -(double)pK->i8Dot(a, b, n); return 1;
      default:             c = pK->i8Cos(a, b, n); break;
    }
  }else{
    *pDist = (double)pK->bitHamming((const uint8_t*)pA, (const uint8_t*)pB,
                                    vdbVectorByteSize(VDB_ELEM_BIT, nDim));
    return 1;
  }
  if( c.normA==0 || c.normB==0 ) return 0;
  *pDist = 1.0 - c.dot / (sqrt(c.normA) * sqrt(c.normB));
  return !isnan(*pDist);            /* overflowed sums: inf / inf */
}

int vdbVectorDistance(const VdbKernels *pK, VdbMetric eMetric,
                      const VdbVector *pA, const VdbVector *pB,
                      double *pDist, int *pIsNull, char **pzErr){
  char *zMismatch = vdbVectorMismatch(pA, pB);
  *pIsNull = 0;
  if( zMismatch ){
    sqlite3_free(*pzErr);
    *pzErr = zMismatch;
    return SQLITE_ERROR;
  }
  if( (eMetric==VDB_METRIC_HAMMING)!=(pA->eType==VDB_ELEM_BIT) ){
    return vdbSetError(pzErr, SQLITE_ERROR,
        eMetric==VDB_METRIC_HAMMING
          ? "hamming distance needs bit vectors, not %s"
          : "this distance is not defined for %s vectors; use hamming",
        vdbElemTypeName(pA->eType));
  }
  if( !vdbRawDistance(pK, pA->eType, eMetric, pA->nDim, pA->pData, pB->pData, pDist) ){
    *pIsNull = 1;
    *pDist = 0;
  }
  return SQLITE_OK;
}
