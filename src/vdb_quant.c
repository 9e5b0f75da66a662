/*
** Compact codes for the graph walk: see vdb_quant.h for the codes and why.
*/
#include <math.h>
#include <string.h>
#include "vdb_quant.h"

const char *const vdbQuantNames[] = { "none", "int8", 0 };

/* The header before a code's bytes, for vectors and for queries. */
typedef struct VdbI8Head { double norm2; float lo, scale; int32_t sum; float aux; } VdbI8Head;
typedef struct VdbU8Head { double norm2; float qmin, qscale; int32_t sum; float aux; } VdbU8Head;

static int vdbRound8(int n){ return (n + 7) & ~7; }

/* The level of c = 0, in double: rounding it to float would move every
** element of a vector far from the origin by the same few ulps, many
** levels of its grid. */
static double vdbI8Base(const VdbI8Head *h){
  return (double)h->lo + 128.0*(double)h->scale;
}

/* cosine: 1/|v| of the float32 vector (0 when it has none); otherwise 0.
** The cosine walk divides the codes' dot product by the exact norms. */
static float vdbCodeAux(const VdbHnswSpace *s, const float *v){
  double n2;
  if( s->eMetric!=VDB_METRIC_COSINE ) return 0;
  n2 = (double)s->pK->f32Dot(v, v, (size_t)s->dim);
  if( !(n2>0) || isinf(n2) ) return 0;
  return (float)(1.0/sqrt(n2));
}

/* The smallest and largest element; NaN when one is not finite. */
static void vdbRange(const float *x, int n, float *pLo, float *pHi){
  float lo = x[0], hi = x[0];
  int i, bad = !isfinite(x[0]);
  for(i=1; i<n; i++){
    if( x[i]<lo ) lo = x[i];
    if( x[i]>hi ) hi = x[i];
    bad |= !isfinite(x[i]);
  }
  *pLo = bad ? NAN : lo;
  *pHi = bad ? NAN : hi;
}

static void vdbI8Encode(const VdbHnswSpace *s, const void *pVec, void *pCode){
  const float *x = (const float*)pVec;
  VdbI8Head h;
  int8_t *c = (int8_t*)pCode + sizeof(VdbI8Head);
  float lo, hi;
  int i, sum = 0;
  double norm2 = 0;
  vdbRange(x, s->dim, &lo, &hi);
  memset(&h, 0, sizeof(h));
  memset(c, 0, (size_t)(s->nCodeBytes - (int)sizeof(VdbI8Head)));
  h.lo = lo;
  h.scale = (hi - lo)/255.0f;
  if( isnan(h.scale) || isinf(h.scale) ){
    h.scale = NAN;                      /* no distance: +Inf */
  }else if( h.scale>0 && !isfinite(1.0f/h.scale) ){
    h.scale = 0;                        /* a range too small to divide by: constant */
  }
  if( h.scale>0 ){
    float inv = 1.0f/h.scale;
    for(i=0; i<s->dim; i++){
      long q = lrintf((x[i] - lo)*inv) - 128;
      if( q>127 ) q = 127;
      if( q<-128 ) q = -128;
      c[i] = (int8_t)q;
      sum += (int)q;
    }
  }
  /* |x^|^2 of the coded vector itself, so that an l2 distance between
  ** codes is exactly |q^ - x^|^2 even where the vectors sit far from the
  ** origin (its parts cancel in double, not float). */
  for(i=0; i<s->dim; i++){
    double v = vdbI8Base(&h) + (double)h.scale*c[i];
    norm2 += v*v;
  }
  h.norm2 = norm2;
  h.sum = sum;
  h.aux = vdbCodeAux(s, x);
  memcpy(pCode, &h, sizeof(h));
}

static void vdbI8EncodeQuery(const VdbHnswSpace *s, const void *pQuery, void *pQueryCode){
  const float *q = (const float*)pQuery;
  VdbU8Head h;
  uint8_t *u = (uint8_t*)pQueryCode + sizeof(VdbU8Head);
  float lo, hi;
  int i, sum = 0;
  double norm2 = 0;
  vdbRange(q, s->dim, &lo, &hi);
  memset(&h, 0, sizeof(h));
  memset(u, 0, (size_t)(s->nQueryCodeBytes - (int)sizeof(VdbU8Head)));
  h.qmin = lo;
  h.qscale = (hi - lo)/255.0f;
  if( isnan(h.qscale) || isinf(h.qscale) ){
    h.qscale = NAN;                     /* every distance becomes +Inf */
  }else if( h.qscale>0 && !isfinite(1.0f/h.qscale) ){
    h.qscale = 0;                       /* a range too small to divide by: constant */
  }
  if( h.qscale>0 ){
    float inv = 1.0f/h.qscale;
    for(i=0; i<s->dim; i++){
      long x = lrintf((q[i] - lo)*inv);
      u[i] = (uint8_t)(x<0 ? 0 : x>255 ? 255 : x);
      sum += u[i];
    }
  }
  for(i=0; i<s->dim; i++){
    double v = (double)h.qmin + (double)h.qscale*u[i];
    norm2 += v*v;
  }
  h.norm2 = norm2;
  h.sum = sum;
  h.aux = vdbCodeAux(s, q);
  memcpy(pQueryCode, &h, sizeof(h));
}

/* q^.x^ from the two codes: with q^[i] = qmin + qscale*u[i] and
** x^[i] = base + scale*c[i], the sum expands into four terms of which
** only sum(u[i]*c[i]) depends on both (the byte kernel). */
static double vdbI8Dot(const VdbHnswSpace *s, const VdbU8Head *q, const VdbI8Head *h,
                       const void *pQueryCode, const void *pCode){
  int64_t d = s->pK->u8i8Dot((const uint8_t*)pQueryCode + sizeof(VdbU8Head),
                             (const int8_t*)pCode + sizeof(VdbI8Head), (size_t)s->dim);
  double base = vdbI8Base(h);
  return (double)s->dim*q->qmin*base + (double)q->qmin*h->scale*h->sum
       + (double)q->qscale*base*q->sum + (double)q->qscale*h->scale*(double)d;
}

static double vdbI8WalkL2(const VdbHnswSpace *s, const void *pQueryCode, const void *pCode){
  VdbU8Head q;
  VdbI8Head h;
  double d;
  memcpy(&q, pQueryCode, sizeof(q));
  memcpy(&h, pCode, sizeof(h));
  d = q.norm2 + h.norm2 - 2*vdbI8Dot(s, &q, &h, pQueryCode, pCode);
  return isnan(d) ? INFINITY : d;
}

static double vdbI8WalkCos(const VdbHnswSpace *s, const void *pQueryCode, const void *pCode){
  VdbU8Head q;
  VdbI8Head h;
  double d;
  memcpy(&q, pQueryCode, sizeof(q));
  memcpy(&h, pCode, sizeof(h));
  if( h.aux==0 || q.aux==0 ) return INFINITY;
  d = 1.0 - vdbI8Dot(s, &q, &h, pQueryCode, pCode)*q.aux*h.aux;
  return isnan(d) ? INFINITY : d;
}

static double vdbI8WalkDot(const VdbHnswSpace *s, const void *pQueryCode, const void *pCode){
  VdbU8Head q;
  VdbI8Head h;
  double d;
  memcpy(&q, pQueryCode, sizeof(q));
  memcpy(&h, pCode, sizeof(h));
  d = -vdbI8Dot(s, &q, &h, pQueryCode, pCode);
  return isnan(d) ? INFINITY : d;
}

int vdbQuantInit(VdbHnswSpace *pSpace, VdbQuantizer eQuant){
  pSpace->nCodeBytes = 0;
  pSpace->nQueryCodeBytes = 0;
  pSpace->xEncode = 0;
  pSpace->xEncodeQuery = 0;
  pSpace->xCodeWalk = 0;
  if( eQuant==VDB_QUANT_NONE ) return SQLITE_OK;
  if( eQuant!=VDB_QUANT_INT8 || pSpace->eElem!=VDB_ELEM_F32 ) return SQLITE_ERROR;
  pSpace->nCodeBytes = (int)sizeof(VdbI8Head) + vdbRound8(pSpace->dim);
  pSpace->nQueryCodeBytes = (int)sizeof(VdbU8Head) + vdbRound8(pSpace->dim);
  pSpace->xEncode = vdbI8Encode;
  pSpace->xEncodeQuery = vdbI8EncodeQuery;
  switch( pSpace->eMetric ){
    case VDB_METRIC_L2:     pSpace->xCodeWalk = vdbI8WalkL2; break;
    case VDB_METRIC_COSINE: pSpace->xCodeWalk = vdbI8WalkCos; break;
    case VDB_METRIC_DOT:    pSpace->xCodeWalk = vdbI8WalkDot; break;
    default:                return SQLITE_ERROR;
  }
  return SQLITE_OK;
}
