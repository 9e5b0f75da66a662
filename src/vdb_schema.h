/*
** The vectordb table declaration: sqlite-vec's vec0(...) grammar.
**
**   CREATE VIRTUAL TABLE items USING vectordb(
**     id integer primary key,             -- or: id text primary key
**     embedding float[768] distance_metric=cosine INDEXED BY hnsw(m=16),
**     user_id integer partition key,
**     genre text,                         -- metadata: filterable in KNN
**     +body text,                         -- auxiliary: stored, not filterable
**     chunk_size=1024                     -- table option
**   );
**
** Keywords match exactly and case-insensitively (sqlite-vec's prefix
** matching would take "float64[4]" for float32; we reject it). Every
** problem is reported with the offending argument.
*/
#ifndef VDB_SCHEMA_H
#define VDB_SCHEMA_H
#include "vdb_vector.h"

#define VDB_MAX_VECTOR_COLUMNS    16
#define VDB_MAX_PARTITION_COLUMNS 4
#define VDB_MAX_METADATA_COLUMNS  16
#define VDB_MAX_AUX_COLUMNS       16
#define VDB_MAX_COLUMNS (VDB_MAX_VECTOR_COLUMNS + VDB_MAX_PARTITION_COLUMNS \
                         + VDB_MAX_METADATA_COLUMNS + VDB_MAX_AUX_COLUMNS)

/* Default rows per storage chunk: from 1024 down to 64, halving while the
** largest vector column's chunk blob exceeds 1 MiB; for a table with a
** column whose index kind asks for smaller chunks (hnsw: 16 KiB), down to
** VDB_CHUNK_MIN_ROWS while a blob exceeds that. */
#define VDB_CHUNK_MAX_DEFAULT   1024
#define VDB_CHUNK_MIN_DEFAULT   64
#define VDB_CHUNK_TARGET_BYTES  (1024*1024)
/* chunk_size= bounds: validity bitmaps are whole bytes. */
#define VDB_CHUNK_MIN_ROWS      8
#define VDB_CHUNK_MAX_ROWS      65536
/* Largest vector blob a chunk may need (chunk_size x bytes per vector): an
** exact scan holds one in memory, and sizes stay far from int overflow. */
#define VDB_CHUNK_MAX_BYTES     (256*1024*1024)

typedef enum VdbColumnKind {
  VDB_COL_VECTOR = 1,
  VDB_COL_PARTITION,
  VDB_COL_METADATA,
  VDB_COL_AUX
} VdbColumnKind;

typedef enum VdbValueType {
  VDB_VAL_INTEGER = 1,
  VDB_VAL_FLOAT,
  VDB_VAL_TEXT,
  VDB_VAL_BOOLEAN,
  VDB_VAL_BLOB,
  VDB_VAL_ANY              /* auxiliary column declared without a type */
} VdbValueType;

/* How a vector column answers KNN queries: an index kind (vdb_index.h)
** and the values of its parameters, in the order of the kind's parameter
** table. */
#define VDB_MAX_INDEX_PARAMS 8
struct VdbIndexKind;
typedef struct VdbIndexDef {
  const struct VdbIndexKind *pKind;    /* flat when the declaration names none */
  int aParam[VDB_MAX_INDEX_PARAMS];
  char *zSignature;                    /* the kind's part of the layout signature */
} VdbIndexDef;

typedef struct VdbColumnDef {
  char *zName;
  VdbColumnKind eKind;
  VdbValueType eValType;   /* partition, metadata and aux columns */
  VdbElemType eElem;       /* vector columns */
  int nDim;
  VdbMetric eMetric;
  VdbIndexDef index;
} VdbColumnDef;

typedef struct VdbTableDef {
  char *zPkName;           /* declared primary key column, or NULL */
  int pkIsText;            /* text primary key (mapped to an internal rowid) */
  int chunkSize;           /* rows per storage chunk (chunk_size=) */
  int chunkSizeDeclared;   /* chunk_size= was given; else chunkSize is the default,
                           ** and an existing table's stored value wins (vdbVtabInit) */
  int nCol;
  VdbColumnDef *aCol;      /* in declaration order, primary key excluded */
} VdbTableDef;

/* Parse the module arguments (argv[0..argc-1] are the text between the
** parentheses, split on top-level commas, as SQLite passes them). */
int vdbSchemaParse(int argc, const char *const *argv, VdbTableDef **ppDef, char **pzErr);
void vdbSchemaFree(VdbTableDef *pDef);
/* Could a table of pDef's columns have chunks of n rows (chunk_size=
** bounds, and no column's chunk blob above VDB_CHUNK_MAX_BYTES)? */
int vdbSchemaChunkSizeFits(const VdbTableDef *pDef, sqlite3_int64 n);

/* Number of columns of the given kind. */
int vdbSchemaCount(const VdbTableDef *pDef, VdbColumnKind eKind);

const char *vdbMetricName(VdbMetric eMetric);
const char *vdbValueTypeName(VdbValueType eType);

#endif
