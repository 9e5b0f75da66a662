/*
** vectordb: the command-line tool.
**
**   vectordb import DATABASE TABLE FILE [options]   load .npy, .fvecs, .jsonl, .csv
**   vectordb stats  DATABASE TABLE [--json]         vectordb_stats('TABLE')
**   vectordb check  DATABASE TABLE                  vectordb_check('TABLE')
**   vectordb query  DATABASE TABLE (--vector JSON | --row ROWID) [options]
**
** Linked statically with libvectordb.a and the system SQLite; every
** connection gets vectordb through sqlite3_auto_extension. Exit codes:
** 0 ok, 1 bad usage or input, 2 a database problem, 128+signal when an
** import is interrupted (130 for SIGINT) after committing its batch.
*/
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "vectordb.h"

#ifndef VECTORDB_CLI_VERSION
# define VECTORDB_CLI_VERSION "unknown"
#endif

#define CLI_OK          0
#define CLI_EINPUT      1
#define CLI_EDB         2

#define CLI_MAX_DIM     8192
#define CLI_DEFAULT_BATCH 10000

/* ---- errors ---------------------------------------------------------------- */

static void cliError(const char *zFmt, ...){
  va_list ap;
  fputs("vectordb: ", stderr);
  va_start(ap, zFmt);
  vfprintf(stderr, zFmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* The exit code for an SQLite failure: the database itself is at fault
** (cannot be opened, is not a database, is corrupt, cannot be written or
** is locked) -> 2; anything else (an unknown table, a bad vector, a bad
** filter) is the request's fault -> 1. */
static int cliDbExit(int rc){
  switch( rc & 0xff ){
    case SQLITE_CANTOPEN: case SQLITE_NOTADB: case SQLITE_CORRUPT:
    case SQLITE_IOERR:    case SQLITE_FULL:   case SQLITE_BUSY:
    case SQLITE_LOCKED:   case SQLITE_READONLY: case SQLITE_PERM:
    case SQLITE_NOMEM:    case SQLITE_PROTOCOL:
      return CLI_EDB;
  }
  return CLI_EINPUT;
}

static int cliSqlError(sqlite3 *db, const char *zWhat){
  int rc = sqlite3_extended_errcode(db);
  cliError("%s: %s", zWhat, sqlite3_errmsg(db));
  return cliDbExit(rc);
}

/* ---- opening ----------------------------------------------------------------- */

/* Open DATABASE. Only import may create it; the other commands report a
** missing file instead of leaving an empty database behind. The schema is
** read at once so that a file that is not a database fails here. */
static int cliOpen(const char *zPath, int bCreate, sqlite3 **pDb){
  int flags = SQLITE_OPEN_READWRITE | (bCreate ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(zPath, pDb, flags, 0);
  if( rc==SQLITE_OK ){
    sqlite3_busy_timeout(*pDb, 5000);
    sqlite3_extended_result_codes(*pDb, 1);
    rc = sqlite3_exec(*pDb, "SELECT count(*) FROM sqlite_schema", 0, 0, 0);
  }
  if( rc!=SQLITE_OK ){
    cliError("cannot open database %s: %s", zPath,
             *pDb ? sqlite3_errmsg(*pDb) : sqlite3_errstr(rc));
    return CLI_EDB;
  }
  return CLI_OK;
}

/* The vector columns of TABLE, in declaration order, as vectordb_stats
** lists them; also proves TABLE is a vectordb table. */
static int cliVectorColumns(sqlite3 *db, const char *zTable, char ***pazCol, int *pnCol){
  sqlite3_stmt *pStmt = 0;
  char **azCol = 0;
  int nCol = 0, rc;
  *pazCol = 0; *pnCol = 0;
  rc = sqlite3_prepare_v2(db, "SELECT \"column\" FROM vectordb_stats(?1) WHERE key = 'index'",
                          -1, &pStmt, 0);
  if( rc==SQLITE_OK ) sqlite3_bind_text(pStmt, 1, zTable, -1, SQLITE_STATIC);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    char **aNew = realloc(azCol, sizeof(char*)*(nCol+1));
    if( aNew==0 ){ rc = SQLITE_NOMEM; break; }
    azCol = aNew;
    azCol[nCol] = strdup((const char*)sqlite3_column_text(pStmt, 0));
    if( azCol[nCol++]==0 ){ rc = SQLITE_NOMEM; break; }
  }
  if( rc==SQLITE_OK ) rc = sqlite3_finalize(pStmt); else sqlite3_finalize(pStmt);
  if( rc!=SQLITE_OK ){
    int e = cliSqlError(db, zTable);
    while( nCol>0 ) free(azCol[--nCol]);
    free(azCol);
    return e;
  }
  *pazCol = azCol; *pnCol = nCol;
  return CLI_OK;
}

static void cliFreeColumns(char **azCol, int nCol){
  while( nCol>0 ) free(azCol[--nCol]);
  free(azCol);
}

/* Choose the vector column: zWant if it is one of the table's, else the
** first. */
static int cliPickColumn(sqlite3 *db, const char *zTable, const char *zWant, char **pzCol){
  char **azCol; int nCol, i, e;
  *pzCol = 0;
  e = cliVectorColumns(db, zTable, &azCol, &nCol);
  if( e ) return e;
  for(i=0; i<nCol; i++){
    if( zWant==0 || strcmp(zWant, azCol[i])==0 ) break;
  }
  if( i==nCol ){
    if( zWant ) cliError("table %s has no vector column %s", zTable, zWant);
    else cliError("table %s has no vector column", zTable);
    cliFreeColumns(azCol, nCol);
    return CLI_EINPUT;
  }
  *pzCol = strdup(azCol[i]);
  cliFreeColumns(azCol, nCol);
  return *pzCol ? CLI_OK : CLI_EDB;
}

/* ---- argument parsing -------------------------------------------------------- */

static int cliParseInt(const char *zOpt, const char *z, long long lo, long long hi, long long *pOut){
  char *zEnd;
  long long v;
  errno = 0;
  v = strtoll(z, &zEnd, 10);
  if( z[0]==0 || *zEnd!=0 || errno || v<lo || v>hi ){
    cliError("%s expects an integer from %lld to %lld, got '%s'", zOpt, lo, hi, z);
    return CLI_EINPUT;
  }
  *pOut = v;
  return CLI_OK;
}

/* ---- input files --------------------------------------------------------------- */

typedef enum { FMT_NPY, FMT_FVECS, FMT_JSONL, FMT_CSV } CliFormat;

typedef struct CliReader CliReader;
struct CliReader {
  const char *zPath;
  CliFormat eFmt;
  FILE *in;
  sqlite3 *db;                  /* for JSON parsing (jsonl) */
  sqlite3_stmt *pJson;          /* jsonl: type, vector, id of one line */
  const char *zColumn;          /* jsonl: the object key holding the vector */
  long long nFileBytes;
  long long iOffset;            /* bytes consumed so far */
  long long iRecord;            /* records read so far */
  long long iLine;              /* text formats: lines read so far */
  long long nTotal;             /* binary formats: records in the file, else -1 */
  int nDim;                     /* 0 until the first record fixes it */
  int bInt8;                    /* records are int8, not float32 */
  /* .npy */
  char cKind;                   /* 'f', 'i', 'u' */
  int nElem;                    /* bytes per element in the file */
  int bSwap;                    /* big-endian elements */
  /* text */
  char *zLine; size_t nLineAlloc;
  /* the current record */
  unsigned char *aBlob; int nBlob;
  sqlite3_int64 iRowid;
  int bHasId;                   /* jsonl: the record gave its own id */
  char zErr[512];               /* why the last read failed */
};

static int readerFail(CliReader *p, const char *zFmt, ...){
  char zMsg[400];
  va_list ap;
  va_start(ap, zFmt);
  vsnprintf(zMsg, sizeof(zMsg), zFmt, ap);
  va_end(ap);
  if( p->eFmt==FMT_JSONL || p->eFmt==FMT_CSV ){
    snprintf(p->zErr, sizeof(p->zErr), "%s line %lld: %s", p->zPath, p->iLine, zMsg);
  }else{
    snprintf(p->zErr, sizeof(p->zErr), "%s at byte offset %lld: %s", p->zPath, p->iOffset, zMsg);
  }
  return CLI_EINPUT;
}

static int readerBlob(CliReader *p, int nDim){
  int n = nDim * (p->bInt8 ? 1 : 4);
  if( n>p->nBlob ){
    unsigned char *a = realloc(p->aBlob, n);
    if( a==0 ) return readerFail(p, "out of memory");
    p->aBlob = a;
  }
  p->nBlob = n;
  return CLI_OK;
}

/* Store element i of the current record as a float32, refusing what
** float32 cannot hold. */
static int readerPutFloat(CliReader *p, int i, double v){
  float f = (float)v;
  if( !isfinite(v) ){
    return readerFail(p, "record %lld element %d is not a finite number", p->iRecord+1, i);
  }
  if( !isfinite(f) ){
    return readerFail(p, "record %lld element %d is beyond the float32 range: %g",
                      p->iRecord+1, i, v);
  }
  memcpy(p->aBlob + 4*i, &f, 4);
  return CLI_OK;
}

/* .npy -------------------------------------------------------------------- */

/* A strict reader for the header dict numpy writes:
** {'descr': '<f4', 'fortran_order': False, 'shape': (N, D), } padded with
** spaces and a newline. */
typedef struct NpyHeader { char zDescr[16]; int bFortran; long long aShape[3]; int nShape; int seen; } NpyHeader;

static const char *npySkip(const char *z){ while( *z==' ' ) z++; return z; }

static const char *npyString(const char *z, char *zOut, int nOut){
  char q = *z;
  int n = 0;
  if( q!='\'' && q!='"' ) return 0;
  for(z++; *z && *z!=q; z++){
    if( n+1>=nOut ) return 0;
    zOut[n++] = *z;
  }
  if( *z!=q ) return 0;
  zOut[n] = 0;
  return z+1;
}

static int npyParseHeader(const char *z, NpyHeader *pH){
  memset(pH, 0, sizeof(*pH));
  z = npySkip(z);
  if( *z++!='{' ) return 0;
  for(;;){
    char zKey[32];
    z = npySkip(z);
    if( *z=='}' ){ z++; break; }
    z = npyString(z, zKey, sizeof(zKey));
    if( z==0 ) return 0;
    z = npySkip(z);
    if( *z++!=':' ) return 0;
    z = npySkip(z);
    if( strcmp(zKey, "descr")==0 && !(pH->seen & 1) ){
      z = npyString(z, pH->zDescr, sizeof(pH->zDescr));
      if( z==0 ) return 0;
      pH->seen |= 1;
    }else if( strcmp(zKey, "fortran_order")==0 && !(pH->seen & 2) ){
      if( strncmp(z, "False", 5)==0 ){ pH->bFortran = 0; z += 5; }
      else if( strncmp(z, "True", 4)==0 ){ pH->bFortran = 1; z += 4; }
      else return 0;
      pH->seen |= 2;
    }else if( strcmp(zKey, "shape")==0 && !(pH->seen & 4) ){
      if( *z++!='(' ) return 0;
      for(;;){
        z = npySkip(z);
        if( *z==')' ){ z++; break; }
        if( *z<'0' || *z>'9' || pH->nShape==3 ) return 0;
        pH->aShape[pH->nShape] = 0;
        while( *z>='0' && *z<='9' ){
          if( pH->aShape[pH->nShape] > (LLONG_MAX-9)/10 ) return 0;
          pH->aShape[pH->nShape] = pH->aShape[pH->nShape]*10 + (*z++ - '0');
        }
        pH->nShape++;
        z = npySkip(z);
        if( *z==',' ) z++;
        else if( *z!=')' ) return 0;
      }
      pH->seen |= 4;
    }else{
      return 0;
    }
    z = npySkip(z);
    if( *z==',' ) z++;
    else if( *z!='}' ) return 0;
  }
  while( *z==' ' ) z++;
  if( *z=='\n' ) z++;
  return *z==0 && pH->seen==7;
}

static int npyOpen(CliReader *p){
  unsigned char aPre[12];
  char *zHdr;
  unsigned int nHdr;
  int nPre;
  NpyHeader h;
  const char *d;
  if( fread(aPre, 1, 10, p->in)!=10 || memcmp(aPre, "\x93NUMPY", 6)!=0 ){
    return readerFail(p, "not a .npy file (no \\x93NUMPY magic)");
  }
  if( aPre[6]==1 && aPre[7]==0 ){
    nPre = 10; nHdr = aPre[8] | (aPre[9]<<8);
  }else if( (aPre[6]==2 || aPre[6]==3) && aPre[7]==0 ){
    if( fread(aPre+10, 1, 2, p->in)!=2 ) return readerFail(p, "truncated .npy prefix");
    nPre = 12;
    nHdr = aPre[8] | (aPre[9]<<8) | (aPre[10]<<16) | ((unsigned)aPre[11]<<24);
  }else{
    return readerFail(p, ".npy format version %d.%d is not supported (1.0, 2.0, 3.0 only)",
                      aPre[6], aPre[7]);
  }
  p->iOffset = nPre;
  if( nHdr>1000000 || (long long)nPre+nHdr > p->nFileBytes ){
    return readerFail(p, "truncated .npy header: %u bytes announced", nHdr);
  }
  zHdr = malloc(nHdr+1);
  if( zHdr==0 ) return readerFail(p, "out of memory");
  if( fread(zHdr, 1, nHdr, p->in)!=nHdr ){ free(zHdr); return readerFail(p, "truncated .npy header"); }
  zHdr[nHdr] = 0;
  if( strlen(zHdr)!=nHdr || !npyParseHeader(zHdr, &h) ){
    free(zHdr);
    return readerFail(p, "malformed .npy header dict (expected 'descr', 'fortran_order', 'shape')");
  }
  free(zHdr);
  d = h.zDescr;
  if( (d[0]!='<' && d[0]!='>' && d[0]!='|' && d[0]!='=') || strlen(d)!=3 ){
    return readerFail(p, "dtype '%s' is not supported: float32, float64, int8 or uint8 only", d);
  }
  p->cKind = d[1]; p->nElem = d[2]-'0';
  if( !((p->cKind=='f' && (p->nElem==4 || p->nElem==8))
     || ((p->cKind=='i' || p->cKind=='u') && p->nElem==1)) ){
    return readerFail(p, "dtype '%s' is not supported: float32, float64, int8 or uint8 only", d);
  }
  p->bSwap = d[0]=='>' && p->nElem>1;
  p->bInt8 = p->cKind=='i';
  if( h.bFortran ) return readerFail(p, "Fortran-order arrays are not supported (save numpy.ascontiguousarray(a))");
  if( h.nShape!=2 ) return readerFail(p, "a %d-D array: a 2-D array (rows, dimensions) is expected", h.nShape);
  if( h.aShape[1]<1 || h.aShape[1]>CLI_MAX_DIM ){
    return readerFail(p, "%lld dimensions: 1 to %d are supported", h.aShape[1], CLI_MAX_DIM);
  }
  p->iOffset = nPre + nHdr;
  p->nDim = (int)h.aShape[1];
  p->nTotal = h.aShape[0];
  if( p->nTotal > (p->nFileBytes - p->iOffset) / ((long long)p->nDim*p->nElem) ){
    return readerFail(p, "truncated .npy data: %lld x %d elements of %d bytes need %lld bytes,"
                      " the file has %lld after the header", p->nTotal, p->nDim, p->nElem,
                      p->nTotal*p->nDim*p->nElem, p->nFileBytes - p->iOffset);
  }
  if( p->nTotal*p->nDim*p->nElem != p->nFileBytes - p->iOffset ){
    return readerFail(p, "%lld bytes after the .npy data", p->nFileBytes - p->iOffset
                      - p->nTotal*p->nDim*p->nElem);
  }
  return CLI_OK;
}

static int npyNext(CliReader *p){
  unsigned char aRaw[CLI_MAX_DIM*8];
  int i, n = p->nDim*p->nElem, e;
  if( p->iRecord>=p->nTotal ) return -1;
  if( fread(aRaw, 1, n, p->in)!=(size_t)n ) return readerFail(p, "read error or truncated data");
  if( (e = readerBlob(p, p->nDim))!=CLI_OK ) return e;
  for(i=0; i<p->nDim; i++){
    unsigned char *q = aRaw + i*p->nElem;
    if( p->cKind=='i' ){
      p->aBlob[i] = q[0];
    }else if( p->cKind=='u' ){
      if( (e = readerPutFloat(p, i, q[0]))!=CLI_OK ) return e;
    }else{
      unsigned char b[8];
      int j;
      for(j=0; j<p->nElem; j++) b[j] = p->bSwap ? q[p->nElem-1-j] : q[j];
      if( p->nElem==4 ){
        float f; memcpy(&f, b, 4);
        if( (e = readerPutFloat(p, i, f))!=CLI_OK ) return e;
      }else{
        double v; memcpy(&v, b, 8);
        if( (e = readerPutFloat(p, i, v))!=CLI_OK ) return e;
      }
    }
  }
  p->iOffset += n;
  p->iRowid = p->iRecord+1;
  return CLI_OK;
}

/* .fvecs: each record is a little-endian int32 d, then d float32. ---------- */

static int fvecsNext(CliReader *p){
  unsigned char aDim[4];
  int32_t d;
  size_t got = fread(aDim, 1, 4, p->in);
  int i, e;
  if( got==0 && feof(p->in) ) return -1;
  if( got!=4 ) return readerFail(p, "truncated .fvecs record header");
  d = (int32_t)(aDim[0] | (aDim[1]<<8) | (aDim[2]<<16) | ((uint32_t)aDim[3]<<24));
  if( d<1 || d>CLI_MAX_DIM ){
    return readerFail(p, "record %lld announces %d dimensions: 1 to %d are supported",
                      p->iRecord+1, (int)d, CLI_MAX_DIM);
  }
  if( p->nDim==0 ){
    p->nDim = d;
    if( p->nFileBytes % (4 + 4LL*d)==0 ) p->nTotal = p->nFileBytes / (4 + 4LL*d);
  }else if( d!=p->nDim ){
    return readerFail(p, "record %lld has %d dimensions, the first had %d", p->iRecord+1, (int)d, p->nDim);
  }
  if( (e = readerBlob(p, d))!=CLI_OK ) return e;
  if( fread(p->aBlob, 1, 4*d, p->in)!=(size_t)(4*d) ){
    return readerFail(p, "truncated .fvecs record %lld: %d float32 announced", p->iRecord+1, (int)d);
  }
  for(i=0; i<d; i++){
    float f; memcpy(&f, p->aBlob+4*i, 4);
    if( (e = readerPutFloat(p, i, f))!=CLI_OK ) return e;
  }
  p->iOffset += 4 + 4LL*d;
  p->iRowid = p->iRecord+1;
  return CLI_OK;
}

/* Text formats: one record per line. ---------------------------------------- */

/* Read the next line into p->zLine without its line ending; -1 at the end.
** A final line ending is optional; an empty line is an error (it would
** shift every later record's position and so its rowid). */
static int textLine(CliReader *p){
  ssize_t n = getline(&p->zLine, &p->nLineAlloc, p->in);
  if( n<0 ){
    if( ferror(p->in) ) return readerFail(p, "read error: %s", strerror(errno));
    return -1;
  }
  p->iLine++;
  p->iOffset += n;
  if( (size_t)n!=strlen(p->zLine) ) return readerFail(p, "a NUL byte in the line");
  if( n>0 && p->zLine[n-1]=='\n' ) p->zLine[--n] = 0;
  if( n>0 && p->zLine[n-1]=='\r' ) p->zLine[--n] = 0;
  if( n==0 ) return readerFail(p, "empty line");
  return CLI_OK;
}

static int textSetDim(CliReader *p, int nDim){
  if( nDim<1 || nDim>CLI_MAX_DIM ){
    return readerFail(p, "%d dimensions: 1 to %d are supported", nDim, CLI_MAX_DIM);
  }
  if( p->nDim==0 ) p->nDim = nDim;
  if( nDim!=p->nDim ){
    return readerFail(p, "%d dimensions, the first record had %d", nDim, p->nDim);
  }
  return CLI_OK;
}

/* One CSV field as a decimal number: [+-]digits[.digits][(e|E)[+-]digits]
** with optional spaces around; returns 0 if it is not one. */
static int csvNumber(const char *z, const char *zEnd, double *pV){
  char aBuf[64];
  const char *s;
  char *zStop;
  int nDigit = 0;
  while( z<zEnd && (*z==' ' || *z=='\t') ) z++;
  while( zEnd>z && (zEnd[-1]==' ' || zEnd[-1]=='\t') ) zEnd--;
  if( zEnd-z<1 || zEnd-z>=(int)sizeof(aBuf) ) return 0;
  s = z;
  if( *s=='+' || *s=='-' ) s++;
  while( s<zEnd && *s>='0' && *s<='9' ){ s++; nDigit++; }
  if( s<zEnd && *s=='.' ){
    s++;
    while( s<zEnd && *s>='0' && *s<='9' ){ s++; nDigit++; }
  }
  if( nDigit==0 ) return 0;
  if( s<zEnd && (*s=='e' || *s=='E') ){
    int nExp = 0;
    s++;
    if( s<zEnd && (*s=='+' || *s=='-') ) s++;
    while( s<zEnd && *s>='0' && *s<='9' ){ s++; nExp++; }
    if( nExp==0 ) return 0;
  }
  if( s!=zEnd ) return 0;
  memcpy(aBuf, z, zEnd-z);
  aBuf[zEnd-z] = 0;
  *pV = strtod(aBuf, &zStop);
  return 1;
}

static int csvCountFields(const char *z){
  int n = 1;
  for(; *z; z++) if( *z==',' ) n++;
  return n;
}

static int csvNext(CliReader *p){
  int rc, nField, i, e;
  const char *z;
  for(;;){
    rc = textLine(p);
    if( rc!=CLI_OK ) return rc;
    nField = csvCountFields(p->zLine);
    if( p->iLine==1 ){
      /* Header detection: a first line with any field that is not a
      ** number is a header and is skipped. */
      int bHeader = 0;
      const char *zF = p->zLine;
      for(i=0; i<nField; i++){
        const char *zE = strchr(zF, ',');
        double v;
        if( zE==0 ) zE = zF + strlen(zF);
        if( !csvNumber(zF, zE, &v) ){ bHeader = 1; break; }
        zF = zE+1;
      }
      if( bHeader ) continue;
    }
    break;
  }
  if( (e = textSetDim(p, nField))!=CLI_OK ) return e;
  if( (e = readerBlob(p, nField))!=CLI_OK ) return e;
  z = p->zLine;
  for(i=0; i<nField; i++){
    const char *zE = strchr(z, ',');
    double v;
    if( zE==0 ) zE = z + strlen(z);
    if( !csvNumber(z, zE, &v) ){
      return readerFail(p, "field %d is not a decimal number: '%.*s'", i+1,
                        (int)(zE-z > 40 ? 40 : zE-z), z);
    }
    if( (e = readerPutFloat(p, i, v))!=CLI_OK ) return e;
    z = zE+1;
  }
  p->iRowid = p->iRecord+1;
  return CLI_OK;
}

/* JSON lines: SQLite's JSON functions take the line apart and vec_f32
** parses the vector (strict RFC 8259, finite float32 values). */
static int jsonlNext(CliReader *p){
  int rc, e;
  const char *zType;
  rc = textLine(p);
  if( rc!=CLI_OK ) return rc;
  sqlite3_reset(p->pJson);
  sqlite3_bind_text(p->pJson, 1, p->zLine, -1, SQLITE_STATIC);
  rc = sqlite3_step(p->pJson);
  if( rc!=SQLITE_ROW ){
    return readerFail(p, "%s", sqlite3_errmsg(p->db));
  }
  zType = (const char*)sqlite3_column_text(p->pJson, 0);
  if( zType==0 || (strcmp(zType, "array")!=0 && strcmp(zType, "object")!=0) ){
    return readerFail(p, "expected a JSON array or object, got %s", zType ? zType : "nothing");
  }
  if( sqlite3_column_type(p->pJson, 1)==SQLITE_NULL ){
    return readerFail(p, "the object has no \"%s\" field", p->zColumn);
  }
  p->bHasId = 0;
  if( sqlite3_column_type(p->pJson, 2)!=SQLITE_NULL ){
    const char *zIdType = (const char*)sqlite3_column_text(p->pJson, 2);
    if( strcmp(zIdType, "integer")!=0 ){
      return readerFail(p, "\"id\" must be an integer, got %s", zIdType);
    }
    p->iRowid = sqlite3_column_int64(p->pJson, 3);
    p->bHasId = 1;
  }else{
    p->iRowid = p->iRecord+1;
  }
  if( (e = textSetDim(p, sqlite3_column_bytes(p->pJson, 1)/4))!=CLI_OK ) return e;
  if( (e = readerBlob(p, p->nDim))!=CLI_OK ) return e;
  memcpy(p->aBlob, sqlite3_column_blob(p->pJson, 1), p->nBlob);
  return CLI_OK;
}

/* ---- reader dispatch -------------------------------------------------------------- */

static const char *cliExtension(const char *zPath){
  const char *z = strrchr(zPath, '.');
  return z ? z+1 : "";
}

static int readerOpen(CliReader *p, const char *zPath, sqlite3 *db, const char *zColumn){
  const char *zExt = cliExtension(zPath);
  struct stat st;
  memset(p, 0, sizeof(*p));
  p->zPath = zPath;
  p->db = db;
  p->zColumn = zColumn;
  p->nTotal = -1;
  if( strcmp(zExt, "npy")==0 ) p->eFmt = FMT_NPY;
  else if( strcmp(zExt, "fvecs")==0 ) p->eFmt = FMT_FVECS;
  else if( strcmp(zExt, "jsonl")==0 || strcmp(zExt, "ndjson")==0 ) p->eFmt = FMT_JSONL;
  else if( strcmp(zExt, "csv")==0 ) p->eFmt = FMT_CSV;
  else{
    snprintf(p->zErr, sizeof(p->zErr), "%s: unknown file type '.%s' (.npy, .fvecs, .jsonl, .csv)",
             zPath, zExt);
    return CLI_EINPUT;
  }
  p->in = fopen(zPath, "rb");
  if( p->in==0 || fstat(fileno(p->in), &st)!=0 ){
    snprintf(p->zErr, sizeof(p->zErr), "cannot open %s: %s", zPath, strerror(errno));
    return CLI_EINPUT;
  }
  if( !S_ISREG(st.st_mode) ){
    snprintf(p->zErr, sizeof(p->zErr), "%s is not a regular file", zPath);
    return CLI_EINPUT;
  }
  p->nFileBytes = st.st_size;
  if( p->eFmt==FMT_NPY ) return npyOpen(p);
  if( p->eFmt==FMT_JSONL ){
    char *zSql = sqlite3_mprintf(
      "SELECT json_type(?1),"
      "       vec_f32(CASE json_type(?1) WHEN 'array' THEN ?1"
      "                                 WHEN 'object' THEN json_extract(?1, '$.\"%w\"') END),"
      "       json_type(?1, '$.id'), json_extract(?1, '$.id')", zColumn);
    int rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &p->pJson, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if( rc!=SQLITE_OK ){
      snprintf(p->zErr, sizeof(p->zErr), "%s", sqlite3_errmsg(db));
      return CLI_EDB;
    }
  }
  return CLI_OK;
}

/* The next record into p->aBlob / p->iRowid: CLI_OK, -1 at the end, or
** CLI_EINPUT with p->zErr set. */
static int readerNext(CliReader *p){
  int rc;
  switch( p->eFmt ){
    case FMT_NPY:   rc = npyNext(p); break;
    case FMT_FVECS: rc = fvecsNext(p); break;
    case FMT_CSV:   rc = csvNext(p); break;
    default:        rc = jsonlNext(p); break;
  }
  if( rc==CLI_OK ) p->iRecord++;
  return rc;
}

static void readerClose(CliReader *p){
  if( p->in ) fclose(p->in);
  sqlite3_finalize(p->pJson);
  free(p->zLine);
  free(p->aBlob);
}

/* ---- progress ---------------------------------------------------------------------- */

typedef struct CliProgress {
  int bQuiet, bTty;
  double tStart, tLast, rInterval;
  long long nStart;             /* rows already in the table */
  long long iOffsetStart;       /* the file offset where this run started */
} CliProgress;

static double cliNow(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec*1e-9;
}

static void cliFormatEta(double s, char *z, int n){
  if( s<0 || !isfinite(s) ) snprintf(z, n, "?");
  else if( s<3600 ) snprintf(z, n, "%d:%02d", (int)s/60, (int)s%60);
  else snprintf(z, n, "%d:%02d:%02d", (int)s/3600, ((int)s/60)%60, (int)s%60);
}

/* Redraw the bar (terminal) or print a line (otherwise), at most every
** rInterval seconds unless bFinal. nRows counts the file's records done. */
static void cliProgress(CliProgress *pg, CliReader *r, long long nRows, int bFinal){
  double t = cliNow(), el = t - pg->tStart, rate, frac;
  char zEta[32], zLine[200];
  long long nNew = nRows - pg->nStart;
  if( pg->bQuiet ) return;
  if( !bFinal && t - pg->tLast < pg->rInterval ) return;
  pg->tLast = t;
  rate = el>0 ? nNew/el : 0;
  if( r->nTotal>0 ){
    frac = (double)nRows / r->nTotal;
    cliFormatEta(rate>0 ? (r->nTotal - nRows)/rate : -1, zEta, sizeof(zEta));
  }else{
    /* Text formats: the share of the file's bytes read, and its pace. */
    double byteRate = el>0 ? (r->iOffset - pg->iOffsetStart)/el : 0;
    frac = r->nFileBytes>0 ? (double)r->iOffset / r->nFileBytes : 1.0;
    cliFormatEta(byteRate>0 ? (r->nFileBytes - r->iOffset)/byteRate : -1, zEta, sizeof(zEta));
  }
  if( r->nTotal>0 ){
    snprintf(zLine, sizeof(zLine), "%lld / %lld rows (%.1f%%), %.0f rows/s, ETA %s",
             nRows, r->nTotal, 100.0*frac, rate, zEta);
  }else{
    snprintf(zLine, sizeof(zLine), "%lld rows (%.1f%% of the file), %.0f rows/s, ETA %s",
             nRows, 100.0*frac, rate, zEta);
  }
  if( pg->bTty ){
    int nBar = 24, nFill = (int)(frac*nBar + 0.5), i;
    char zBar[32];
    for(i=0; i<nBar; i++) zBar[i] = i<nFill ? '#' : '-';
    zBar[nBar] = 0;
    fprintf(stderr, "\r\033[K[%s] %s%s", zBar, zLine, bFinal ? "\n" : "");
  }else if( !bFinal ){
    fprintf(stderr, "progress: %s\n", zLine);
  }
  fflush(stderr);
}

/* ---- import ----------------------------------------------------------------------- */

static volatile sig_atomic_t cliSignal = 0;
static void cliOnSignal(int sig){ cliSignal = sig; }

static int cliTableExists(sqlite3 *db, const char *zTable, int *pbExists){
  sqlite3_stmt *pStmt;
  int rc = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type='table' AND name=?1",
                              -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, zTable, -1, SQLITE_STATIC);
    *pbExists = sqlite3_step(pStmt)==SQLITE_ROW;
    rc = sqlite3_finalize(pStmt);
  }
  return rc;
}

/* The stored vector of ROWID, compared with the reader's current record:
** 1 same, 2 different, 0 no such row, <0 an SQLite error. */
static int cliSameRow(sqlite3_stmt *pGet, sqlite3_int64 iRowid, const unsigned char *a, int n){
  int rc, bSame = 0;
  sqlite3_reset(pGet);
  sqlite3_bind_int64(pGet, 1, iRowid);
  rc = sqlite3_step(pGet);
  if( rc==SQLITE_ROW ){
    bSame = sqlite3_column_bytes(pGet, 0)==n && memcmp(sqlite3_column_blob(pGet, 0), a, n)==0 ? 1 : 2;
  }else if( rc!=SQLITE_DONE ){
    return -1;
  }
  sqlite3_reset(pGet);
  return bSame;
}

/* Resume: the table holds nHave rows. They must be the file's first nHave
** records: the first and the last of them are compared with the stored
** vectors (the caller checks that the next record's rowid is free). The
** reader is left positioned after record nHave. */
static int cliSkipImported(sqlite3 *db, CliReader *r, sqlite3_stmt *pGet, const char *zTable,
                           long long nHave){
  int rc, s;
  while( r->iRecord < nHave ){
    rc = readerNext(r);
    if( rc<0 ){
      cliError("table %s already holds %lld rows, more than the %lld records of %s;"
               " it was not filled from this file", zTable, nHave, r->iRecord, r->zPath);
      return CLI_EINPUT;
    }
    if( rc!=CLI_OK ){ cliError("%s", r->zErr); return rc; }
    if( r->iRecord==1 || r->iRecord==nHave ){
      s = cliSameRow(pGet, r->iRowid, r->aBlob, r->nBlob);
      if( s<0 ) return cliSqlError(db, zTable);
      if( s!=1 ){
        cliError("table %s holds %lld rows but its row %lld is not record %lld of %s;"
                 " it was not filled from this file (or not in this order)",
                 zTable, nHave, (long long)r->iRowid, r->iRecord, r->zPath);
        return CLI_EINPUT;
      }
    }
  }
  return CLI_OK;
}

static void cliImportHelp(FILE *out){
  fputs(
"usage: vectordb import DATABASE TABLE FILE [options]\n"
"\n"
"Load the vectors of FILE into the vectordb table TABLE of DATABASE, one row per\n"
"record with rowid = the record's position in the file (1, 2, ...). FILE is\n"
"  .npy    a 2-D array (rows, dims) in C order: float32, float64, uint8 (to float32),\n"
"          int8 (to an int8 column)\n"
"  .fvecs  records of a little-endian int32 d followed by d float32\n"
"  .jsonl  one JSON array per line, or an object with the vector under \"embedding\"\n"
"          (or --column's name) and an optional integer \"id\" used as the rowid\n"
"  .csv    one vector per line, comma-separated decimal numbers; a first line\n"
"          with any field that is not a number is a header and is skipped\n"
"\n"
"The database and the table are created when missing. Rows are committed in\n"
"batches; running the same command again after an interruption or an error\n"
"continues after the last committed row, without duplicates.\n"
"\n"
"options:\n"
"  --column NAME         the vector column (default: the table's first one; \"embedding\"\n"
"                        for a new table)\n"
"  --create DECLARATION  the column list of a new table, e.g.\n"
"                        'embedding float[128] INDEXED BY hnsw(), label integer'\n"
"                        (default: COLUMN float[D], or int8[D] for an int8 .npy)\n"
"  --batch N             rows per transaction (default 10000)\n"
"  --progress-interval S seconds between progress reports (default 1; 0: every batch)\n"
"  --quiet               no progress and no summary\n"
"\n"
"exit status: 0 done, 1 bad usage or input (batches before the bad record stay\n"
"committed), 2 database problem, 130 interrupted by SIGINT (143 by SIGTERM) after\n"
"committing the rows read so far\n", out);
}

static int cliImport(int argc, char **argv){
  const char *zDb = 0, *zTable = 0, *zFile = 0, *zColumn = 0, *zCreate = 0;
  long long nBatch = CLI_DEFAULT_BATCH, nHave = 0;
  double rInterval = 1.0;
  int bQuiet = 0, i, nPos = 0, e = CLI_OK, rc, bExists = 0, bInTxn = 0;
  sqlite3 *db = 0;
  sqlite3_stmt *pIns = 0, *pGet = 0, *pCount = 0;
  CliReader r;
  CliProgress pg;
  char *zCol = 0, *zSql = 0;
  long long nInBatch = 0;
  struct sigaction sa;

  memset(&r, 0, sizeof(r));
  for(i=0; i<argc; i++){
    const char *z = argv[i];
    long long v;
    if( strcmp(z, "--help")==0 || strcmp(z, "-h")==0 ){ cliImportHelp(stdout); return CLI_OK; }
    if( strcmp(z, "--quiet")==0 || strcmp(z, "-q")==0 ){ bQuiet = 1; continue; }
    if( (strcmp(z, "--column")==0 || strcmp(z, "--create")==0 || strcmp(z, "--batch")==0
         || strcmp(z, "--progress-interval")==0) ){
      if( i+1>=argc ){ cliError("import: %s needs a value", z); return CLI_EINPUT; }
      if( strcmp(z, "--column")==0 ) zColumn = argv[++i];
      else if( strcmp(z, "--create")==0 ) zCreate = argv[++i];
      else if( strcmp(z, "--batch")==0 ){
        if( cliParseInt("--batch", argv[++i], 1, 100000000, &nBatch) ) return CLI_EINPUT;
      }else{
        if( cliParseInt("--progress-interval", argv[++i], 0, 86400, &v) ) return CLI_EINPUT;
        rInterval = (double)v;
      }
      continue;
    }
    if( z[0]=='-' && z[1]=='-' ){ cliError("import: unknown option %s (see vectordb import --help)", z); return CLI_EINPUT; }
    if( nPos==0 ) zDb = z; else if( nPos==1 ) zTable = z; else if( nPos==2 ) zFile = z;
    nPos++;
  }
  if( nPos!=3 ){
    cliError("import: expected DATABASE TABLE FILE, got %d argument%s (see vectordb import --help)",
             nPos, nPos==1 ? "" : "s");
    return CLI_EINPUT;
  }

  if( (e = cliOpen(zDb, 1, &db))!=CLI_OK ) goto done;
  if( (e = readerOpen(&r, zFile, db, zColumn ? zColumn : "embedding"))!=CLI_OK ){
    cliError("%s", r.zErr);
    goto done;
  }

  /* The table: created from the file's first record when missing. */
  rc = cliTableExists(db, zTable, &bExists);
  if( rc!=SQLITE_OK ){ e = cliSqlError(db, zDb); goto done; }
  if( !bExists ){
    if( r.nDim==0 && r.nTotal!=0 ){
      /* Text and .fvecs: the first record gives the dimension. */
      int rr = readerNext(&r);
      if( rr>0 ){ cliError("%s", r.zErr); e = rr; goto done; }
      fseek(r.in, 0, SEEK_SET);
      r.iOffset = 0; r.iRecord = 0; r.iLine = 0;
    }
    if( r.nDim==0 ){ cliError("%s holds no vectors; nothing to create %s from", zFile, zTable); e = CLI_EINPUT; goto done; }
    if( zCreate ){
      zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE \"%w\" USING vectordb(%s)", zTable, zCreate);
    }else{
      zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE \"%w\" USING vectordb(\"%w\" %s[%d])", zTable,
                             zColumn ? zColumn : "embedding", r.bInt8 ? "int8" : "float", r.nDim);
    }
    rc = zSql ? sqlite3_exec(db, zSql, 0, 0, 0) : SQLITE_NOMEM;
    if( rc!=SQLITE_OK ){ e = cliSqlError(db, "cannot create the table"); goto done; }
  }
  if( (e = cliPickColumn(db, zTable, zColumn, &zCol))!=CLI_OK ) goto done;

  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("INSERT INTO \"%w\"(rowid, \"%w\") VALUES (?1, ?2)", zTable, zCol);
  rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pIns, 0) : SQLITE_NOMEM;
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" WHERE rowid = ?1", zCol, zTable);
  if( rc==SQLITE_OK ) rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pGet, 0) : SQLITE_NOMEM;
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "SELECT value FROM vectordb_stats(?1) WHERE key = 'rows'", -1, &pCount, 0);
  }
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pCount, 1, zTable, -1, SQLITE_STATIC);
    if( sqlite3_step(pCount)==SQLITE_ROW ) nHave = sqlite3_column_int64(pCount, 0);
    rc = sqlite3_reset(pCount);
  }
  if( rc!=SQLITE_OK ){ e = cliSqlError(db, zTable); goto done; }
  if( nHave>0 && (e = cliSkipImported(db, &r, pGet, zTable, nHave))!=CLI_OK ) goto done;

  memset(&pg, 0, sizeof(pg));
  pg.bQuiet = bQuiet;
  pg.bTty = isatty(2);
  pg.rInterval = pg.bTty && rInterval>0.2 ? 0.2 : rInterval;
  pg.tStart = pg.tLast = cliNow();
  pg.nStart = nHave;
  pg.iOffsetStart = r.iOffset;

  /* SIGINT / SIGTERM: finish the record being read, commit, exit. The
  ** handler is one-shot, so a second signal kills at once (the open batch
  ** is then rolled back by SQLite's journal). */
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = cliOnSignal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, 0);
  sigaction(SIGTERM, &sa, 0);

  for(;;){
    int rr;
    if( cliSignal ) break;
    rr = readerNext(&r);
    if( rr<0 ) break;
    if( rr!=CLI_OK ){ cliError("%s", r.zErr); e = rr; break; }
    if( nHave>0 && r.iRecord==nHave+1 ){
      /* Resuming: the first new record's rowid must be free, or the
      ** table's rows are not a prefix of the file. */
      int s = cliSameRow(pGet, r.iRowid, r.aBlob, r.nBlob);
      if( s<0 ){ e = cliSqlError(db, zTable); break; }
      if( s!=0 ){
        cliError("table %s holds %lld rows, but row %lld, record %lld of %s, is there too;"
                 " it was not filled from this file", zTable, nHave, (long long)r.iRowid,
                 r.iRecord, zFile);
        e = CLI_EINPUT;
        break;
      }
    }
    if( !bInTxn ){
      rc = sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0);
      if( rc!=SQLITE_OK ){ e = cliSqlError(db, zDb); break; }
      bInTxn = 1;
    }
    sqlite3_bind_int64(pIns, 1, r.iRowid);
    sqlite3_bind_blob(pIns, 2, r.aBlob, r.nBlob, SQLITE_STATIC);
    rc = sqlite3_step(pIns);
    sqlite3_reset(pIns);
    if( rc!=SQLITE_DONE ){
      char zWhere[64];
      if( r.eFmt==FMT_JSONL || r.eFmt==FMT_CSV ) snprintf(zWhere, sizeof(zWhere), "line %lld", r.iLine);
      else snprintf(zWhere, sizeof(zWhere), "record %lld", r.iRecord);
      cliError("%s %s (rowid %lld): %s", zFile, zWhere, (long long)r.iRowid, sqlite3_errmsg(db));
      e = cliDbExit(sqlite3_extended_errcode(db));
      break;
    }
    /* A terminal's bar moves within a batch too (rows inserted so far);
    ** plain lines report committed batches only. */
    if( pg.bTty ) cliProgress(&pg, &r, r.iRecord, 0);
    if( ++nInBatch>=nBatch ){
      rc = sqlite3_exec(db, "COMMIT", 0, 0, 0);
      if( rc!=SQLITE_OK ){ e = cliSqlError(db, "commit"); break; }
      bInTxn = 0; nInBatch = 0;
      if( !pg.bTty ) cliProgress(&pg, &r, r.iRecord, 0);
    }
  }
  if( bInTxn ){
    /* A bad record rolls back its batch; the end of the file or a signal
    ** commits it. */
    if( e==CLI_OK ){
      rc = sqlite3_exec(db, "COMMIT", 0, 0, 0);
      if( rc!=SQLITE_OK ) e = cliSqlError(db, "commit");
      else nInBatch = 0;
    }else{
      sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
    }
  }
  if( e==CLI_OK ){
    long long nDone = r.iRecord;
    double el = cliNow() - pg.tStart;
    cliProgress(&pg, &r, nDone, 1);
    if( cliSignal ){
      cliError("interrupted by signal %d: %lld rows committed (%lld in this run);"
               " run the same command again to continue", (int)cliSignal, nDone, nDone - nHave);
      e = 128 + cliSignal;
    }else if( !bQuiet ){
      fprintf(stderr, "imported %lld rows into %s (%lld were already there) in %.1f s, %.0f rows/s\n",
              nDone - nHave, zTable, nHave, el, el>0 ? (nDone - nHave)/el : 0.0);
    }
  }else if( pg.bTty && !bQuiet ){
    fputc('\n', stderr);
  }

done:
  sqlite3_free(zSql);
  sqlite3_finalize(pIns);
  sqlite3_finalize(pGet);
  sqlite3_finalize(pCount);
  readerClose(&r);
  free(zCol);
  if( db && sqlite3_close(db)!=SQLITE_OK && e==CLI_OK ) e = CLI_EDB;
  return e;
}

/* ---- stats, check, query ---------------------------------------------------------- */

/* Run a one-column query that builds JSON text and print it. */
static int cliPrintJson(sqlite3 *db, sqlite3_stmt *pStmt, const char *zWhat){
  int rc = sqlite3_step(pStmt);
  if( rc==SQLITE_ROW ){
    printf("%s\n", (const char*)sqlite3_column_text(pStmt, 0));
    rc = sqlite3_step(pStmt);
  }
  if( rc!=SQLITE_DONE ) return cliSqlError(db, zWhat);
  return CLI_OK;
}

static int cliStats(int argc, char **argv){
  const char *azPos[2];
  int nPos = 0, bJson = 0, i, e, rc;
  sqlite3 *db = 0;
  sqlite3_stmt *pStmt = 0;
  for(i=0; i<argc; i++){
    if( strcmp(argv[i], "--help")==0 || strcmp(argv[i], "-h")==0 ){
      printf("usage: vectordb stats DATABASE TABLE [--json]\n\n"
             "Print vectordb_stats('TABLE'): one line per figure (column, key, value), the\n"
             "column empty for the table's own; --json prints an array of objects.\n"
             "Cache figures are this new connection's, so mostly 0.\n"
             "exit status: 0 ok, 1 bad usage or unknown table, 2 database problem\n");
      return CLI_OK;
    }
    if( strcmp(argv[i], "--json")==0 ){ bJson = 1; continue; }
    if( argv[i][0]=='-' && argv[i][1]=='-' ){ cliError("stats: unknown option %s", argv[i]); return CLI_EINPUT; }
    if( nPos<2 ) azPos[nPos] = argv[i];
    nPos++;
  }
  if( nPos!=2 ){ cliError("stats: expected DATABASE TABLE (see vectordb stats --help)"); return CLI_EINPUT; }
  if( (e = cliOpen(azPos[0], 0, &db))!=CLI_OK ) goto done;
  rc = sqlite3_prepare_v2(db, bJson
    ? "SELECT json_group_array(json_object('column', \"column\", 'key', key, 'value', value))"
      " FROM vectordb_stats(?1)"
    : "SELECT \"column\", key, value FROM vectordb_stats(?1)", -1, &pStmt, 0);
  if( rc!=SQLITE_OK ){ e = cliSqlError(db, azPos[1]); goto done; }
  sqlite3_bind_text(pStmt, 1, azPos[1], -1, SQLITE_STATIC);
  if( bJson ){
    e = cliPrintJson(db, pStmt, azPos[1]);
  }else{
    printf("%-16s %-16s %s\n", "column", "key", "value");
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
      const char *zCol = (const char*)sqlite3_column_text(pStmt, 0);
      printf("%-16s %-16s %s\n", zCol ? zCol : "", sqlite3_column_text(pStmt, 1),
             sqlite3_column_text(pStmt, 2));
    }
    e = rc==SQLITE_DONE ? CLI_OK : cliSqlError(db, azPos[1]);
  }
done:
  sqlite3_finalize(pStmt);
  sqlite3_close(db);
  return e;
}

static int cliCheck(int argc, char **argv){
  const char *azPos[2];
  int nPos = 0, i, e, rc;
  sqlite3 *db = 0;
  sqlite3_stmt *pStmt = 0;
  for(i=0; i<argc; i++){
    if( strcmp(argv[i], "--help")==0 || strcmp(argv[i], "-h")==0 ){
      printf("usage: vectordb check DATABASE TABLE\n\n"
             "Run vectordb_check('TABLE'), the table's integrity check (shadow tables and\n"
             "index), and print 'ok' or the first fault found.\n"
             "exit status: 0 ok, 1 bad usage or unknown table, 2 corrupt or cannot be read\n");
      return CLI_OK;
    }
    if( argv[i][0]=='-' && argv[i][1]=='-' ){ cliError("check: unknown option %s", argv[i]); return CLI_EINPUT; }
    if( nPos<2 ) azPos[nPos] = argv[i];
    nPos++;
  }
  if( nPos!=2 ){ cliError("check: expected DATABASE TABLE (see vectordb check --help)"); return CLI_EINPUT; }
  if( (e = cliOpen(azPos[0], 0, &db))!=CLI_OK ) goto done;
  /* vectordb_stats first: it names an unknown or non-vectordb table. */
  {
    char **azCol; int nCol;
    if( (e = cliVectorColumns(db, azPos[1], &azCol, &nCol))!=CLI_OK ) goto done;
    cliFreeColumns(azCol, nCol);
  }
  rc = sqlite3_prepare_v2(db, "SELECT vectordb_check(?1)", -1, &pStmt, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(pStmt, 1, azPos[1], -1, SQLITE_STATIC);
    rc = sqlite3_step(pStmt);
  }
  if( rc==SQLITE_ROW ){
    const char *zRes = (const char*)sqlite3_column_text(pStmt, 0);
    if( zRes && strcmp(zRes, "ok")==0 ){
      printf("ok\n");
      e = CLI_OK;
    }else{
      printf("corrupt: %s\n", zRes ? zRes : "(no message)");
      e = CLI_EDB;
    }
  }else{
    e = cliSqlError(db, azPos[1]);
  }
done:
  sqlite3_finalize(pStmt);
  sqlite3_close(db);
  return e;
}

static void cliQueryHelp(FILE *out){
  fputs(
"usage: vectordb query DATABASE TABLE (--vector JSON | --row ROWID) [options]\n"
"\n"
"The k nearest rows to a vector, through the column's index, printed as rowid and\n"
"distance.\n"
"  --vector JSON      the query vector, e.g. '[0.1, 0.2, 0.3]'\n"
"  --row ROWID        use the vector stored in row ROWID (that row is in the answer)\n"
"  --k N              how many rows (default 10, up to 16384)\n"
"  --column NAME      the vector column (default: the table's first one)\n"
"  --where FILTER     an SQL condition on the table's columns, applied inside the\n"
"                     search, e.g. \"genre = 'drama' AND year > 1990\"\n"
"  --json             print a JSON array of {\"rowid\":..., \"distance\":...}\n"
"exit status: 0 ok, 1 bad usage, vector, filter or unknown table/row,\n"
"2 database problem\n", out);
}

static int cliQuery(int argc, char **argv){
  const char *azPos[2], *zVector = 0, *zColumn = 0, *zWhere = 0;
  long long iRow = 0, nK = 10;
  int bRow = 0, bJson = 0, nPos = 0, i, e, rc;
  sqlite3 *db = 0;
  sqlite3_stmt *pStmt = 0;
  char *zCol = 0, *zSql = 0, *zKnn = 0;
  const char *zTail = 0;
  for(i=0; i<argc; i++){
    const char *z = argv[i];
    if( strcmp(z, "--help")==0 || strcmp(z, "-h")==0 ){ cliQueryHelp(stdout); return CLI_OK; }
    if( strcmp(z, "--json")==0 ){ bJson = 1; continue; }
    if( strcmp(z, "--vector")==0 || strcmp(z, "--row")==0 || strcmp(z, "--k")==0
     || strcmp(z, "--column")==0 || strcmp(z, "--where")==0 ){
      if( i+1>=argc ){ cliError("query: %s needs a value", z); return CLI_EINPUT; }
      if( strcmp(z, "--vector")==0 ) zVector = argv[++i];
      else if( strcmp(z, "--column")==0 ) zColumn = argv[++i];
      else if( strcmp(z, "--where")==0 ) zWhere = argv[++i];
      else if( strcmp(z, "--row")==0 ){
        if( cliParseInt("--row", argv[++i], LLONG_MIN, LLONG_MAX, &iRow) ) return CLI_EINPUT;
        bRow = 1;
      }else{
        if( cliParseInt("--k", argv[++i], 1, 16384, &nK) ) return CLI_EINPUT;
      }
      continue;
    }
    if( z[0]=='-' && z[1]=='-' ){ cliError("query: unknown option %s (see vectordb query --help)", z); return CLI_EINPUT; }
    if( nPos<2 ) azPos[nPos] = z;
    nPos++;
  }
  if( nPos!=2 ){ cliError("query: expected DATABASE TABLE (see vectordb query --help)"); return CLI_EINPUT; }
  if( (zVector==0)==(bRow==0) ){ cliError("query: give exactly one of --vector and --row"); return CLI_EINPUT; }
  if( (e = cliOpen(azPos[0], 0, &db))!=CLI_OK ) goto done;
  if( (e = cliPickColumn(db, azPos[1], zColumn, &zCol))!=CLI_OK ) goto done;

  if( bRow ){
    sqlite3_stmt *pGet;
    int bFound = 0;
    zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE rowid = ?1", azPos[1]);
    rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pGet, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql); zSql = 0;
    if( rc==SQLITE_OK ){
      sqlite3_bind_int64(pGet, 1, iRow);
      bFound = sqlite3_step(pGet)==SQLITE_ROW;
      rc = sqlite3_finalize(pGet);
    }
    if( rc!=SQLITE_OK ){ e = cliSqlError(db, azPos[1]); goto done; }
    if( !bFound ){ cliError("table %s has no row %lld", azPos[1], iRow); e = CLI_EINPUT; goto done; }
  }
  zSql = bRow ? sqlite3_mprintf("(SELECT \"%w\" FROM \"%w\" WHERE rowid = ?1)", zCol, azPos[1])
              : sqlite3_mprintf("?1");
  zKnn = zSql==0 ? 0 : sqlite3_mprintf(
    "SELECT rowid, distance FROM \"%w\" WHERE \"%w\" MATCH %s AND k = ?2%s%s%s",
    azPos[1], zCol, zSql, zWhere ? " AND (" : "", zWhere ? zWhere : "", zWhere ? "\n)" : "");
  sqlite3_free(zSql); zSql = 0;
  if( zKnn==0 ){ e = CLI_EDB; goto done; }
  zSql = bJson ? sqlite3_mprintf("SELECT json_group_array(json_object('rowid', rowid, 'distance', distance))"
                                 " FROM (%s)", zKnn)
               : sqlite3_mprintf("%s", zKnn);
  rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, &pStmt, &zTail) : SQLITE_NOMEM;
  if( rc!=SQLITE_OK ){
    e = cliSqlError(db, zWhere ? "query (check --where)" : "query");
    goto done;
  }
  while( zTail && (*zTail==' ' || *zTail=='\n' || *zTail=='\t' || *zTail==';') ) zTail++;
  if( (zTail && *zTail) || !sqlite3_stmt_readonly(pStmt) ){
    cliError("query: --where must be one condition, not a further statement");
    e = CLI_EINPUT;
    goto done;
  }
  if( bRow ) sqlite3_bind_int64(pStmt, 1, iRow);
  else sqlite3_bind_text(pStmt, 1, zVector, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, nK);
  if( bJson ){
    e = cliPrintJson(db, pStmt, "query");
  }else{
    /* The heading comes after the first step, which is where a bad
    ** vector or filter fails. */
    int nOut = 0;
    while( (rc = sqlite3_step(pStmt))==SQLITE_ROW ){
      if( nOut++==0 ) printf("%12s  %s\n", "rowid", "distance");
      printf("%12lld  %.9g\n", sqlite3_column_int64(pStmt, 0), sqlite3_column_double(pStmt, 1));
    }
    if( rc==SQLITE_DONE && nOut==0 ) printf("%12s  %s\n", "rowid", "distance");
    e = rc==SQLITE_DONE ? CLI_OK : cliSqlError(db, "query");
  }
done:
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  sqlite3_free(zKnn);
  free(zCol);
  sqlite3_close(db);
  return e;
}

/* ---- main ------------------------------------------------------------------------ */

static void cliUsage(FILE *out){
  fputs(
"usage: vectordb COMMAND [arguments]\n"
"\n"
"  import DATABASE TABLE FILE [options]   load .npy, .fvecs, .jsonl or .csv vectors\n"
"  stats  DATABASE TABLE [--json]         the table's figures (vectordb_stats)\n"
"  check  DATABASE TABLE                  the table's integrity check (vectordb_check)\n"
"  query  DATABASE TABLE (--vector JSON | --row ROWID) [--k N] [--where FILTER] [--json]\n"
"\n"
"vectordb COMMAND --help describes each; vectordb --version prints the version.\n"
"exit status: 0 ok, 1 bad usage or input, 2 database problem (cannot open,\n"
"corrupt, locked), 130 import interrupted by SIGINT (rows read so far committed)\n", out);
}

int main(int argc, char **argv){
  const char *zCmd;
  sqlite3_auto_extension((void(*)(void))sqlite3_vectordb_init);
  if( argc<2 ){ cliUsage(stderr); return CLI_EINPUT; }
  zCmd = argv[1];
  if( strcmp(zCmd, "--help")==0 || strcmp(zCmd, "-h")==0 || strcmp(zCmd, "help")==0 ){
    cliUsage(stdout);
    return CLI_OK;
  }
  if( strcmp(zCmd, "--version")==0 ){
    printf("vectordb %s (SQLite %s)\n", VECTORDB_CLI_VERSION, sqlite3_libversion());
    return CLI_OK;
  }
  if( strcmp(zCmd, "import")==0 ) return cliImport(argc-2, argv+2);
  if( strcmp(zCmd, "stats")==0 ) return cliStats(argc-2, argv+2);
  if( strcmp(zCmd, "check")==0 ) return cliCheck(argc-2, argv+2);
  if( strcmp(zCmd, "query")==0 ) return cliQuery(argc-2, argv+2);
  cliError("unknown command '%s' (import, stats, check, query; see vectordb --help)", zCmd);
  return CLI_EINPUT;
}
