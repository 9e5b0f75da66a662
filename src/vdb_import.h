/*
** Importing vectors from files held in BLOBs: the vec_npy_each
** (NumPy's .npy), vec_fvecs_each, vec_bvecs_each and vec_ivecs_each
** (texmex) table-valued functions.
*/
#ifndef VDB_IMPORT_H
#define VDB_IMPORT_H
#include "vdb_sqlite.h"

/* Register the eponymous table-valued functions. */
int vdbRegisterImport(sqlite3 *db);

#endif
