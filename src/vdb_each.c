/*
** vec_each(vector): one row per element, rowid = element index from 0,
** column "value" (REAL for float32, INTEGER for int8 and bit). Bits are
** visited LSB-first, the same order vec_quantize_binary and vec_to_json
** use (sqlite-vec 0.1.9 visits them MSB-first; see README).
*/
#include <string.h>
#include "vdb_func.h"
#include "vdb_vector.h"

#define VDB_EACH_COL_VALUE  0
#define VDB_EACH_COL_VECTOR 1

typedef struct VdbEachCursor {
  sqlite3_vtab_cursor base;
  VdbVector vec;           /* owns a private copy of the argument */
  int iRow;
} VdbEachCursor;

static int vdbEachConnect(sqlite3 *db, void *pAux, int argc, const char *const*argv,
                          sqlite3_vtab **ppVtab, char **pzErr){
  sqlite3_vtab *pVtab;
  int rc;
  (void)pAux; (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(value, vector HIDDEN)");
  if( rc!=SQLITE_OK ) return rc;
  pVtab = (sqlite3_vtab*)sqlite3_malloc(sizeof(*pVtab));
  if( pVtab==0 ) return SQLITE_NOMEM;
  memset(pVtab, 0, sizeof(*pVtab));
  *ppVtab = pVtab;
  return SQLITE_OK;
}

static int vdbEachDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static int vdbEachBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  int i;
  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *p = &pInfo->aConstraint[i];
    if( p->iColumn==VDB_EACH_COL_VECTOR && p->op==SQLITE_INDEX_CONSTRAINT_EQ ){
      if( !p->usable ) return SQLITE_CONSTRAINT;
      pInfo->aConstraintUsage[i].argvIndex = 1;
      pInfo->aConstraintUsage[i].omit = 1;
      pInfo->estimatedCost = 10;
      pInfo->estimatedRows = 100;
      pInfo->idxNum = 1;
      return SQLITE_OK;
    }
  }
  sqlite3_free(pVtab->zErrMsg);
  pVtab->zErrMsg = sqlite3_mprintf("vec_each: a vector argument is required, "
                                   "as in SELECT * FROM vec_each(?)");
  return pVtab->zErrMsg ? SQLITE_ERROR : SQLITE_NOMEM;
}

static int vdbEachOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  VdbEachCursor *pCur = (VdbEachCursor*)sqlite3_malloc(sizeof(*pCur));
  (void)pVtab;
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

static int vdbEachClose(sqlite3_vtab_cursor *cur){
  VdbEachCursor *pCur = (VdbEachCursor*)cur;
  vdbVectorClear(&pCur->vec);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

static int vdbEachFilter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr,
                         int argc, sqlite3_value **argv){
  VdbEachCursor *pCur = (VdbEachCursor*)cur;
  VdbVector v;
  char *zErr = 0;
  int rc;
  (void)idxNum; (void)idxStr;
  vdbVectorClear(&pCur->vec);
  pCur->iRow = 0;
  if( argc<1 || sqlite3_value_type(argv[0])==SQLITE_NULL ) return SQLITE_OK;
  rc = vdbVectorFromValue(argv[0], &v, &zErr);
  if( rc!=SQLITE_OK ){
    sqlite3_free(cur->pVtab->zErrMsg);
    cur->pVtab->zErrMsg = zErr ? sqlite3_mprintf("vec_each: %s", zErr) : 0;
    sqlite3_free(zErr);
    return rc;
  }
  /* The argument value does not outlive xFilter; keep our own copy. */
  if( v.pOwned==0 ){
    size_t n = vdbVectorByteSize(v.eType, v.nDim);
    v.pOwned = sqlite3_malloc64(n);
    if( v.pOwned==0 ) return SQLITE_NOMEM;
    memcpy(v.pOwned, v.pData, n);
    v.pData = v.pOwned;
  }
  pCur->vec = v;
  return SQLITE_OK;
}

static int vdbEachNext(sqlite3_vtab_cursor *cur){
  ((VdbEachCursor*)cur)->iRow++;
  return SQLITE_OK;
}

static int vdbEachEof(sqlite3_vtab_cursor *cur){
  VdbEachCursor *pCur = (VdbEachCursor*)cur;
  return pCur->iRow >= pCur->vec.nDim;
}

static int vdbEachColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int iCol){
  VdbEachCursor *pCur = (VdbEachCursor*)cur;
  if( iCol==VDB_EACH_COL_VALUE ){
    double v = vdbVectorElement(&pCur->vec, pCur->iRow);
    if( pCur->vec.eType==VDB_ELEM_F32 ) sqlite3_result_double(ctx, v);
    else sqlite3_result_int(ctx, (int)v);
  }else{
    sqlite3_result_blob(ctx, pCur->vec.pData,
        (int)vdbVectorByteSize(pCur->vec.eType, pCur->vec.nDim), SQLITE_TRANSIENT);
    sqlite3_result_subtype(ctx, (unsigned int)vdbElemTypeSubtype(pCur->vec.eType));
  }
  return SQLITE_OK;
}

static int vdbEachRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((VdbEachCursor*)cur)->iRow;
  return SQLITE_OK;
}

static const sqlite3_module vdbEachModule = {
  0,                      /* iVersion */
  0,                      /* xCreate: eponymous-only */
  vdbEachConnect,
  vdbEachBestIndex,
  vdbEachDisconnect,
  0,                      /* xDestroy */
  vdbEachOpen,
  vdbEachClose,
  vdbEachFilter,
  vdbEachNext,
  vdbEachEof,
  vdbEachColumn,
  vdbEachRowid,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

int vdbRegisterEach(sqlite3 *db){
  return sqlite3_create_module(db, "vec_each", &vdbEachModule, 0);
}
