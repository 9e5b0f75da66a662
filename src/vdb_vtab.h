/*
** The vectordb virtual table module (vdb_vtab.c).
*/
#ifndef VDB_VTAB_H
#define VDB_VTAB_H
#include "vdb_sqlite.h"
#include "vdb_kernels.h"

/* Register module "vectordb" on db; tables compute distances with pKernels. */
int vdbRegisterModule(sqlite3 *db, const VdbKernels *pKernels);

#endif
