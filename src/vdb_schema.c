/*
** Parser for the vectordb(...) declaration; see vdb_schema.h.
**
** Each module argument is tokenised on its own by a small lexer
** (identifiers, quoted identifiers, integers, punctuation) and matched
** against the few shapes an argument can take. The parser owns no SQLite
** state; errors come back as sqlite3_malloc'd messages.
*/
#include <ctype.h>
#include <stdarg.h>
#include <string.h>
#include "vdb_index.h"
#include "vdb_schema.h"

/* ---- lexer -------------------------------------------------------------- */

typedef enum VdbTokenType {
  VDB_TK_END = 0, VDB_TK_IDENT, VDB_TK_INT, VDB_TK_PUNCT, VDB_TK_PLUS, VDB_TK_BAD
} VdbTokenType;

typedef struct VdbToken {
  VdbTokenType eType;
  const char *z;           /* start in the argument text */
  int n;                   /* length */
  int quoted;              /* identifier was quoted: never a keyword */
} VdbToken;

typedef struct VdbLexer {
  const char *zArg;        /* the whole argument, for messages */
  const char *z;           /* cursor */
  VdbToken tk;             /* current token */
} VdbLexer;

/* Skip white space and SQL comments: SQLite hands over the text of each
** module argument verbatim, comments between its tokens included. */
static const char *vdbSkipSpace(const char *z){
  for(;;){
    while( *z && isspace((unsigned char)*z) ) z++;
    if( z[0]=='-' && z[1]=='-' ){
      while( *z && *z!='\n' ) z++;
    }else if( z[0]=='/' && z[1]=='*' ){
      const char *zEnd = strstr(z+2, "*/");
      z = zEnd ? zEnd+2 : z+strlen(z);
    }else{
      return z;
    }
  }
}

static void vdbLexNext(VdbLexer *p){
  const char *z = vdbSkipSpace(p->z);
  p->tk.z = z;
  p->tk.quoted = 0;
  if( *z==0 ){
    p->tk.eType = VDB_TK_END; p->tk.n = 0;
  }else if( isalpha((unsigned char)*z) || *z=='_' ){
    const char *zStart = z;
    while( isalnum((unsigned char)*z) || *z=='_' ) z++;
    p->tk.eType = VDB_TK_IDENT; p->tk.n = (int)(z - zStart);
  }else if( isdigit((unsigned char)*z) ){
    const char *zStart = z;
    while( isdigit((unsigned char)*z) ) z++;
    p->tk.eType = VDB_TK_INT; p->tk.n = (int)(z - zStart);
  }else if( *z=='"' || *z=='`' || *z=='[' ){
    /* A quoted identifier; '[' only where an identifier is expected, the
    ** vector dimension bracket is handled by the caller before lexing. */
    char cEnd = *z=='[' ? ']' : *z;
    const char *zStart = ++z;
    while( *z && !(*z==cEnd && z[1]!=cEnd) ){ if( *z==cEnd ) z++; z++; }
    if( *z!=cEnd ){ p->tk.eType = VDB_TK_BAD; p->tk.n = 1; p->z = z; return; }
    p->tk.eType = VDB_TK_IDENT; p->tk.z = zStart; p->tk.n = (int)(z - zStart);
    p->tk.quoted = 1;
    z++;
  }else if( *z=='+' ){
    p->tk.eType = VDB_TK_PLUS; p->tk.n = 1; z++;
  }else if( strchr("()=,]", *z) ){
    p->tk.eType = VDB_TK_PUNCT; p->tk.n = 1; z++;
  }else{
    p->tk.eType = VDB_TK_BAD; p->tk.n = 1; z++;
  }
  p->z = z;
}

static int vdbTokenIs(const VdbToken *t, const char *zKeyword){
  return t->eType==VDB_TK_IDENT && !t->quoted
      && (int)strlen(zKeyword)==t->n && sqlite3_strnicmp(t->z, zKeyword, t->n)==0;
}

static int vdbTokenPunct(const VdbToken *t, char c){
  return t->eType==VDB_TK_PUNCT && t->z[0]==c;
}

/* ---- errors and helpers ------------------------------------------------- */

static int vdbSchemaError(char **pzErr, const char *zArg, const char *zFmt, ...){
  va_list ap;
  char *zMsg;
  va_start(ap, zFmt);
  zMsg = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  sqlite3_free(*pzErr);
  *pzErr = zMsg ? sqlite3_mprintf("vectordb: %s in \"%s\"", zMsg, zArg) : 0;
  sqlite3_free(zMsg);
  return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

/* The identifier token as a new string, with doubled quotes undone. */
static char *vdbTokenName(const VdbToken *t){
  char *z = sqlite3_malloc(t->n + 1);
  int i, j = 0;
  if( z==0 ) return 0;
  for(i=0; i<t->n; i++){
    z[j++] = t->z[i];
    if( t->quoted && i+1<t->n && t->z[i+1]==t->z[i] && (t->z[i]=='"' || t->z[i]=='`' || t->z[i]==']') ) i++;
  }
  z[j] = 0;
  return z;
}

/* Parse a decimal integer token; -1 if it does not fit in an int. */
static int vdbTokenInt(const VdbToken *t){
  int v = 0, i;
  if( t->eType!=VDB_TK_INT || t->n>9 ) return -1;
  for(i=0; i<t->n; i++) v = v*10 + (t->z[i]-'0');
  return v;
}

const char *vdbMetricName(VdbMetric eMetric){
  switch( eMetric ){
    case VDB_METRIC_L2: return "l2";
    case VDB_METRIC_L1: return "l1";
    case VDB_METRIC_COSINE: return "cosine";
    case VDB_METRIC_DOT: return "dot";
    case VDB_METRIC_HAMMING: return "hamming";
  }
  return "unknown";
}

const char *vdbValueTypeName(VdbValueType eType){
  switch( eType ){
    case VDB_VAL_INTEGER: return "integer";
    case VDB_VAL_FLOAT: return "float";
    case VDB_VAL_TEXT: return "text";
    case VDB_VAL_BOOLEAN: return "boolean";
    case VDB_VAL_BLOB: return "blob";
    case VDB_VAL_ANY: return "any";
  }
  return "unknown";
}

/* Scalar type keywords; which ones a column kind accepts is checked by
** the caller. 0 if the token is no type keyword. */
static VdbValueType vdbScalarType(const VdbToken *t){
  if( vdbTokenIs(t, "integer") || vdbTokenIs(t, "int") || vdbTokenIs(t, "int64") ) return VDB_VAL_INTEGER;
  if( vdbTokenIs(t, "float") || vdbTokenIs(t, "double") || vdbTokenIs(t, "real") ) return VDB_VAL_FLOAT;
  if( vdbTokenIs(t, "text") ) return VDB_VAL_TEXT;
  if( vdbTokenIs(t, "boolean") || vdbTokenIs(t, "bool") ) return VDB_VAL_BOOLEAN;
  if( vdbTokenIs(t, "blob") ) return VDB_VAL_BLOB;
  return (VdbValueType)0;
}

/* Vector element type keywords: the token before '['. */
static VdbElemType vdbVectorType(const VdbToken *t){
  if( vdbTokenIs(t, "float") || vdbTokenIs(t, "f32") || vdbTokenIs(t, "float32") ) return VDB_ELEM_F32;
  if( vdbTokenIs(t, "int8") || vdbTokenIs(t, "i8") ) return VDB_ELEM_INT8;
  if( vdbTokenIs(t, "bit") ) return VDB_ELEM_BIT;
  return (VdbElemType)0;
}

/* ---- INDEXED BY ----------------------------------------------------------- */

/* The separator before item i of n in "a, b or c". */
static const char *vdbListSep(int i, int n){
  return i==0 ? "" : i==n-1 ? " or " : ", ";
}

/* How many parameters a declaration may give the kind. */
static int vdbDeclaredParams(const VdbIndexKind *pKind){
  int i, n = 0;
  for(i=0; i<pKind->nParam; i++) n += (pKind->aParam[i].flags & VDB_PARAM_DECLARED)!=0;
  return n;
}

/* An index of this kind with every parameter at its default. */
static void vdbIndexDefaults(VdbIndexDef *pIdx, const VdbIndexKind *pKind){
  int i;
  pIdx->pKind = pKind;
  for(i=0; i<pKind->nParam; i++) pIdx->aParam[i] = pKind->aParam[i].iDefault;
}

/* A named parameter value's position among the parameter's names; -1 for
** a token that is none of them. */
static int vdbNamedValue(const VdbIndexParam *pParam, const VdbToken *t){
  int i;
  for(i=0; pParam->azName[i]; i++){
    if( t->eType==VDB_TK_IDENT && vdbTokenIs(t, pParam->azName[i]) ) return i;
  }
  return -1;
}

/* "kind parameter NAME must be a, b or c", naming the allowed values. */
static int vdbNamedValueError(VdbLexer *p, const VdbIndexKind *pKind, const VdbIndexParam *pParam,
                              const VdbToken *pName, char **pzErr){
  sqlite3_str *s = sqlite3_str_new(0);
  char *zKnown;
  int i, rc;
  for(i=pParam->iMin; i<=pParam->iMax && pParam->azName[i]; i++){
    sqlite3_str_appendf(s, "%s%s", vdbListSep(i - pParam->iMin, pParam->iMax - pParam->iMin + 1),
                        pParam->azName[i]);
  }
  zKnown = sqlite3_str_finish(s);
  rc = vdbSchemaError(pzErr, p->zArg, "%s parameter %.*s must be %s", pKind->zName,
                      pName->n, pName->z, zKnown ? zKnown : "");
  sqlite3_free(zKnown);
  return rc;
}

/* After "INDEXED BY": kind(name=int, ...), a kind of the registry with
** the parameters its table declares. */
static int vdbParseIndex(VdbLexer *p, VdbColumnDef *pCol, char **pzErr){
  VdbIndexDef *pIdx = &pCol->index;
  const VdbIndexKind *pKind = p->tk.eType==VDB_TK_IDENT ? vdbIndexKindFind(p->tk.z, p->tk.n) : 0;
  int i;
  if( pKind==0 ){
    sqlite3_str *s = sqlite3_str_new(0);
    char *zKnown;
    int n = vdbIndexKindCount();
    for(i=0; i<n; i++){
      const VdbIndexKind *k = vdbIndexKindAt(i);
      sqlite3_str_appendf(s, "%s%s(%s)", vdbListSep(i, n), k->zName, vdbDeclaredParams(k) ? "..." : "");
    }
    zKnown = sqlite3_str_finish(s);
    i = vdbSchemaError(pzErr, p->zArg, "unknown index \"%.*s\" (expected %s)",
                       p->tk.n, p->tk.z, zKnown ? zKnown : "");
    sqlite3_free(zKnown);
    return i;
  }
  vdbLexNext(p);
  if( !vdbTokenPunct(&p->tk, '(') ){
    return vdbSchemaError(pzErr, p->zArg, "expected '(' after the index name");
  }
  vdbIndexDefaults(pIdx, pKind);
  vdbLexNext(p);
  while( !vdbTokenPunct(&p->tk, ')') ){
    VdbToken name = p->tk;
    const VdbIndexParam *pParam = 0;
    int value, iParam = -1;
    if( name.eType!=VDB_TK_IDENT ){
      return vdbSchemaError(pzErr, p->zArg, "expected an index parameter name or ')'");
    }
    for(i=0; pParam==0 && i<pKind->nParam; i++){
      if( (pKind->aParam[i].flags & VDB_PARAM_DECLARED) && vdbTokenIs(&name, pKind->aParam[i].zName) ){
        pParam = &pKind->aParam[i];
        iParam = i;
      }
    }
    if( pParam==0 ){
      sqlite3_str *s = sqlite3_str_new(0);
      char *zKnown;
      int n = vdbDeclaredParams(pKind), j = 0;
      for(i=0; i<pKind->nParam; i++){
        if( pKind->aParam[i].flags & VDB_PARAM_DECLARED ){
          sqlite3_str_appendf(s, "%s%s", vdbListSep(j++, n), pKind->aParam[i].zName);
        }
      }
      zKnown = sqlite3_str_finish(s);
      i = n==0 ? vdbSchemaError(pzErr, p->zArg, "%s() takes no parameters", pKind->zName)
               : vdbSchemaError(pzErr, p->zArg, "unknown %s parameter \"%.*s\" (expected %s)",
                                pKind->zName, name.n, name.z, zKnown ? zKnown : "");
      sqlite3_free(zKnown);
      return i;
    }
    vdbLexNext(p);
    if( !vdbTokenPunct(&p->tk, '=') ){
      return vdbSchemaError(pzErr, p->zArg, "expected '=' after %s parameter %.*s",
                            pKind->zName, name.n, name.z);
    }
    vdbLexNext(p);
    value = pParam->azName ? vdbNamedValue(pParam, &p->tk) : vdbTokenInt(&p->tk);
    if( value<pParam->iMin || value>pParam->iMax ){
      if( pParam->azName ) return vdbNamedValueError(p, pKind, pParam, &name, pzErr);
      return vdbSchemaError(pzErr, p->zArg, "%s parameter %.*s must be an integer from %d to %d",
                            pKind->zName, name.n, name.z, pParam->iMin, pParam->iMax);
    }
    pIdx->aParam[iParam] = value;
    vdbLexNext(p);
    if( vdbTokenPunct(&p->tk, ',') ) vdbLexNext(p);
    else if( !vdbTokenPunct(&p->tk, ')') ){
      return vdbSchemaError(pzErr, p->zArg, "expected ',' or ')' in the index parameters");
    }
  }
  vdbLexNext(p);
  return SQLITE_OK;
}

/* The column's index as declared (or the default kind): the kind checks
** it fits the column and gives its part of the layout signature. */
static int vdbFinishIndex(VdbLexer *p, VdbColumnDef *pCol, char **pzErr){
  VdbIndexDef *pIdx = &pCol->index;
  sqlite3_str *s;
  char *zWhy = 0;
  int rc = pIdx->pKind->xValidate ? pIdx->pKind->xValidate(pCol, &zWhy) : SQLITE_OK;
  if( rc!=SQLITE_OK ){
    rc = zWhy ? vdbSchemaError(pzErr, p->zArg, "%s", zWhy) : SQLITE_NOMEM;
    sqlite3_free(zWhy);
    return rc;
  }
  s = sqlite3_str_new(0);
  if( pIdx->pKind->xSignature ) pIdx->pKind->xSignature(pCol, s);
  rc = sqlite3_str_errcode(s);
  pIdx->zSignature = sqlite3_str_finish(s);
  if( pIdx->zSignature==0 ){
    /* An empty part: sqlite3_str_finish gives NULL for no text as well. */
    pIdx->zSignature = sqlite3_mprintf("%s", "");
  }
  return rc==SQLITE_OK && pIdx->zSignature ? SQLITE_OK : SQLITE_NOMEM;
}

/* ---- one argument ----------------------------------------------------------- */

/* "name float[N] [distance_metric=...] [INDEXED BY ...]"; the lexer is on
** the type keyword. */
static int vdbParseVectorColumn(VdbLexer *p, VdbColumnDef *pCol, char **pzErr){
  int nDim;
  pCol->eKind = VDB_COL_VECTOR;
  pCol->eElem = vdbVectorType(&p->tk);
  vdbIndexDefaults(&pCol->index, vdbIndexKindDefault());
  /* The lexer would read "[N]" as a quoted identifier; take it by hand. */
  p->z = vdbSkipSpace(p->tk.z + p->tk.n);
  if( *p->z!='[' ) return vdbSchemaError(pzErr, p->zArg, "expected '[' and a dimension count");
  p->z++;
  vdbLexNext(p);
  nDim = vdbTokenInt(&p->tk);
  if( nDim<1 || nDim>vdbMaxDims(pCol->eElem) ){
    return vdbSchemaError(pzErr, p->zArg, "the dimension count must be an integer from 1 to %d",
                          vdbMaxDims(pCol->eElem));
  }
  if( pCol->eElem==VDB_ELEM_BIT && nDim%8 ){
    return vdbSchemaError(pzErr, p->zArg, "bit vectors need a dimension count divisible by 8, not %d", nDim);
  }
  pCol->nDim = nDim;
  vdbLexNext(p);
  if( !vdbTokenPunct(&p->tk, ']') ) return vdbSchemaError(pzErr, p->zArg, "expected ']' after the dimension count");
  pCol->eMetric = pCol->eElem==VDB_ELEM_BIT ? VDB_METRIC_HAMMING : VDB_METRIC_L2;
  vdbLexNext(p);
  while( p->tk.eType!=VDB_TK_END ){
    if( vdbTokenIs(&p->tk, "distance_metric") ){
      vdbLexNext(p);
      if( !vdbTokenPunct(&p->tk, '=') ) return vdbSchemaError(pzErr, p->zArg, "expected '=' after distance_metric");
      vdbLexNext(p);
      if( vdbTokenIs(&p->tk, "l2") ) pCol->eMetric = VDB_METRIC_L2;
      else if( vdbTokenIs(&p->tk, "l1") ) pCol->eMetric = VDB_METRIC_L1;
      else if( vdbTokenIs(&p->tk, "cosine") ) pCol->eMetric = VDB_METRIC_COSINE;
      else if( vdbTokenIs(&p->tk, "dot") ) pCol->eMetric = VDB_METRIC_DOT;
      else if( vdbTokenIs(&p->tk, "hamming") ) pCol->eMetric = VDB_METRIC_HAMMING;
      else return vdbSchemaError(pzErr, p->zArg, "unknown distance_metric \"%.*s\" (expected l2, cosine, l1, dot or hamming)",
                                 p->tk.n, p->tk.z);
      if( (pCol->eMetric==VDB_METRIC_HAMMING)!=(pCol->eElem==VDB_ELEM_BIT) ){
        return vdbSchemaError(pzErr, p->zArg, pCol->eElem==VDB_ELEM_BIT
            ? "bit vectors use distance_metric=hamming only"
            : "distance_metric=hamming needs a bit[N] column");
      }
      vdbLexNext(p);
    }else if( vdbTokenIs(&p->tk, "indexed") ){
      int rc;
      vdbLexNext(p);
      if( !vdbTokenIs(&p->tk, "by") ) return vdbSchemaError(pzErr, p->zArg, "expected BY after INDEXED");
      vdbLexNext(p);
      rc = vdbParseIndex(p, pCol, pzErr);
      if( rc!=SQLITE_OK ) return rc;
    }else{
      return vdbSchemaError(pzErr, p->zArg, "unexpected \"%.*s\" (expected distance_metric= or INDEXED BY)",
                            p->tk.n, p->tk.z);
    }
  }
  return vdbFinishIndex(p, pCol, pzErr);
}

static int vdbNameTaken(const VdbTableDef *pDef, const char *zName){
  int i;
  if( sqlite3_stricmp(zName, "distance")==0 || sqlite3_stricmp(zName, "k")==0
   || sqlite3_stricmp(zName, "ef_search")==0 || sqlite3_stricmp(zName, "rowid")==0 ){
    return 1;
  }
  if( pDef->zPkName && sqlite3_stricmp(zName, pDef->zPkName)==0 ) return 1;
  for(i=0; i<pDef->nCol; i++){
    if( sqlite3_stricmp(zName, pDef->aCol[i].zName)==0 ) return 1;
  }
  return 0;
}

/* A table option "name=value"; the lexer is on the '='. */
static int vdbParseOption(VdbLexer *p, const VdbToken *pName, VdbTableDef *pDef, char **pzErr){
  vdbLexNext(p);
  if( vdbTokenIs(pName, "chunk_size") ){
    int v = vdbTokenInt(&p->tk);
    if( v<VDB_CHUNK_MIN_ROWS || v>VDB_CHUNK_MAX_ROWS || v%8 ){
      return vdbSchemaError(pzErr, p->zArg, "chunk_size must be a multiple of 8 from %d to %d",
                            VDB_CHUNK_MIN_ROWS, VDB_CHUNK_MAX_ROWS);
    }
    pDef->chunkSize = v;
    pDef->chunkSizeDeclared = 1;
  }else{
    return vdbSchemaError(pzErr, p->zArg, "unknown table option \"%.*s\"", pName->n, pName->z);
  }
  vdbLexNext(p);
  if( p->tk.eType!=VDB_TK_END ) return vdbSchemaError(pzErr, p->zArg, "unexpected text after the option value");
  return SQLITE_OK;
}

static int vdbParseArgument(const char *zArg, VdbTableDef *pDef, char **pzErr){
  VdbLexer lex;
  VdbToken name;
  VdbColumnDef col;
  int isAux = 0, rc = SQLITE_OK;

  memset(&lex, 0, sizeof(lex));
  memset(&col, 0, sizeof(col));
  lex.zArg = zArg;
  lex.z = zArg;
  vdbLexNext(&lex);
  if( lex.tk.eType==VDB_TK_PLUS ){ isAux = 1; vdbLexNext(&lex); }
  if( lex.tk.eType!=VDB_TK_IDENT ){
    return vdbSchemaError(pzErr, zArg, lex.tk.eType==VDB_TK_END ? "empty column definition"
                                                                 : "expected a column name");
  }
  name = lex.tk;
  vdbLexNext(&lex);
  if( !isAux && vdbTokenPunct(&lex.tk, '=') ){
    return vdbParseOption(&lex, &name, pDef, pzErr);
  }
  col.zName = vdbTokenName(&name);
  if( col.zName==0 ) return SQLITE_NOMEM;
  if( vdbNameTaken(pDef, col.zName) ){
    rc = vdbSchemaError(pzErr, zArg, "duplicate or reserved column name \"%s\"", col.zName);
    goto fail;
  }
  if( lex.tk.eType==VDB_TK_END ){
    if( isAux ){
      col.eKind = VDB_COL_AUX;
      col.eValType = VDB_VAL_ANY;
    }else{
      rc = vdbSchemaError(pzErr, zArg, "column \"%s\" needs a type", col.zName);
      goto fail;
    }
  }else if( !isAux && vdbVectorType(&lex.tk) && *vdbSkipSpace(lex.tk.z + lex.tk.n)=='[' ){
    rc = vdbParseVectorColumn(&lex, &col, pzErr);
    if( rc!=SQLITE_OK ) goto fail;
  }else{
    VdbToken typeTok = lex.tk;
    col.eValType = vdbScalarType(&typeTok);
    if( col.eValType==0 ){
      rc = vdbSchemaError(pzErr, zArg, "unknown column type \"%.*s\"", typeTok.n, typeTok.z);
      goto fail;
    }
    vdbLexNext(&lex);
    if( vdbTokenIs(&lex.tk, "primary") ){
      vdbLexNext(&lex);
      if( !vdbTokenIs(&lex.tk, "key") ){ rc = vdbSchemaError(pzErr, zArg, "expected KEY after PRIMARY"); goto fail; }
      vdbLexNext(&lex);
      if( isAux ){ rc = vdbSchemaError(pzErr, zArg, "an auxiliary column cannot be the primary key"); goto fail; }
      if( pDef->zPkName ){ rc = vdbSchemaError(pzErr, zArg, "a table has at most one primary key"); goto fail; }
      if( col.eValType!=VDB_VAL_INTEGER && col.eValType!=VDB_VAL_TEXT ){
        rc = vdbSchemaError(pzErr, zArg, "the primary key must be integer or text");
        goto fail;
      }
      if( lex.tk.eType!=VDB_TK_END ){ rc = vdbSchemaError(pzErr, zArg, "unexpected text after PRIMARY KEY"); goto fail; }
      pDef->zPkName = col.zName;
      pDef->pkIsText = col.eValType==VDB_VAL_TEXT;
      return SQLITE_OK;
    }
    if( vdbTokenIs(&lex.tk, "partition") ){
      vdbLexNext(&lex);
      if( !vdbTokenIs(&lex.tk, "key") ){ rc = vdbSchemaError(pzErr, zArg, "expected KEY after PARTITION"); goto fail; }
      vdbLexNext(&lex);
      if( isAux ){ rc = vdbSchemaError(pzErr, zArg, "an auxiliary column cannot be a partition key"); goto fail; }
      if( col.eValType!=VDB_VAL_INTEGER && col.eValType!=VDB_VAL_TEXT ){
        rc = vdbSchemaError(pzErr, zArg, "a partition key must be integer or text");
        goto fail;
      }
      col.eKind = VDB_COL_PARTITION;
    }else if( isAux ){
      col.eKind = VDB_COL_AUX;
    }else{
      if( col.eValType==VDB_VAL_BLOB ){
        rc = vdbSchemaError(pzErr, zArg, "metadata columns cannot be blob; use an auxiliary (+) column");
        goto fail;
      }
      col.eKind = VDB_COL_METADATA;
    }
    if( lex.tk.eType!=VDB_TK_END ){
      rc = vdbSchemaError(pzErr, zArg, "unexpected \"%.*s\" after the column type", lex.tk.n, lex.tk.z);
      goto fail;
    }
  }
  {
    VdbColumnDef *aNew = (VdbColumnDef*)sqlite3_realloc64(pDef->aCol, sizeof(VdbColumnDef)*(pDef->nCol+1));
    if( aNew==0 ){ rc = SQLITE_NOMEM; goto fail; }
    pDef->aCol = aNew;
    pDef->aCol[pDef->nCol++] = col;
  }
  return SQLITE_OK;
fail:
  sqlite3_free(col.zName);
  sqlite3_free(col.index.zSignature);
  return rc;
}

/* ---- whole declaration ------------------------------------------------------ */

int vdbSchemaCount(const VdbTableDef *pDef, VdbColumnKind eKind){
  int i, n = 0;
  for(i=0; i<pDef->nCol; i++) n += pDef->aCol[i].eKind==eKind;
  return n;
}

void vdbSchemaFree(VdbTableDef *pDef){
  int i;
  if( pDef==0 ) return;
  for(i=0; i<pDef->nCol; i++){
    sqlite3_free(pDef->aCol[i].zName);
    sqlite3_free(pDef->aCol[i].index.zSignature);
  }
  sqlite3_free(pDef->aCol);
  sqlite3_free(pDef->zPkName);
  sqlite3_free(pDef);
}

/* Rows per chunk when the declaration does not say: as many as keep the
** largest vector blob near VDB_CHUNK_TARGET_BYTES. Larger chunks make
** exact scans read bigger contiguous runs; smaller ones make each insert
** cheaper, because writing into a blob walks its overflow-page chain. */
int vdbSchemaChunkSizeFits(const VdbTableDef *pDef, sqlite3_int64 n){
  int i;
  if( n<VDB_CHUNK_MIN_ROWS || n>VDB_CHUNK_MAX_ROWS || n%8 ) return 0;
  for(i=0; i<pDef->nCol; i++){
    const VdbColumnDef *c = &pDef->aCol[i];
    if( c->eKind==VDB_COL_VECTOR && n*(sqlite3_int64)vdbVectorByteSize(c->eElem, c->nDim)>VDB_CHUNK_MAX_BYTES ){
      return 0;
    }
  }
  return 1;
}

static int vdbDefaultChunkSize(const VdbTableDef *pDef){
  size_t maxBytes = 0, target = VDB_CHUNK_TARGET_BYTES;
  int i, chunk = VDB_CHUNK_MAX_DEFAULT, minChunk = VDB_CHUNK_MIN_DEFAULT;
  for(i=0; i<pDef->nCol; i++){
    const VdbColumnDef *c = &pDef->aCol[i];
    if( c->eKind!=VDB_COL_VECTOR ) continue;
    if( vdbVectorByteSize(c->eElem, c->nDim)>maxBytes ) maxBytes = vdbVectorByteSize(c->eElem, c->nDim);
    if( c->index.pKind && c->index.pKind->nChunkTargetBytes>0
     && (size_t)c->index.pKind->nChunkTargetBytes<target ){
      target = (size_t)c->index.pKind->nChunkTargetBytes;
      minChunk = VDB_CHUNK_MIN_ROWS;
    }
  }
  while( chunk>minChunk && (size_t)chunk*maxBytes>target ) chunk /= 2;
  return chunk;
}

int vdbSchemaParse(int argc, const char *const *argv, VdbTableDef **ppDef, char **pzErr){
  VdbTableDef *pDef = (VdbTableDef*)sqlite3_malloc(sizeof(*pDef));
  int i, rc = SQLITE_OK;
  static const struct { VdbColumnKind eKind; int nMax; const char *zWhat; } aLimit[] = {
    { VDB_COL_VECTOR, VDB_MAX_VECTOR_COLUMNS, "vector" },
    { VDB_COL_PARTITION, VDB_MAX_PARTITION_COLUMNS, "partition key" },
    { VDB_COL_METADATA, VDB_MAX_METADATA_COLUMNS, "metadata" },
    { VDB_COL_AUX, VDB_MAX_AUX_COLUMNS, "auxiliary" },
  };
  *ppDef = 0;
  if( pDef==0 ) return SQLITE_NOMEM;
  memset(pDef, 0, sizeof(*pDef));
  for(i=0; rc==SQLITE_OK && i<argc; i++){
    rc = vdbParseArgument(argv[i], pDef, pzErr);
  }
  if( rc==SQLITE_OK && pDef->chunkSize==0 ) pDef->chunkSize = vdbDefaultChunkSize(pDef);
  for(i=0; rc==SQLITE_OK && i<pDef->nCol; i++){
    const VdbColumnDef *c = &pDef->aCol[i];
    sqlite3_int64 nChunk = (sqlite3_int64)pDef->chunkSize * (sqlite3_int64)vdbVectorByteSize(c->eElem, c->nDim);
    if( c->eKind==VDB_COL_VECTOR && nChunk>VDB_CHUNK_MAX_BYTES ){
      sqlite3_free(*pzErr);
      *pzErr = sqlite3_mprintf("vectordb: chunk_size=%d makes a chunk of column %s %lld bytes, "
                               "more than the maximum of %d; declare a smaller chunk_size",
                               pDef->chunkSize, c->zName, nChunk, VDB_CHUNK_MAX_BYTES);
      rc = SQLITE_ERROR;
    }
  }
  for(i=0; rc==SQLITE_OK && i<(int)(sizeof(aLimit)/sizeof(aLimit[0])); i++){
    int n = vdbSchemaCount(pDef, aLimit[i].eKind);
    if( n>aLimit[i].nMax ){
      sqlite3_free(*pzErr);
      *pzErr = sqlite3_mprintf("vectordb: %d %s columns declared; the maximum is %d",
                               n, aLimit[i].zWhat, aLimit[i].nMax);
      rc = SQLITE_ERROR;
    }
  }
  if( rc==SQLITE_OK && vdbSchemaCount(pDef, VDB_COL_VECTOR)==0 ){
    sqlite3_free(*pzErr);
    *pzErr = sqlite3_mprintf("vectordb: at least one vector column (such as embedding float[384]) is required");
    rc = SQLITE_ERROR;
  }
  if( rc!=SQLITE_OK ){
    vdbSchemaFree(pDef);
    return rc;
  }
  *ppDef = pDef;
  return SQLITE_OK;
}
