/*
** The registry of index kinds; see vdb_index.h.
*/
#include <string.h>
#include "vdb_index.h"

extern const VdbIndexKind vdbIndexFlat;
extern const VdbIndexKind vdbIndexHnsw;

/* One line per kind, in the order error messages list them. */
static const VdbIndexKind *const vdbIndexKinds[] = {
  &vdbIndexHnsw,
  &vdbIndexFlat,
};

#define VDB_INDEX_KIND_COUNT ((int)(sizeof(vdbIndexKinds)/sizeof(vdbIndexKinds[0])))

int vdbIndexKindCount(void){
  return VDB_INDEX_KIND_COUNT;
}

const VdbIndexKind *vdbIndexKindAt(int i){
  return i>=0 && i<VDB_INDEX_KIND_COUNT ? vdbIndexKinds[i] : 0;
}

/* The kind of a vector column that declares no index: exact search. */
const VdbIndexKind *vdbIndexKindDefault(void){
  return &vdbIndexFlat;
}

/* Case-insensitive, nName bytes of zName (-1: up to its end). */
const VdbIndexKind *vdbIndexKindFind(const char *zName, int nName){
  int i;
  if( nName<0 ) nName = (int)strlen(zName);
  for(i=0; i<VDB_INDEX_KIND_COUNT; i++){
    const char *zKind = vdbIndexKinds[i]->zName;
    if( (int)strlen(zKind)==nName && sqlite3_strnicmp(zKind, zName, nName)==0 ) return vdbIndexKinds[i];
  }
  return 0;
}

int vdbIndexIsShadowName(const char *zSuffix){
  int i;
  for(i=0; i<VDB_INDEX_KIND_COUNT; i++){
    if( vdbIndexKinds[i]->xShadowName && vdbIndexKinds[i]->xShadowName(zSuffix) ) return 1;
  }
  return 0;
}

const VdbIndexParam *vdbIndexParamFind(const VdbIndexKind *pKind, const char *zName, int *piParam){
  int i;
  for(i=0; i<pKind->nParam; i++){
    if( sqlite3_stricmp(pKind->aParam[i].zName, zName)==0 ){
      if( piParam ) *piParam = i;
      return &pKind->aParam[i];
    }
  }
  if( piParam ) *piParam = -1;
  return 0;
}

int vdbIndexParamValue(const VdbIndexDef *pDef, const char *zName){
  int i;
  return vdbIndexParamFind(pDef->pKind, zName, &i) ? pDef->aParam[i] : -1;
}

const VdbIndexParam *vdbIndexStoredParam(const char *zName){
  int i;
  for(i=0; i<VDB_INDEX_KIND_COUNT; i++){
    const VdbIndexParam *pParam = vdbIndexParamFind(vdbIndexKinds[i], zName, 0);
    if( pParam && (pParam->flags & VDB_PARAM_STORED) ) return pParam;
  }
  return 0;
}
