/*
** Every translation unit includes SQLite through this header. In the
** loadable build the sqlite3_* names route through the API table that the
** entry point receives; with -DSQLITE_CORE they are direct calls.
*/
#ifndef VDB_SQLITE_H
#define VDB_SQLITE_H
#include <sqlite3ext.h>
#ifndef VDB_SQLITE_INIT1_HERE
SQLITE_EXTENSION_INIT3
#endif

/* Constants that newer headers define; the values are fixed by SQLite.
** Whether the running library honours them is checked at run time. */
#ifndef SQLITE_INNOCUOUS
# define SQLITE_INNOCUOUS 0x000200000
#endif
#ifndef SQLITE_SUBTYPE
# define SQLITE_SUBTYPE 0x000100000
#endif
#ifndef SQLITE_RESULT_SUBTYPE
# define SQLITE_RESULT_SUBTYPE 0x001000000
#endif
#ifndef SQLITE_DIRECTONLY
# define SQLITE_DIRECTONLY 0x000080000
#endif

#endif
