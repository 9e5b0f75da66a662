/*
** vectordb public header, for applications that link libvectordb.a.
**
**   #include "vectordb.h"
**   sqlite3_auto_extension((void(*)(void))sqlite3_vectordb_init);
**
** registers vectordb on every connection opened afterwards; or call
** sqlite3_vectordb_init(db, &zErr, 0) on one connection.
*/
#ifndef VECTORDB_H
#define VECTORDB_H
#include <sqlite3.h>
#ifdef __cplusplus
extern "C" {
#endif

int sqlite3_vectordb_init(sqlite3 *db, char **pzErrMsg,
                          const struct sqlite3_api_routines *pApi);

#ifdef __cplusplus
}
#endif
#endif
