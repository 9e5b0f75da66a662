/*
** SQL function registration: the scalar vec_* functions and the vec_each
** table-valued function.
*/
#ifndef VDB_FUNC_H
#define VDB_FUNC_H
#include "vdb_sqlite.h"
#include "vdb_kernels.h"

#define VDB_VERSION "0.1.0"
#ifndef VDB_COMMIT
# define VDB_COMMIT "unknown"
#endif
#ifndef VDB_BUILD_FLAGS
# define VDB_BUILD_FLAGS "unknown"
#endif

/* Register the scalar functions on db, each bound to pKernels. */
int vdbRegisterFunctions(sqlite3 *db, const VdbKernels *pKernels);

/* Register the eponymous table-valued function vec_each. */
int vdbRegisterEach(sqlite3 *db);

#endif
