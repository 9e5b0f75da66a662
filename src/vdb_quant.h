/*
** Compact codes for the graph walk.
**
** A walk at recall 0.95 measures 1,000 to 3,000 vectors per query, each
** a cache miss: the time goes into bringing vectors from memory, not into
** arithmetic. Codes a quarter the size of float32 vectors let the walk
** compare four times as many vectors per byte moved; the nodes the walk
** ends with are then measured again with their float32 vectors, so the
** distances a query returns are exact (vdbHnswSearch, "re-ranking").
**
** Codes live only in memory: a node's code is computed from its stored
** float32 vector when a walk first reaches it (vdb_index_hnsw.c keeps it
** in the node's record, or in the shared copy's walk record), so the
** on-disk format does not change and a table can switch quantizers with
** nothing to rebuild.
**
** ---- int8 (VDB_QUANT_INT8) ---------------------------------------------------
**
** Each vector is coded on its own grid of 256 levels between its smallest
** and largest element: x^[i] = base + scale*c[i], c[i] in -128..127. No
** ranges are trained, so rows whose values drift away from the first
** rows' (new units, an offset, a new embedding model's range) are coded as
** finely as the first: there is nothing to go stale. A query is coded the
** same way with unsigned levels, q^[i] = qmin + qscale*u[i], u[i] in
** 0..255, so that the one product that needs both codes, sum(u[i]*c[i]),
** is an unsigned-by-signed byte kernel (VNNI's vpdpbusd), and
**
**   q^.x^ = dim*qmin*base + qmin*scale*sum(c) + qscale*base*sum(u)
**           + qscale*scale*sum(u[i]*c[i])
**
** in double. The walk's distance is then l2 |q^|^2 + |x^|^2 - 2 q^.x^
** (the coded vectors' own squared norms, so that vectors far from the
** origin lose nothing to cancellation), cosine 1 - q^.x^ / (|q| |x|) with
** the float32 vectors' norms, dot -q^.x^.
**
** A code (in memory, host byte order), vectors and queries alike:
**     double norm2       |x^|^2
**     float  lo, scale   level v in 0..255 stands for lo + scale*v; scale is
**                        (max - min) / 255, 0 for a constant vector (or a
**                        range too small to divide by), NaN when an element
**                        is not finite (no distance: +Inf)
**     int32  sum         the sum of the stored bytes
**     float  aux         cosine: 1/|x| of the float32 vector (0: a zero
**                        vector); otherwise 0
** then dim bytes, zero-padded to a multiple of 8: a vector's c = v - 128
** (int8, so base = lo + 128*scale). nCodeBytes is 24 + dim rounded up to 8.
** A query's code, never stored, has its own 40-byte header instead (the
** terms every distance from it needs, VdbQueryHead in vdb_quant.c), then
** its dim levels u (uint8) on a grid of 128 levels, 0..127, which the
** kernels without VNNI multiply with vpmaddubsw (vdb_kernels.h, u7i8Dot).
*/
#ifndef VDB_QUANT_H
#define VDB_QUANT_H
#include "vdb_hnsw.h"

typedef enum VdbQuantizer {
  VDB_QUANT_NONE = 0,             /* the walk reads float32 vectors */
  VDB_QUANT_INT8 = 1              /* int8 codes, float32 re-ranking */
} VdbQuantizer;

/* The quantizers' names, indexed by VdbQuantizer, NULL-terminated. */
extern const char *const vdbQuantNames[];

/* Give pSpace (already set up by vdbHnswSpaceInit) the quantizer's codes;
** VDB_QUANT_NONE leaves it reading vectors. SQLITE_OK, or SQLITE_ERROR for
** a quantizer the space's element type cannot use. */
int vdbQuantInit(VdbHnswSpace *pSpace, VdbQuantizer eQuant);

#endif
