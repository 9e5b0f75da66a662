/*
** vectordb entry point.
**
** Loaded as an extension, SQLite calls sqlite3_vectordb_init (the name it
** derives from "vectordb.so"); linked statically (-DSQLITE_CORE), the
** application registers it with sqlite3_auto_extension. It is the only
** symbol the shared object exports.
*/
#define VDB_SQLITE_INIT1_HERE 1
#include "vdb_sqlite.h"
SQLITE_EXTENSION_INIT1
#include "vdb_func.h"
#include "vdb_import.h"
#include "vdb_kernels.h"
#include "vdb_vtab.h"

/* The oldest SQLite whose interfaces vectordb needs unconditionally
** (xShadowName arrived in 3.26.0); newer interfaces are used only after
** checking sqlite3_libversion_number(). */
#define VDB_MIN_SQLITE_VERSION 3026000

#if defined(_WIN32)
__declspec(dllexport)
#else
__attribute__((visibility("default")))
#endif
int sqlite3_vectordb_init(sqlite3 *db, char **pzErrMsg,
                          const sqlite3_api_routines *pApi){
  int rc;
  const VdbKernels *pKernels;
  SQLITE_EXTENSION_INIT2(pApi);
  if( sqlite3_libversion_number()<VDB_MIN_SQLITE_VERSION ){
    if( pzErrMsg ){
      *pzErrMsg = sqlite3_mprintf("vectordb needs SQLite 3.26.0 or later; "
                                  "this is %s", sqlite3_libversion());
    }
    return SQLITE_ERROR;
  }
  pKernels = vdbKernelsBest();
  rc = vdbRegisterFunctions(db, pKernels);
  if( rc==SQLITE_OK ) rc = vdbRegisterEach(db);
  if( rc==SQLITE_OK ) rc = vdbRegisterImport(db);
  if( rc==SQLITE_OK ) rc = vdbRegisterModule(db, pKernels);
  if( rc!=SQLITE_OK && pzErrMsg ){
    *pzErrMsg = sqlite3_mprintf("vectordb: registration failed: %s", sqlite3_errstr(rc));
  }
  return rc;
}
