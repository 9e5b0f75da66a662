/*
** Compact codes for the graph walk: see vdb_quant.h for the codes and why.
*/
#include <math.h>
#include <string.h>
#include "vdb_quant.h"

const char *const vdbQuantNames[] = { "none", "int8", 0 };

/* The header before a vector's code bytes (a query's is worked out from
** it, VdbQueryHead): level v (0..255; a query's 0..127) of element i
** stands for lo + scale*v. A vector stores c = v-128 as int8, a query
** u = v as uint8; sum is the sum of the stored bytes. */
typedef struct VdbCodeHead {
  double norm2;                     /* |x^|^2 of the coded vector */
  float lo, scale;
  int32_t sum;
  float aux;                        /* cosine: 1/|x| of the float32 vector */
} VdbCodeHead;

static int vdbRound8(int n){ return (n + 7) & ~7; }

/* The walk's per-distance helpers are inlined into its per-metric loops. */
#if defined(__GNUC__)
# define VDB_ALWAYS_INLINE inline __attribute__((always_inline))
#else
# define VDB_ALWAYS_INLINE inline
#endif

/* cosine: 1/|v| of the float32 vector (0 when it has none); otherwise 0.
** The cosine walk divides the codes' dot product by the exact norms. */
static float vdbCodeAux(const VdbHnswSpace *s, const float *v){
  double n2;
  if( s->eMetric!=VDB_METRIC_COSINE ) return 0;
  n2 = (double)s->pK->f32Dot(v, v, (size_t)s->dim);
  if( !(n2>0) || isinf(n2) ) return 0;
  return (float)(1.0/sqrt(n2));
}

/* Code x on its own grid of nTop+1 levels between its smallest and
** largest element (256 for a vector, 128 for a query: vdbI8EncodeQuery):
** the levels into aLevel (dim bytes), everything of *h but the
** byte sum, which is returned (the sum of the levels). Every query is
** coded, and every node a walk reaches for the first time: the range and
** the levels are SIMD kernels (f32Range, f32Levels), and the levels' sum
** and sum of squares are integers, from which |x^|^2 follows without a
** third pass (the scalar loops this replaces, one of them in double and
** one calling lrintf, were 4% of a search at ef_search 10 on 200,000 x
** 384). */
static int vdbCodeGrid(const VdbHnswSpace *s, const float *x, int nTop, VdbCodeHead *h, uint8_t *aLevel){
  float lo, hi;
  int finite = s->pK->f32Range(x, (size_t)s->dim, &lo, &hi);
  int sum = 0;
  int64_t sumSq = 0;
  double l, sc;
  memset(h, 0, sizeof(*h));
  h->lo = finite ? lo : 0.0f;
  h->scale = (hi - lo)/(float)nTop;
  if( !finite || isinf(h->scale) ){
    h->scale = NAN;                     /* no distance: +Inf */
  }else if( h->scale>0 && !isfinite(1.0f/h->scale) ){
    h->scale = 0;                       /* a range too small to divide by: constant */
  }
  if( h->scale>0 ){
    sum = (int)s->pK->f32Levels(x, (size_t)s->dim, lo, 1.0f/h->scale, aLevel, &sumSq);
  }else{
    memset(aLevel, 0, (size_t)s->dim);
  }
  /* |x^|^2 of the coded vector itself, so that an l2 distance between
  ** codes is exactly |q^ - x^|^2 even where the vectors sit far from the
  ** origin (its parts cancel in double, not float): the sum over i of
  ** (lo + scale*v[i])^2, from the integer sums of v and v^2. */
  l = (double)h->lo;
  sc = (double)h->scale;
  h->norm2 = (double)s->dim*l*l + 2.0*l*sc*(double)sum + sc*sc*(double)sumSq;
  h->aux = vdbCodeAux(s, x);
  return sum;
}

static void vdbI8Encode(const VdbHnswSpace *s, const void *pVec, void *pCode){
  uint8_t *c = (uint8_t*)pCode + sizeof(VdbCodeHead);
  VdbCodeHead h;
  int i, sum = vdbCodeGrid(s, (const float*)pVec, 255, &h, c);
  /* v - 128 as int8: flipping the top bit of the level, 8 levels at a time
  ** (a byte at a time was half of coding a node once the grid was SIMD). */
  for(i=0; i+8<=s->dim; i+=8){
    uint64_t w;
    memcpy(&w, c+i, 8);
    w ^= 0x8080808080808080ull;
    memcpy(c+i, &w, 8);
  }
  for(; i<s->dim; i++) c[i] ^= 0x80;
  memset(c + s->dim, 0, (size_t)(s->nCodeBytes - (int)sizeof(VdbCodeHead) - s->dim));
  h.sum = sum - 128*s->dim;
  memcpy(pCode, &h, sizeof(h));
}

/* A query's header: what every distance from the query needs, worked out
** once when it is coded instead of once per distance (a 1M x 128 build
** spent as many instructions per distance on the old per-call terms, 33,
** as on the byte kernel). With q^[i] = lo + scale*u[i] and a vector's
** x^[i] = base + scale_x*c[i] (base = lo_x + 128*scale_x, in double:
** rounding it to float would move every element of a vector far from the
** origin by the same few ulps, many levels of its grid),
**   q^.x^ = base*(dim*lo + scale*sum(u)) + scale_x*(lo*sum(c) + scale*sum(u[i]*c[i]))
** and only the last sum needs both codes (the byte kernel). */
typedef struct VdbQueryHead {
  double norm2;                     /* |q^|^2 */
  double lo, scale;                 /* the query's grid */
  double baseFactor;                /* dim*lo + scale*sum(u): multiplies a vector's base */
  double aux;                       /* cosine: 1/|q| of the float32 query */
} VdbQueryHead;

/* A query's levels, on a grid of 128 levels: the walk's kernel (u7i8Dot)
** then multiplies 32 byte pairs per vpmaddubsw without VNNI, where 256
** levels needed two (the levels split into their top 7 bits and their
** low bit), for the same recall: the query's coarser grid adds little to
** the error of the vector's 256 levels it is measured against
** (Fashion-MNIST, 10,000 queries: recall@10 0.9544 against 0.9543 at
** ef_search 8, 0.9870 against 0.9868 at 16). */
static void vdbI8EncodeQuery(const VdbHnswSpace *s, const void *pQuery, void *pQueryCode){
  uint8_t *u = (uint8_t*)pQueryCode + sizeof(VdbQueryHead);
  VdbCodeHead h;
  VdbQueryHead q;
  int sum = vdbCodeGrid(s, (const float*)pQuery, 127, &h, u);
  q.norm2 = h.norm2;
  q.lo = (double)h.lo;
  q.scale = (double)h.scale;
  q.baseFactor = (double)s->dim*q.lo + q.scale*(double)sum;
  q.aux = (double)h.aux;
  memcpy(pQueryCode, &q, sizeof(q));
}

/* q^.x^ from a query's code and a vector's; *h receives the vector's
** header. */
static VDB_ALWAYS_INLINE double vdbI8QueryProduct(const VdbHnswSpace *s, const void *pQueryCode,
                                                   const void *pCode, VdbCodeHead *h){
  const VdbQueryHead *q = (const VdbQueryHead*)pQueryCode;
  const uint8_t *u = (const uint8_t*)pQueryCode + sizeof(VdbQueryHead);
  const int8_t *c = (const int8_t*)pCode + sizeof(VdbCodeHead);
  int64_t d = s->pK->u7i8Dot(u, c, (size_t)s->dim);
  memcpy(h, pCode, sizeof(*h));
  return ((double)h->lo + 128.0*(double)h->scale)*q->baseFactor
       + (double)h->scale*(q->lo*(double)h->sum + q->scale*(double)d);
}

/* The metrics' walk distances from a product of two coded vectors, x and
** y (a query's code and a vector's, or two vectors'): l2 from their
** squared norms, cosine from their 1/|x| (0: a zero vector). */
static double vdbI8L2From(double ip, double norm2X, double norm2Y){
  double d = norm2X + norm2Y - 2*ip;
  return isnan(d) ? INFINITY : d;
}
static double vdbI8CosFrom(double ip, double auxX, double auxY){
  double d;
  if( auxX==0 || auxY==0 ) return INFINITY;
  d = 1.0 - ip*auxX*auxY;
  return isnan(d) ? INFINITY : d;
}
static double vdbI8DotFrom(double ip){
  return isnan(ip) ? INFINITY : -ip;
}

/* x^_a.x^_b from two vectors' codes: with x^[i] = base + scale*c[i] on
** each side, only sum(c_a[i]*c_b[i]) needs both (the signed byte kernel). */
static double vdbI8PairProduct(const VdbHnswSpace *s, const void *pCodeA, const void *pCodeB,
                               VdbCodeHead *a, VdbCodeHead *b){
  int64_t d = s->pK->i8Dot((const int8_t*)pCodeA + sizeof(VdbCodeHead),
                           (const int8_t*)pCodeB + sizeof(VdbCodeHead), (size_t)s->dim);
  double baseA, baseB;
  memcpy(a, pCodeA, sizeof(*a));
  memcpy(b, pCodeB, sizeof(*b));
  baseA = (double)a->lo + 128.0*(double)a->scale;
  baseB = (double)b->lo + 128.0*(double)b->scale;
  return (double)s->dim*baseA*baseB + baseA*b->scale*b->sum + baseB*a->scale*a->sum
       + (double)a->scale*b->scale*(double)d;
}

/* A query's code against a vector's, by metric: xCodeWalk, and each
** distance of xCodeWalkMany's loop, where the metric is a constant. */
static VDB_ALWAYS_INLINE double vdbI8WalkAs(const VdbHnswSpace *s, const void *pQueryCode,
                                            const void *pCode, VdbMetric eMetric){
  const VdbQueryHead *q = (const VdbQueryHead*)pQueryCode;
  VdbCodeHead h;
  double ip = vdbI8QueryProduct(s, pQueryCode, pCode, &h);
  switch( eMetric ){
    case VDB_METRIC_L2:     return vdbI8L2From(ip, q->norm2, h.norm2);
    case VDB_METRIC_COSINE: return vdbI8CosFrom(ip, q->aux, (double)h.aux);
    default:                return vdbI8DotFrom(ip);
  }
}
static double vdbI8WalkL2(const VdbHnswSpace *s, const void *pQueryCode, const void *pCode){
  return vdbI8WalkAs(s, pQueryCode, pCode, VDB_METRIC_L2);
}
static double vdbI8WalkCos(const VdbHnswSpace *s, const void *pQueryCode, const void *pCode){
  return vdbI8WalkAs(s, pQueryCode, pCode, VDB_METRIC_COSINE);
}
static double vdbI8WalkDot(const VdbHnswSpace *s, const void *pQueryCode, const void *pCode){
  return vdbI8WalkAs(s, pQueryCode, pCode, VDB_METRIC_DOT);
}

/* Two vectors' codes (xCodePair), for each metric. */
static double vdbI8PairL2(const VdbHnswSpace *s, const void *pCodeA, const void *pCodeB){
  VdbCodeHead a, b;
  double ip = vdbI8PairProduct(s, pCodeA, pCodeB, &a, &b);
  return vdbI8L2From(ip, a.norm2, b.norm2);
}
static double vdbI8PairCos(const VdbHnswSpace *s, const void *pCodeA, const void *pCodeB){
  VdbCodeHead a, b;
  double ip = vdbI8PairProduct(s, pCodeA, pCodeB, &a, &b);
  return vdbI8CosFrom(ip, (double)a.aux, (double)b.aux);
}
static double vdbI8PairDot(const VdbHnswSpace *s, const void *pCodeA, const void *pCodeB){
  VdbCodeHead a, b;
  return vdbI8DotFrom(vdbI8PairProduct(s, pCodeA, pCodeB, &a, &b));
}

/* xCodeWalkMany: the walk's distances for an expansion's new neighbours,
** one function per metric so that the product and the metric's formula
** are compiled into one loop. */
static VDB_ALWAYS_INLINE void vdbI8WalkManyAs(const VdbHnswSpace *s, const void *pQueryCode,
                                              const void *const *apCode, int n, double *aDist,
                                              VdbMetric eMetric){
  int i;
  for(i=0; i<VDB_PREFETCH_AHEAD && i<n; i++) vdbPrefetchVector(apCode[i], s->nCodeBytes);
  for(i=0; i<n; i++){
    if( i+VDB_PREFETCH_AHEAD<n ) vdbPrefetchVector(apCode[i+VDB_PREFETCH_AHEAD], s->nCodeBytes);
    aDist[i] = vdbI8WalkAs(s, pQueryCode, apCode[i], eMetric);
  }
}
static void vdbI8WalkManyL2(const VdbHnswSpace *s, const void *pQueryCode,
                            const void *const *apCode, int n, double *aDist){
  vdbI8WalkManyAs(s, pQueryCode, apCode, n, aDist, VDB_METRIC_L2);
}
static void vdbI8WalkManyCos(const VdbHnswSpace *s, const void *pQueryCode,
                             const void *const *apCode, int n, double *aDist){
  vdbI8WalkManyAs(s, pQueryCode, apCode, n, aDist, VDB_METRIC_COSINE);
}
static void vdbI8WalkManyDot(const VdbHnswSpace *s, const void *pQueryCode,
                             const void *const *apCode, int n, double *aDist){
  vdbI8WalkManyAs(s, pQueryCode, apCode, n, aDist, VDB_METRIC_DOT);
}

int vdbQuantInit(VdbHnswSpace *pSpace, VdbQuantizer eQuant){
  pSpace->nCodeBytes = 0;
  pSpace->nQueryCodeBytes = 0;
  pSpace->xEncode = 0;
  pSpace->xEncodeQuery = 0;
  pSpace->xCodeWalk = 0;
  pSpace->xCodePair = 0;
  pSpace->xCodeWalkMany = 0;
  if( eQuant==VDB_QUANT_NONE ) return SQLITE_OK;
  if( eQuant!=VDB_QUANT_INT8 || pSpace->eElem!=VDB_ELEM_F32 ) return SQLITE_ERROR;
  pSpace->nCodeBytes = (int)sizeof(VdbCodeHead) + vdbRound8(pSpace->dim);
  pSpace->nQueryCodeBytes = (int)sizeof(VdbQueryHead) + pSpace->dim;
  pSpace->xEncode = vdbI8Encode;
  pSpace->xEncodeQuery = vdbI8EncodeQuery;
  switch( pSpace->eMetric ){
    case VDB_METRIC_L2:     pSpace->xCodeWalk = vdbI8WalkL2; pSpace->xCodePair = vdbI8PairL2;
                            pSpace->xCodeWalkMany = vdbI8WalkManyL2; break;
    case VDB_METRIC_COSINE: pSpace->xCodeWalk = vdbI8WalkCos; pSpace->xCodePair = vdbI8PairCos;
                            pSpace->xCodeWalkMany = vdbI8WalkManyCos; break;
    case VDB_METRIC_DOT:    pSpace->xCodeWalk = vdbI8WalkDot; pSpace->xCodePair = vdbI8PairDot;
                            pSpace->xCodeWalkMany = vdbI8WalkManyDot; break;
    default:                return SQLITE_ERROR;
  }
  return SQLITE_OK;
}
