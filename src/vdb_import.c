/*
** vec_npy_each(blob), and vec_fvecs_each, vec_bvecs_each, vec_ivecs_each
** for the texmex formats (vdbVecsParse), on one cursor.
**
** vec_npy_each(blob): the vectors of a NumPy .npy file held in a BLOB, one
** row per vector: rowid = the row's index from 0, column "vector" (a
** float32 or int8 vector BLOB, tagged with its subtype like vec_each's).
**
**   INSERT INTO items(rowid, embedding)
**     SELECT rowid, vector FROM vec_npy_each(readfile('vectors.npy'));
**
** Accepted: format versions 1.0, 2.0 and 3.0; dtypes float32, float64,
** int8 and uint8 in either byte order; C order; 1-D arrays (one vector) and
** 2-D arrays (one vector per row). float64 and uint8 become float32
** (uint8 exactly; float64 rounded to nearest, and a finite value beyond
** float32's range is an error rather than an infinity); int8 stays int8.
** Anything else is an error that names the byte offset where the file
** stops making sense, never a guess: the header is a Python dict literal,
** parsed strictly for its three keys.
**
** The BLOB is copied once (the argument does not outlive xFilter); rows are
** converted one at a time as they are read.
*/
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include "vdb_import.h"
#include "vdb_vector.h"

#define VDB_NPY_COL_VECTOR 0
#define VDB_NPY_COL_FILE   1

#define VDB_NPY_MAGIC     "\x93NUMPY"
#define VDB_NPY_MAGIC_LEN 6

/* Element types a .npy file may hold here. */
typedef enum VdbNpyDtype {
  VDB_NPY_F32 = 1,
  VDB_NPY_F64,
  VDB_NPY_I8,
  VDB_NPY_U8,
  VDB_NPY_I32              /* .ivecs only */
} VdbNpyDtype;

/* The texmex formats (.fvecs, .bvecs, .ivecs): every vector is a
** little-endian int32 dimension followed by that many float32, uint8 or
** int32 elements; all vectors of a file have the same dimension. The
** vtab's kind; 0 is .npy. */
#define VDB_VECS_NONE 0
#define VDB_VECS_F    1
#define VDB_VECS_B    2
#define VDB_VECS_I    3
/* An int32 beyond this has no exact float32. */
#define VDB_F32_EXACT_INT 16777216

/* What the header says about the data. */
typedef struct VdbNpyInfo {
  VdbNpyDtype eDtype;
  int bBigEndian;          /* multi-byte elements stored big-endian */
  int szItem;              /* bytes per element */
  int nDim;                /* elements per vector */
  sqlite3_int64 nRow;      /* vectors */
  sqlite3_int64 iData;     /* offset of the first element */
} VdbNpyInfo;

/* A cursor over the header bytes; offsets are from the start of the BLOB
** so that every message points into the file the user has. */
typedef struct VdbNpyParser {
  const unsigned char *a;  /* the whole BLOB */
  sqlite3_int64 iEnd;      /* end of the header */
  sqlite3_int64 i;         /* current offset */
  char *zErr;              /* the first error, sqlite3_malloc'd */
} VdbNpyParser;

static int vdbNpyError(VdbNpyParser *p, sqlite3_int64 iOff, const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( p->zErr==0 ){
    p->zErr = z ? sqlite3_mprintf("vec_npy_each: %s (at offset %lld)", z, iOff) : 0;
  }
  sqlite3_free(z);
  return p->zErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

static void vdbNpySkipSpace(VdbNpyParser *p){
  while( p->i<p->iEnd && (p->a[p->i]==' ' || p->a[p->i]=='\t'
                          || p->a[p->i]=='\n' || p->a[p->i]=='\r') ){
    p->i++;
  }
}

/* The next non-space byte, or -1 at the end of the header. */
static int vdbNpyPeek(VdbNpyParser *p){
  vdbNpySkipSpace(p);
  return p->i<p->iEnd ? p->a[p->i] : -1;
}

static int vdbNpyExpect(VdbNpyParser *p, char c, const char *zWhat){
  if( vdbNpyPeek(p)!=(unsigned char)c ){
    return vdbNpyError(p, p->i, "malformed .npy header: expected %s", zWhat);
  }
  p->i++;
  return SQLITE_OK;
}

/* A Python string literal without escapes: '...' or "...". Sets *piStart
** and *pn to its contents. */
static int vdbNpyString(VdbNpyParser *p, sqlite3_int64 *piStart, int *pn){
  int q = vdbNpyPeek(p);
  sqlite3_int64 j;
  if( q!='\'' && q!='"' ){
    return vdbNpyError(p, p->i, "malformed .npy header: expected a quoted string");
  }
  /* numpy ends the header with a newline, so a string running into one
  ** never closed. Keys and the dtypes read here are printable ASCII; other
  ** bytes are refused, so that messages quoting a string stay text. */
  for(j=p->i+1; j<p->iEnd && p->a[j]!=q && p->a[j]!='\n'; j++){
    if( p->a[j]=='\\' || p->a[j]<0x20 || p->a[j]>=0x7f ){
      return vdbNpyError(p, j, "malformed .npy header: unsupported character in a string");
    }
  }
  if( j>=p->iEnd || p->a[j]=='\n' ){
    return vdbNpyError(p, p->i, "malformed .npy header: unterminated string");
  }
  *piStart = p->i+1;
  *pn = (int)(j - p->i - 1);
  p->i = j+1;
  return SQLITE_OK;
}

static int vdbNpyIs(VdbNpyParser *p, sqlite3_int64 iStart, int n, const char *z){
  return n==(int)strlen(z) && memcmp(p->a+iStart, z, n)==0;
}

/* The dtype string: '<f4', '>f8', '|i1', '|u1' and their byte-order
** variants. */
static int vdbNpyDtype(VdbNpyParser *p, VdbNpyInfo *pInfo){
  sqlite3_int64 iStart, iAt;
  int n, rc;
  char cOrder, cKind;
  if( vdbNpyPeek(p)=='[' || vdbNpyPeek(p)=='{' ){
    return vdbNpyError(p, p->i, "structured dtypes are not supported: "
                       "float32, float64, int8 or uint8 only");
  }
  iAt = p->i;
  rc = vdbNpyString(p, &iStart, &n);
  if( rc!=SQLITE_OK ) return rc;
  if( n!=3 ) goto unsupported;
  cOrder = (char)p->a[iStart];
  cKind = (char)p->a[iStart+1];
  if( cOrder!='<' && cOrder!='>' && cOrder!='|' && cOrder!='=' ) goto unsupported;
  if( cKind=='f' && p->a[iStart+2]=='4' ){
    pInfo->eDtype = VDB_NPY_F32;  pInfo->szItem = 4;
  }else if( cKind=='f' && p->a[iStart+2]=='8' ){
    pInfo->eDtype = VDB_NPY_F64;  pInfo->szItem = 8;
  }else if( cKind=='i' && p->a[iStart+2]=='1' ){
    pInfo->eDtype = VDB_NPY_I8;   pInfo->szItem = 1;
  }else if( cKind=='u' && p->a[iStart+2]=='1' ){
    pInfo->eDtype = VDB_NPY_U8;   pInfo->szItem = 1;
  }else{
    goto unsupported;
  }
  /* '|' (not applicable) is for one-byte types only; '=' is the writer's
  ** native order, which a file cannot tell us: both are refused for
  ** wider types rather than guessed. */
  if( pInfo->szItem>1 && cOrder!='<' && cOrder!='>' ) goto unsupported;
  pInfo->bBigEndian = cOrder=='>';
  return SQLITE_OK;

unsupported:
  return vdbNpyError(p, iAt, "dtype '%.*s' is not supported: float32 ('<f4'), "
                     "float64 ('<f8'), int8 ('|i1') or uint8 ('|u1') only",
                     n>40 ? 40 : n, (const char*)p->a+iStart);
}

static int vdbNpyBool(VdbNpyParser *p, int *pb){
  vdbNpySkipSpace(p);
  if( p->iEnd-p->i>=4 && memcmp(p->a+p->i, "True", 4)==0 ){
    *pb = 1; p->i += 4;
  }else if( p->iEnd-p->i>=5 && memcmp(p->a+p->i, "False", 5)==0 ){
    *pb = 0; p->i += 5;
  }else{
    return vdbNpyError(p, p->i, "malformed .npy header: expected True or False");
  }
  return SQLITE_OK;
}

/* A tuple of non-negative integers, "()", "(3,)" or "(3, 4)" (a trailing
** 'L', from files written by Python 2, is accepted). At most 3 entries
** are kept; *pnShape counts them all. */
static int vdbNpyShape(VdbNpyParser *p, sqlite3_int64 *aShape, int *pnShape,
                       sqlite3_int64 *piAt){
  int rc, n = 0;
  *piAt = p->i;
  rc = vdbNpyExpect(p, '(', "'(' starting the shape tuple");
  if( rc!=SQLITE_OK ) return rc;
  *piAt = p->i-1;
  while( vdbNpyPeek(p)!=')' ){
    sqlite3_int64 v = 0;
    sqlite3_int64 iNum = p->i;
    if( p->i>=p->iEnd || p->a[p->i]<'0' || p->a[p->i]>'9' ){
      return vdbNpyError(p, p->i, "malformed .npy header: expected a dimension "
                         "(a non-negative integer) or ')' in the shape");
    }
    while( p->i<p->iEnd && p->a[p->i]>='0' && p->a[p->i]<='9' ){
      if( v > ((sqlite3_int64)1<<40) ){
        return vdbNpyError(p, iNum, "dimension in the shape is too large");
      }
      v = v*10 + (p->a[p->i]-'0');
      p->i++;
    }
    if( p->i<p->iEnd && p->a[p->i]=='L' ) p->i++;
    if( n<3 ) aShape[n] = v;
    n++;
    if( vdbNpyPeek(p)==',' ){
      p->i++;
    }else if( vdbNpyPeek(p)!=')' ){
      return vdbNpyError(p, p->i, "malformed .npy header: expected ',' or ')' in the shape");
    }
  }
  p->i++;
  *pnShape = n;
  return SQLITE_OK;
}

/* Parses the magic, version, header length and header dict of the nBlob
** bytes at a. On error returns an SQLite code and sets *pzErr. */
static int vdbNpyParseHeader(const unsigned char *a, sqlite3_int64 nBlob,
                             VdbNpyInfo *pInfo, char **pzErr){
  VdbNpyParser p;
  sqlite3_int64 hlen, iDict, aShape[3] = {0, 0, 0}, iShapeAt = 0, iFortranAt = 0;
  int rc = SQLITE_OK, nShape = -1, bFortran = -1, bDescr = 0;

  memset(&p, 0, sizeof(p));
  memset(pInfo, 0, sizeof(*pInfo));
  p.a = a;
  p.iEnd = nBlob;
  if( nBlob<VDB_NPY_MAGIC_LEN || memcmp(a, VDB_NPY_MAGIC, VDB_NPY_MAGIC_LEN)!=0 ){
    rc = vdbNpyError(&p, 0, "not a .npy file: it does not start with \\x93NUMPY");
    goto done;
  }
  if( nBlob<VDB_NPY_MAGIC_LEN+2 ){
    rc = vdbNpyError(&p, nBlob, "truncated .npy file: the format version "
                     "needs 2 bytes at offset 6, the BLOB has %lld bytes", nBlob);
    goto done;
  }
  if( a[6]==1 && a[7]==0 ){
    if( nBlob<10 ){
      rc = vdbNpyError(&p, nBlob, "truncated .npy file: the header length needs "
                       "2 bytes at offset 8, the BLOB has %lld bytes", nBlob);
      goto done;
    }
    hlen = a[8] | (a[9]<<8);
    iDict = 10;
  }else if( (a[6]==2 || a[6]==3) && a[7]==0 ){
    if( nBlob<12 ){
      rc = vdbNpyError(&p, nBlob, "truncated .npy file: the header length needs "
                       "4 bytes at offset 8, the BLOB has %lld bytes", nBlob);
      goto done;
    }
    hlen = (sqlite3_int64)a[8] | ((sqlite3_int64)a[9]<<8)
         | ((sqlite3_int64)a[10]<<16) | ((sqlite3_int64)a[11]<<24);
    iDict = 12;
  }else{
    rc = vdbNpyError(&p, 6, "unsupported .npy format version %d.%d "
                     "(1.0, 2.0 and 3.0 are)", a[6], a[7]);
    goto done;
  }
  if( iDict+hlen>nBlob ){
    rc = vdbNpyError(&p, nBlob, "truncated .npy file: the header needs %lld bytes "
                     "from offset %lld, the BLOB has %lld", hlen, iDict, nBlob);
    goto done;
  }
  p.i = iDict;
  p.iEnd = iDict+hlen;

  rc = vdbNpyExpect(&p, '{', "'{' starting the header dict");
  while( rc==SQLITE_OK && vdbNpyPeek(&p)!='}' ){
    sqlite3_int64 iKey, iKeyAt = p.i;
    int nKey;
    rc = vdbNpyString(&p, &iKey, &nKey);
    if( rc==SQLITE_OK ) rc = vdbNpyExpect(&p, ':', "':' after a key");
    if( rc!=SQLITE_OK ) break;
    if( vdbNpyIs(&p, iKey, nKey, "descr") && !bDescr ){
      rc = vdbNpyDtype(&p, pInfo);
      bDescr = 1;
    }else if( vdbNpyIs(&p, iKey, nKey, "fortran_order") && bFortran<0 ){
      vdbNpySkipSpace(&p);
      iFortranAt = p.i;
      rc = vdbNpyBool(&p, &bFortran);
    }else if( vdbNpyIs(&p, iKey, nKey, "shape") && nShape<0 ){
      rc = vdbNpyShape(&p, aShape, &nShape, &iShapeAt);
    }else{
      rc = vdbNpyError(&p, iKeyAt, "malformed .npy header: unexpected or repeated "
                       "key '%.*s'", nKey>40 ? 40 : nKey, (const char*)a+iKey);
    }
    if( rc!=SQLITE_OK ) break;
    if( vdbNpyPeek(&p)==',' ){
      p.i++;
    }else if( vdbNpyPeek(&p)!='}' ){
      rc = vdbNpyError(&p, p.i, "malformed .npy header: expected ',' or '}'");
    }
  }
  if( rc!=SQLITE_OK ) goto done;
  p.i++;                                    /* the '}' */
  vdbNpySkipSpace(&p);
  if( p.i<p.iEnd ){
    rc = vdbNpyError(&p, p.i, "malformed .npy header: unexpected text after the dict");
    goto done;
  }
  if( !bDescr || bFortran<0 || nShape<0 ){
    rc = vdbNpyError(&p, iDict, "malformed .npy header: the key '%s' is missing",
                     !bDescr ? "descr" : bFortran<0 ? "fortran_order" : "shape");
    goto done;
  }
  if( bFortran ){
    rc = vdbNpyError(&p, iFortranAt, "Fortran-order arrays are not supported; "
                     "save numpy.ascontiguousarray(a) instead");
    goto done;
  }
  if( nShape!=1 && nShape!=2 ){
    rc = vdbNpyError(&p, iShapeAt, "the array has %d dimensions; vectors come from "
                     "1-D (one vector) or 2-D (one per row) arrays", nShape);
    goto done;
  }
  pInfo->nRow = nShape==1 ? 1 : aShape[0];
  pInfo->iData = iDict+hlen;
  if( aShape[nShape-1]==0 && pInfo->nRow>0 ){
    rc = vdbNpyError(&p, iShapeAt, "the vectors have 0 elements");
    goto done;
  }
  if( aShape[nShape-1]>VDB_MAX_DIMS ){
    rc = vdbNpyError(&p, iShapeAt, "the vectors have %lld elements; at most %d are "
                     "supported", aShape[nShape-1], VDB_MAX_DIMS);
    goto done;
  }
  pInfo->nDim = (int)aShape[nShape-1];
  {
    /* nDim*szItem <= 65536 and nRow < 2^41: no overflow. */
    sqlite3_int64 nWant = pInfo->nRow * pInfo->nDim * pInfo->szItem;
    sqlite3_int64 nHave = nBlob - pInfo->iData;
    if( nHave<nWant ){
      rc = vdbNpyError(&p, nBlob, "truncated .npy data: %lld x %d elements of %d bytes "
                       "need %lld bytes from offset %lld, the BLOB has %lld there",
                       pInfo->nRow, pInfo->nDim, pInfo->szItem, nWant,
                       pInfo->iData, nHave);
    }else if( nHave>nWant ){
      rc = vdbNpyError(&p, pInfo->iData+nWant, "the BLOB goes on for %lld bytes "
                       "after the data (the shape accounts for %lld bytes from offset %lld)",
                       nHave-nWant, nWant, pInfo->iData);
    }
  }

done:
  *pzErr = p.zErr;
  return rc;
}

/* Check a .fvecs/.bvecs/.ivecs BLOB, describe it as a .npy would be and
** copy its elements without the per-vector dimensions into *paData. */
static const char *const vdbVecsName[] = { "vec_npy_each", "vec_fvecs_each", "vec_bvecs_each",
                                           "vec_ivecs_each" };

static int vdbVecsParse(const unsigned char *a, sqlite3_int64 n, int eKind, VdbNpyInfo *pInfo,
                        unsigned char **paData, char **pzErr){
  const char *zFn = vdbVecsName[eKind];
  sqlite3_int64 iOff = 0, nRecord, iRow;
  int sz = eKind==VDB_VECS_B ? 1 : 4, d;
  memset(pInfo, 0, sizeof(*pInfo));
  *paData = 0;
  pInfo->eDtype = eKind==VDB_VECS_F ? VDB_NPY_F32 : eKind==VDB_VECS_B ? VDB_NPY_U8 : VDB_NPY_I32;
  pInfo->szItem = sz;
  if( n==0 ) return SQLITE_OK;                       /* no vectors */
  if( n<4 ){
    *pzErr = sqlite3_mprintf("%s: %lld bytes, too short for a vector's dimension (at offset 0)", zFn, n);
    return SQLITE_ERROR;
  }
  d = (int)((unsigned)a[0] | ((unsigned)a[1]<<8) | ((unsigned)a[2]<<16) | ((unsigned)a[3]<<24));
  if( d<1 || d>VDB_MAX_DIMS ){
    *pzErr = sqlite3_mprintf("%s: dimension %d is not from 1 to %d (at offset 0)", zFn, d, VDB_MAX_DIMS);
    return SQLITE_ERROR;
  }
  nRecord = 4 + (sqlite3_int64)d*sz;
  pInfo->nDim = d;
  pInfo->nRow = n / nRecord;
  /* Every record names the same dimension, and the last is whole. */
  for(iRow=0; iRow<pInfo->nRow; iRow++){
    const unsigned char *r = a + iRow*nRecord;
    int di = (int)((unsigned)r[0] | ((unsigned)r[1]<<8) | ((unsigned)r[2]<<16) | ((unsigned)r[3]<<24));
    if( di!=d ){
      *pzErr = sqlite3_mprintf("%s: vector %lld has dimension %d, the first has %d (at offset %lld)",
                               zFn, iRow, di, d, iRow*nRecord);
      return SQLITE_ERROR;
    }
  }
  iOff = pInfo->nRow*nRecord;
  if( iOff!=n ){
    *pzErr = sqlite3_mprintf("%s: the file ends inside vector %lld, %lld of its %lld bytes (at offset %lld)",
                             zFn, pInfo->nRow, n-iOff, nRecord, iOff);
    return SQLITE_ERROR;
  }
  *paData = (unsigned char*)sqlite3_malloc64((sqlite3_uint64)(pInfo->nRow*d*sz) + 1);
  if( *paData==0 ) return SQLITE_NOMEM;
  for(iRow=0; iRow<pInfo->nRow; iRow++){
    memcpy(*paData + iRow*d*sz, a + iRow*nRecord + 4, (size_t)d*sz);
  }
  return SQLITE_OK;
}

typedef struct VdbNpyCursor {
  sqlite3_vtab_cursor base;
  VdbNpyInfo info;
  unsigned char *aData;    /* owned copy of the elements */
  void *pRow;              /* one converted vector (float32 or int8) */
  sqlite3_int64 iRow;
} VdbNpyCursor;

/* The vtab: SQLite's part, then the file kind (pAux: VDB_VECS_*). */
typedef struct VdbNpyVtab {
  sqlite3_vtab base;
  int eKind;
} VdbNpyVtab;

static int vdbNpyConnect(sqlite3 *db, void *pAux, int argc, const char *const*argv,
                         sqlite3_vtab **ppVtab, char **pzErr){
  VdbNpyVtab *pVtab;
  int rc;
  (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(vector, file HIDDEN)");
  if( rc!=SQLITE_OK ) return rc;
  pVtab = (VdbNpyVtab*)sqlite3_malloc(sizeof(*pVtab));
  if( pVtab==0 ) return SQLITE_NOMEM;
  memset(pVtab, 0, sizeof(*pVtab));
  pVtab->eKind = (int)(intptr_t)pAux;
  *ppVtab = &pVtab->base;
  return SQLITE_OK;
}

static int vdbNpyDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static int vdbNpyBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  int i;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *p = &pInfo->aConstraint[i];
    if( p->iColumn==VDB_NPY_COL_FILE && p->op==SQLITE_INDEX_CONSTRAINT_EQ ){
      if( !p->usable ) return SQLITE_CONSTRAINT;
      pInfo->aConstraintUsage[i].argvIndex = 1;
      pInfo->aConstraintUsage[i].omit = 1;
      pInfo->estimatedCost = 1000;
      pInfo->estimatedRows = 1000;
      return SQLITE_OK;
    }
  }
  sqlite3_free(pVtab->zErrMsg);
  pVtab->zErrMsg = sqlite3_mprintf("%s: a BLOB argument is required, as in SELECT rowid, "
                                   "vector FROM %s(?)", vdbVecsName[((VdbNpyVtab*)pVtab)->eKind],
                                   vdbVecsName[((VdbNpyVtab*)pVtab)->eKind]);
  return pVtab->zErrMsg ? SQLITE_ERROR : SQLITE_NOMEM;
}

static int vdbNpyOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  VdbNpyCursor *pCur = (VdbNpyCursor*)sqlite3_malloc(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

static void vdbNpyReset(VdbNpyCursor *pCur){
  sqlite3_free(pCur->aData);
  sqlite3_free(pCur->pRow);
  pCur->aData = 0;
  pCur->pRow = 0;
  memset(&pCur->info, 0, sizeof(pCur->info));
  pCur->iRow = 0;
}

static int vdbNpyClose(sqlite3_vtab_cursor *cur){
  VdbNpyCursor *pCur = (VdbNpyCursor*)cur;
  vdbNpyReset(pCur);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

static int vdbNpySetError(sqlite3_vtab_cursor *cur, char *zErr, int rc){
  sqlite3_free(cur->pVtab->zErrMsg);
  cur->pVtab->zErrMsg = zErr;
  return rc;
}

static int vdbNpyFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                        int argc, sqlite3_value **argv){
  VdbNpyCursor *pCur = (VdbNpyCursor*)cur;
  int eKind = ((VdbNpyVtab*)cur->pVtab)->eKind;
  const unsigned char *a;
  sqlite3_int64 n, nData;
  char *zErr = 0;
  int rc;
  (void)idxNum; (void)idxStr;
  vdbNpyReset(pCur);
  if( argc<1 || sqlite3_value_type(argv[0])==SQLITE_NULL ) return SQLITE_OK;
  if( sqlite3_value_type(argv[0])!=SQLITE_BLOB ){
    static const char *const azExt[] = { ".npy", ".fvecs", ".bvecs", ".ivecs" };
    return vdbNpySetError(cur, sqlite3_mprintf("%s: the argument must be "
        "the BLOB of a %s file, got %s", vdbVecsName[eKind], azExt[eKind],
        sqlite3_value_type(argv[0])==SQLITE_TEXT ? "TEXT" :
        sqlite3_value_type(argv[0])==SQLITE_INTEGER ? "INTEGER" : "REAL"), SQLITE_ERROR);
  }
  a = (const unsigned char*)sqlite3_value_blob(argv[0]);
  n = sqlite3_value_bytes(argv[0]);
  if( a==0 && n>0 ) return SQLITE_NOMEM;
  if( eKind!=VDB_VECS_NONE ){
    rc = vdbVecsParse(a, n, eKind, &pCur->info, &pCur->aData, &zErr);
    if( rc==SQLITE_OK ){
      pCur->pRow = sqlite3_malloc64((sqlite3_uint64)pCur->info.nDim * 4 + 1);
      if( pCur->pRow==0 ) rc = SQLITE_NOMEM;
    }
    if( rc!=SQLITE_OK ){
      vdbNpyReset(pCur);
      return zErr ? vdbNpySetError(cur, zErr, rc) : rc;
    }
    return SQLITE_OK;
  }
  rc = vdbNpyParseHeader(a ? a : (const unsigned char*)"", n, &pCur->info, &zErr);
  if( rc!=SQLITE_OK ) return vdbNpySetError(cur, zErr, rc);
  /* The argument does not outlive xFilter: keep the elements. */
  nData = n - pCur->info.iData;
  pCur->aData = sqlite3_malloc64(nData>0 ? nData : 1);
  pCur->pRow = sqlite3_malloc64((sqlite3_uint64)pCur->info.nDim * 4 + 1);
  if( pCur->aData==0 || pCur->pRow==0 ){
    vdbNpyReset(pCur);
    return SQLITE_NOMEM;
  }
  if( nData>0 ) memcpy(pCur->aData, a+pCur->info.iData, (size_t)nData);
  return SQLITE_OK;
}

static int vdbNpyNext(sqlite3_vtab_cursor *cur){
  ((VdbNpyCursor*)cur)->iRow++;
  return SQLITE_OK;
}

static int vdbNpyEof(sqlite3_vtab_cursor *cur){
  VdbNpyCursor *pCur = (VdbNpyCursor*)cur;
  return pCur->aData==0 || pCur->iRow>=pCur->info.nRow;
}

/* Element j of the current row as a double, from the file's byte order. */
static double vdbNpyFloatAt(const VdbNpyCursor *pCur, int j){
  const unsigned char *p = pCur->aData
      + (pCur->iRow*pCur->info.nDim + j) * pCur->info.szItem;
  unsigned char b[8];
  int k, sz = pCur->info.szItem;
  for(k=0; k<sz; k++) b[k] = pCur->info.bBigEndian ? p[sz-1-k] : p[k];
  if( sz==4 ){
    float f;
    memcpy(&f, b, 4);
    return f;
  }else{
    double d;
    memcpy(&d, b, 8);
    return d;
  }
}

/* Converts the current row into pCur->pRow; on a value vectordb cannot
** hold, sets an error on ctx naming the row and element and returns 0. */
static int vdbNpyConvertRow(VdbNpyCursor *pCur, sqlite3_context *ctx){
  const VdbNpyInfo *pI = &pCur->info;
  const unsigned char *pSrc = pCur->aData + pCur->iRow*pI->nDim*pI->szItem;
  float *aF = (float*)pCur->pRow;
  int j;
  if( pI->eDtype==VDB_NPY_I8 ){
    memcpy(pCur->pRow, pSrc, (size_t)pI->nDim);
    return 1;
  }
  for(j=0; j<pI->nDim; j++){
    double d;
    if( pI->eDtype==VDB_NPY_I32 ){
      const unsigned char *e = pSrc + 4*j;
      int v = (int)((unsigned)e[0] | ((unsigned)e[1]<<8) | ((unsigned)e[2]<<16) | ((unsigned)e[3]<<24));
      if( v>VDB_F32_EXACT_INT || v<-VDB_F32_EXACT_INT ){
        char *z = sqlite3_mprintf("vec_ivecs_each: row %lld, element %d (%d) has no exact float32",
                                  pCur->iRow, j, v);
        sqlite3_result_error(ctx, z ? z : "vec_ivecs_each: out of memory", -1);
        sqlite3_free(z);
        return 0;
      }
      aF[j] = (float)v;
      continue;
    }
    d = pI->eDtype==VDB_NPY_U8 ? (double)pSrc[j] : vdbNpyFloatAt(pCur, j);
    if( isnan(d) || isinf(d) ){
      char *z = sqlite3_mprintf("%s: row %lld, element %d is %s; vectors must be finite",
                                vdbVecsName[((VdbNpyVtab*)pCur->base.pVtab)->eKind], pCur->iRow, j,
                                isnan(d) ? "NaN" : d>0 ? "+Inf" : "-Inf");
      sqlite3_result_error(ctx, z ? z : "vec_npy_each: out of memory", -1);
      sqlite3_free(z);
      return 0;
    }
    if( fabs(d)>3.4028234663852886e38 ){
      char *z = sqlite3_mprintf("vec_npy_each: row %lld, element %d (%g) is beyond "
                                "float32's range", pCur->iRow, j, d);
      sqlite3_result_error(ctx, z ? z : "vec_npy_each: out of memory", -1);
      sqlite3_free(z);
      return 0;
    }
    aF[j] = (float)d;
  }
  return 1;
}

static int vdbNpyColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol){
  VdbNpyCursor *pCur = (VdbNpyCursor*)cur;
  VdbElemType eType;
  if( iCol!=VDB_NPY_COL_VECTOR ) return SQLITE_OK;      /* npy: NULL, hidden */
  eType = pCur->info.eDtype==VDB_NPY_I8 ? VDB_ELEM_INT8 : VDB_ELEM_F32;
  if( !vdbNpyConvertRow(pCur, ctx) ) return SQLITE_ERROR;
  sqlite3_result_blob(ctx, pCur->pRow, (int)vdbVectorByteSize(eType, pCur->info.nDim),
                      SQLITE_TRANSIENT);
  sqlite3_result_subtype(ctx, (unsigned int)vdbElemTypeSubtype(eType));
  return SQLITE_OK;
}

static int vdbNpyRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((VdbNpyCursor*)cur)->iRow;
  return SQLITE_OK;
}

static const sqlite3_module vdbNpyModule = {
  0,                      /* iVersion */
  0,                      /* xCreate: eponymous-only */
  vdbNpyConnect,
  vdbNpyBestIndex,
  vdbNpyDisconnect,
  0,                      /* xDestroy */
  vdbNpyOpen,
  vdbNpyClose,
  vdbNpyFilter,
  vdbNpyNext,
  vdbNpyEof,
  vdbNpyColumn,
  vdbNpyRowid,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

int vdbRegisterImport(sqlite3 *db){
  int i, rc = SQLITE_OK;
  for(i=VDB_VECS_NONE; rc==SQLITE_OK && i<=VDB_VECS_I; i++){
    rc = sqlite3_create_module(db, vdbVecsName[i], &vdbNpyModule, (void*)(intptr_t)i);
  }
  return rc;
}
