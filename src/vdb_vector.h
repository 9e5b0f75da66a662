/*
** Vector types: float32, int8 and bit vectors as sqlite-vec defines them.
**
** On the SQL side a vector is a BLOB of packed little-endian elements
** (bits packed LSB-first: element i is bit i%8 of byte i/8) or JSON text
** such as "[1, 2.5, -3]". A BLOB's element type travels in its SQL
** subtype; an untagged BLOB is float32. Every input path rejects what the
** type cannot hold: malformed JSON, NaN and infinities, out-of-range int8
** values, empty vectors, lengths that do not fit the type, and more than
** VDB_MAX_DIMS elements.
*/
#ifndef VDB_VECTOR_H
#define VDB_VECTOR_H
#include <stddef.h>
#include <stdint.h>
#include "vdb_sqlite.h"
#include "vdb_kernels.h"

#define VDB_SUBTYPE_F32  223
#define VDB_SUBTYPE_BIT  224
#define VDB_SUBTYPE_INT8 225

#define VDB_MAX_DIMS     8192      /* float32 and int8 elements */
#define VDB_MAX_BITS     65536     /* bit vectors: 8192 bytes */
#define VDB_MAX_VECTOR_BYTES (VDB_MAX_DIMS*4)   /* the largest vector: float32 */

typedef enum VdbElemType {
  VDB_ELEM_F32 = 1,
  VDB_ELEM_INT8 = 2,
  VDB_ELEM_BIT = 3
} VdbElemType;

typedef enum VdbMetric {
  VDB_METRIC_L2 = 1,       /* Euclidean, sqrt of the squared sum */
  VDB_METRIC_L1,
  VDB_METRIC_COSINE,       /* 1 - cos; undefined (NULL) for a zero vector */
  VDB_METRIC_DOT,          /* negative inner product, like pgvector's <#> */
  VDB_METRIC_HAMMING       /* differing bits; bit vectors only */
} VdbMetric;

/* A decoded vector. pData points either into an sqlite3_value (valid only
** while that value is) or into pOwned. float32 data is always 4-byte
** aligned, so kernels and scalar code may index it as float. */
typedef struct VdbVector {
  VdbElemType eType;
  int nDim;                /* elements; bits for VDB_ELEM_BIT */
  const void *pData;
  void *pOwned;            /* sqlite3_malloc'd storage to free, or NULL */
} VdbVector;

const char *vdbElemTypeName(VdbElemType eType);
int vdbElemTypeSubtype(VdbElemType eType);
size_t vdbVectorByteSize(VdbElemType eType, int nDim);
int vdbMaxDims(VdbElemType eType);

/* Decode an SQL value. The element type comes from the BLOB subtype
** (untagged BLOB and JSON text are float32). On error returns an SQLite
** code and sets *pzErr to an sqlite3_malloc'd message naming the problem. */
int vdbVectorFromValue(sqlite3_value *pVal, VdbVector *pVec, char **pzErr);

/* Decode an SQL value as the given element type, as vec_f32(), vec_int8()
** and vec_bit() do: BLOB bytes are taken as that type, JSON text is parsed
** for that type (bit vectors have no JSON form). */
int vdbVectorFromValueAs(sqlite3_value *pVal, VdbElemType eType,
                         VdbVector *pVec, char **pzErr);

/* Parse strict JSON "[n, n, ...]" into a new vector of type eType. */
int vdbVectorParseJson(const char *zJson, int nJson, VdbElemType eType,
                       VdbVector *pVec, char **pzErr);

/* Validate nByte raw bytes as a vector of eType and wrap them (copying
** float32 data when it is misaligned). */
int vdbVectorFromBlob(const void *pBlob, int nByte, VdbElemType eType,
                      VdbVector *pVec, char **pzErr);

void vdbVectorClear(VdbVector *pVec);

/* Element i of a vector as a double (bits as 0/1). */
double vdbVectorElement(const VdbVector *pVec, int i);

/* JSON text for a vector; floats use the shortest form that reads back
** to the same float32. sqlite3_malloc'd, NULL on OOM. */
char *vdbVectorToJson(const VdbVector *pVec);

/* Distance between two vectors of the same type and length. *pIsNull is
** set when the distance is undefined (cosine with a zero vector). */
int vdbVectorDistance(const VdbKernels *pK, VdbMetric eMetric,
                      const VdbVector *pA, const VdbVector *pB,
                      double *pDist, int *pIsNull, char **pzErr);

/* Distance between two raw vectors of type eElem and nDim elements, which
** the caller has checked belong together (metric hamming exactly for bit
** vectors). Returns 0 when the distance is undefined: cosine with an
** all-zero vector, or float32 sums that overflow to NaN (dot, cosine);
** an overflow to +-Inf is a distance (L2 of far-apart vectors). */
int vdbRawDistance(const VdbKernels *pK, VdbElemType eElem, VdbMetric eMetric, int nDim,
                   const void *pA, const void *pB, double *pDist);

/* Message for two vectors that cannot be compared, or NULL if they can. */
char *vdbVectorMismatch(const VdbVector *pA, const VdbVector *pB);

#endif
