/*
** Importing vectors from files held in BLOBs: the vec_npy_each
** table-valued function (NumPy's .npy format).
*/
#ifndef VDB_IMPORT_H
#define VDB_IMPORT_H
#include "vdb_sqlite.h"

/* Register the eponymous table-valued function vec_npy_each. */
int vdbRegisterImport(sqlite3 *db);

#endif
