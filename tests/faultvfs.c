/*
** faultvfs: I/O errors and power loss for the tests; see faultvfs.h.
**
** Power loss keeps, per file path, an FvTrack: the file's size at its last
** xSync and, for every 512-byte sector written or truncated away since,
** the bytes that sector held at that sync (its "old image"). A sector's
** first change after a sync is the only moment its old image can be read:
** until then the file still holds it. At the crash, each changed sector
** gets its old image back (or, in FAULTVFS_LOSE_SOME, keeps its new
** content by a coin toss) and the file is cut back to a size the disk
** could have: the synced one, or (LOSE_SOME) the current one.
**
** The bookkeeping uses malloc, not sqlite3_malloc, so that it never
** disturbs an allocation-failure test that shares the process.
*/
#include <stdlib.h>
#include <string.h>
#include "faultvfs.h"

#define FV_SECTOR 512

typedef struct FvSector {
  sqlite3_int64 iSector;
  int nOld;                         /* bytes of the sector inside the synced size */
  unsigned char aOld[FV_SECTOR];
} FvSector;

typedef struct FvTrack FvTrack;
struct FvTrack {
  char *zPath;                      /* NULL once the file is deleted */
  int nRef;                         /* open handles */
  sqlite3_file *pReal;              /* an open handle's real file, while nRef>0 */
  sqlite3_int64 syncedSize;
  FvSector *aSec;                   /* sectors changed since the last sync */
  int nSec, nSecAlloc;
  int *aIdx;                        /* hash of aSec by sector: index+1, 0 empty */
  int nIdx;                         /* power of two, at least 2*nSecAlloc */
  FvTrack *pNext;
};

typedef struct FvFile {
  sqlite3_file base;
  FvTrack *pTrack;                  /* NULL: a temp file, not modelled */
  sqlite3_file *pReal;              /* follows this struct in the same block */
} FvFile;

/* Global state of the shim (single-threaded tests). */
static struct {
  sqlite3_vfs vfs;
  sqlite3_vfs *pReal;
  FvTrack *pTracks;
  sqlite3_int64 aCount[4];          /* operations seen, by kind */
  /* Armed fault: an I/O error or a crash. */
  unsigned armMask;
  int armCountdown;                 /* operations of armMask left before it fires; 0: disarmed */
  int armCrash;                     /* fire a crash rather than an error */
  int armPersistent;
  int armFull;                      /* writes fail with SQLITE_FULL */
  int armFired;                     /* a persistent error keeps failing */
  int nInjected;
  int crashMode;
  int keepIn8;                      /* LOSE_SOME: a sector is kept with odds keepIn8/8 */
  unsigned int seed;
  int isDead;                       /* power lost: writes, syncs, deletes fail */
} fv;

/* ---- small helpers --------------------------------------------------------- */

static int fvKind(unsigned op){
  switch( op ){
    case FAULTVFS_READ: return 0;
    case FAULTVFS_WRITE: return 1;
    case FAULTVFS_SYNC: return 2;
    default: return 3;
  }
}

static unsigned int fvRandom(void){
  fv.seed = fv.seed*1103515245u + 12345u;
  return fv.seed >> 16;
}

static int fvErrorCode(unsigned op){
  if( fv.armFull && op==FAULTVFS_WRITE && !fv.isDead ) return SQLITE_FULL;
  switch( op ){
    case FAULTVFS_READ: return SQLITE_IOERR_READ;
    case FAULTVFS_WRITE: return SQLITE_IOERR_WRITE;
    case FAULTVFS_SYNC: return SQLITE_IOERR_FSYNC;
    default: return SQLITE_IOERR_TRUNCATE;
  }
}

static void fvApplyCrash(void);

/* Count operation op; SQLITE_OK to go ahead, else the error to return
** instead of doing it (an injected fault, or a machine without power). */
static int fvOperation(unsigned op){
  fv.aCount[fvKind(op)]++;
  if( fv.isDead ){
    return op==FAULTVFS_READ ? SQLITE_OK : fvErrorCode(op);
  }
  if( (fv.armMask & op)==0 ) return SQLITE_OK;
  if( fv.armFired ){
    fv.nInjected++;
    return fvErrorCode(op);
  }
  if( fv.armCountdown<=0 || --fv.armCountdown>0 ) return SQLITE_OK;
  fv.nInjected++;
  if( fv.armCrash ){
    fvApplyCrash();
    fv.armMask = 0;
  }else if( fv.armPersistent ){
    fv.armFired = 1;
  }else{
    fv.armMask = 0;
  }
  return fvErrorCode(op);
}

/* ---- tracks: the synced image of each named file ----------------------------- */

static FvTrack *fvTrackFind(const char *zPath){
  FvTrack *t;
  for(t=fv.pTracks; t; t=t->pNext){
    if( t->zPath && strcmp(t->zPath, zPath)==0 ) return t;
  }
  return 0;
}

static void fvTrackClear(FvTrack *t){
  t->nSec = 0;
  if( t->aIdx ) memset(t->aIdx, 0, sizeof(int)*(size_t)t->nIdx);
}

static void fvTrackFree(FvTrack *t){
  FvTrack **pp;
  for(pp=&fv.pTracks; *pp && *pp!=t; pp=&(*pp)->pNext){}
  if( *pp ) *pp = t->pNext;
  free(t->zPath);
  free(t->aSec);
  free(t->aIdx);
  free(t);
}

static unsigned int fvHash(sqlite3_int64 iSector, int nIdx){
  return (unsigned int)(((sqlite3_uint64)iSector * 0x9E3779B97F4A7C15ull) >> 20) & (unsigned)(nIdx-1);
}

static FvSector *fvSectorFind(FvTrack *t, sqlite3_int64 iSector){
  unsigned int h;
  if( t->nIdx==0 ) return 0;
  for(h=fvHash(iSector, t->nIdx); t->aIdx[h]; h=(h+1)&(unsigned)(t->nIdx-1)){
    if( t->aSec[t->aIdx[h]-1].iSector==iSector ) return &t->aSec[t->aIdx[h]-1];
  }
  return 0;
}

/* Room for one more sector; rebuilds the hash when the array grows. */
static int fvSectorReserve(FvTrack *t){
  int i;
  if( t->nSec<t->nSecAlloc ) return SQLITE_OK;
  {
    int nNew = t->nSecAlloc ? t->nSecAlloc*2 : 64;
    FvSector *a = (FvSector*)realloc(t->aSec, sizeof(FvSector)*(size_t)nNew);
    int *aIdx = (int*)calloc((size_t)nNew*4, sizeof(int));
    if( a==0 || aIdx==0 ){
      if( a ) t->aSec = a;
      free(aIdx);
      return SQLITE_IOERR_NOMEM;
    }
    t->aSec = a;
    t->nSecAlloc = nNew;
    free(t->aIdx);
    t->aIdx = aIdx;
    t->nIdx = nNew*4;
  }
  for(i=0; i<t->nSec; i++){
    unsigned int h;
    for(h=fvHash(t->aSec[i].iSector, t->nIdx); t->aIdx[h]; h=(h+1)&(unsigned)(t->nIdx-1)){}
    t->aIdx[h] = i+1;
  }
  return SQLITE_OK;
}

/* Sectors [iFirst, iLast] are about to change: keep the old image of
** those not changed since the last sync, read from pReal (which still
** holds it). */
static int fvRemember(FvTrack *t, sqlite3_file *pReal, sqlite3_int64 iFirst, sqlite3_int64 iLast){
  sqlite3_int64 s;
  for(s=iFirst; s<=iLast; s++){
    FvSector *p;
    sqlite3_int64 nOld;
    unsigned int h;
    int rc;
    if( fvSectorFind(t, s) ) continue;
    rc = fvSectorReserve(t);
    if( rc!=SQLITE_OK ) return rc;
    p = &t->aSec[t->nSec];
    p->iSector = s;
    nOld = t->syncedSize - s*FV_SECTOR;
    p->nOld = nOld<0 ? 0 : nOld>FV_SECTOR ? FV_SECTOR : (int)nOld;
    if( p->nOld>0 ){
      rc = pReal->pMethods->xRead(pReal, p->aOld, p->nOld, s*FV_SECTOR);
      if( rc!=SQLITE_OK ) return rc;
    }
    for(h=fvHash(s, t->nIdx); t->aIdx[h]; h=(h+1)&(unsigned)(t->nIdx-1)){}
    t->aIdx[h] = ++t->nSec;
  }
  return SQLITE_OK;
}

/* Put one file back the way the disk holds it after losing power. */
static void fvCrashTrack(FvTrack *t){
  static const unsigned char aZero[FV_SECTOR] = {0};
  sqlite3_file *pReal = t->pReal;
  sqlite3_file *pOwn = 0;
  sqlite3_int64 cur = 0, finalSize;
  int i;
  if( t->zPath==0 ) return;
  if( pReal==0 ){
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_MAIN_DB, outFlags = 0;
    pOwn = (sqlite3_file*)calloc(1, (size_t)fv.pReal->szOsFile);
    if( pOwn==0 ) return;
    if( fv.pReal->xOpen(fv.pReal, t->zPath, pOwn, flags, &outFlags)!=SQLITE_OK ){
      if( pOwn->pMethods ) pOwn->pMethods->xClose(pOwn);
      free(pOwn);
      return;
    }
    pReal = pOwn;
  }
  pReal->pMethods->xFileSize(pReal, &cur);
  finalSize = t->syncedSize;
  if( fv.crashMode==FAULTVFS_LOSE_SOME && (int)(fvRandom() % 8)<fv.keepIn8 ) finalSize = cur;
  pReal->pMethods->xTruncate(pReal, finalSize);
  for(i=0; i<t->nSec; i++){
    FvSector *p = &t->aSec[i];
    sqlite3_int64 iOff = p->iSector*FV_SECTOR;
    int nZero;
    if( fv.crashMode==FAULTVFS_LOSE_SOME && (int)(fvRandom() % 8)<fv.keepIn8 ) continue;   /* reached the disk */
    if( iOff>=finalSize ) continue;
    if( p->nOld>0 ) pReal->pMethods->xWrite(pReal, p->aOld, p->nOld, iOff);
    /* Bytes past the synced size were never on the disk. */
    nZero = (int)(finalSize - iOff - p->nOld);
    if( nZero>FV_SECTOR - p->nOld ) nZero = FV_SECTOR - p->nOld;
    if( nZero>0 ) pReal->pMethods->xWrite(pReal, aZero, nZero, iOff + p->nOld);
  }
  t->syncedSize = finalSize;
  fvTrackClear(t);
  if( pOwn ){
    pOwn->pMethods->xClose(pOwn);
    free(pOwn);
  }
}

static void fvApplyCrash(void){
  static const int aKeep[] = { 4, 7, 8 };
  FvTrack *t, *pNext;
  /* How much of the cache the disk wrote back: half, most, or all of it
  ** (then a commit whose sync never came can survive whole). */
  fv.keepIn8 = aKeep[fvRandom() % 3];
  for(t=fv.pTracks; t; t=pNext){
    pNext = t->pNext;
    fvCrashTrack(t);
    if( t->nRef==0 ) fvTrackFree(t);
  }
  fv.isDead = 1;
}

/* ---- I/O methods ---------------------------------------------------------- */

static int fvClose(sqlite3_file *pFile){
  FvFile *p = (FvFile*)pFile;
  FvTrack *t = p->pTrack;
  int rc = p->pReal->pMethods ? p->pReal->pMethods->xClose(p->pReal) : SQLITE_OK;
  if( t ){
    t->nRef--;
    if( t->pReal==p->pReal ) t->pReal = 0;
    /* A closed file with unsynced changes still loses them at a crash;
    ** the track stays until then, or until the file is deleted. */
    if( t->nRef==0 && (t->nSec==0 || t->zPath==0) ) fvTrackFree(t);
  }
  p->pTrack = 0;
  return rc;
}

static int fvRead(sqlite3_file *pFile, void *zBuf, int iAmt, sqlite3_int64 iOfst){
  FvFile *p = (FvFile*)pFile;
  int rc = fvOperation(FAULTVFS_READ);
  if( rc!=SQLITE_OK ) return rc;
  return p->pReal->pMethods->xRead(p->pReal, zBuf, iAmt, iOfst);
}

static int fvWrite(sqlite3_file *pFile, const void *zBuf, int iAmt, sqlite3_int64 iOfst){
  FvFile *p = (FvFile*)pFile;
  int rc = fvOperation(FAULTVFS_WRITE);
  if( rc==SQLITE_OK && p->pTrack && iAmt>0 ){
    rc = fvRemember(p->pTrack, p->pReal, iOfst/FV_SECTOR, (iOfst+iAmt-1)/FV_SECTOR);
  }
  if( rc!=SQLITE_OK ) return rc;
  return p->pReal->pMethods->xWrite(p->pReal, zBuf, iAmt, iOfst);
}

static int fvTruncate(sqlite3_file *pFile, sqlite3_int64 size){
  FvFile *p = (FvFile*)pFile;
  int rc = fvOperation(FAULTVFS_TRUNCATE);
  if( rc==SQLITE_OK && p->pTrack ){
    sqlite3_int64 cur = 0;
    rc = p->pReal->pMethods->xFileSize(p->pReal, &cur);
    if( rc==SQLITE_OK && size<cur ){
      rc = fvRemember(p->pTrack, p->pReal, size/FV_SECTOR, (cur-1)/FV_SECTOR);
    }
  }
  if( rc!=SQLITE_OK ) return rc;
  return p->pReal->pMethods->xTruncate(p->pReal, size);
}

/* Durability is modelled here, so the real fsync is skipped: it would
** only slow the tests down. */
static int fvSync(sqlite3_file *pFile, int flags){
  FvFile *p = (FvFile*)pFile;
  int rc = fvOperation(FAULTVFS_SYNC);
  (void)flags;
  if( rc==SQLITE_OK && p->pTrack ){
    sqlite3_int64 cur = 0;
    rc = p->pReal->pMethods->xFileSize(p->pReal, &cur);
    p->pTrack->syncedSize = cur;
    fvTrackClear(p->pTrack);
  }
  return rc;
}

static int fvFileSize(sqlite3_file *pFile, sqlite3_int64 *pSize){
  FvFile *p = (FvFile*)pFile;
  return p->pReal->pMethods->xFileSize(p->pReal, pSize);
}
static int fvLock(sqlite3_file *pFile, int eLock){
  FvFile *p = (FvFile*)pFile;
  return p->pReal->pMethods->xLock(p->pReal, eLock);
}
static int fvUnlock(sqlite3_file *pFile, int eLock){
  FvFile *p = (FvFile*)pFile;
  return p->pReal->pMethods->xUnlock(p->pReal, eLock);
}
static int fvCheckReservedLock(sqlite3_file *pFile, int *pResOut){
  FvFile *p = (FvFile*)pFile;
  return p->pReal->pMethods->xCheckReservedLock(p->pReal, pResOut);
}
static int fvFileControl(sqlite3_file *pFile, int op, void *pArg){
  FvFile *p = (FvFile*)pFile;
  /* Size hints make the real VFS grow the file behind xWrite's back; a
  ** dead machine grows nothing. */
  if( fv.isDead && (op==SQLITE_FCNTL_SIZE_HINT || op==SQLITE_FCNTL_SYNC) ) return SQLITE_IOERR;
  return p->pReal->pMethods->xFileControl(p->pReal, op, pArg);
}
static int fvSectorSize(sqlite3_file *pFile){
  FvFile *p = (FvFile*)pFile;
  return p->pReal->pMethods->xSectorSize(p->pReal);
}
static int fvDeviceCharacteristics(sqlite3_file *pFile){
  FvFile *p = (FvFile*)pFile;
  return p->pReal->pMethods->xDeviceCharacteristics(p->pReal);
}
static int fvShmMap(sqlite3_file *pFile, int iPg, int pgsz, int bExtend, void volatile **pp){
  FvFile *p = (FvFile*)pFile;
  return p->pReal->pMethods->xShmMap(p->pReal, iPg, pgsz, bExtend, pp);
}
static int fvShmLock(sqlite3_file *pFile, int offset, int n, int flags){
  FvFile *p = (FvFile*)pFile;
  return p->pReal->pMethods->xShmLock(p->pReal, offset, n, flags);
}
static void fvShmBarrier(sqlite3_file *pFile){
  FvFile *p = (FvFile*)pFile;
  p->pReal->pMethods->xShmBarrier(p->pReal);
}
static int fvShmUnmap(sqlite3_file *pFile, int deleteFlag){
  FvFile *p = (FvFile*)pFile;
  /* Keep the wal-index of a dead machine: the next connection must find
  ** it stale and rebuild it from the WAL, as after a real crash. */
  return p->pReal->pMethods->xShmUnmap(p->pReal, fv.isDead ? 0 : deleteFlag);
}

static const sqlite3_io_methods fvIoMethods = {
  2, fvClose, fvRead, fvWrite, fvTruncate, fvSync, fvFileSize, fvLock, fvUnlock,
  fvCheckReservedLock, fvFileControl, fvSectorSize, fvDeviceCharacteristics,
  fvShmMap, fvShmLock, fvShmBarrier, fvShmUnmap, 0, 0
};
static const sqlite3_io_methods fvIoMethodsV1 = {
  1, fvClose, fvRead, fvWrite, fvTruncate, fvSync, fvFileSize, fvLock, fvUnlock,
  fvCheckReservedLock, fvFileControl, fvSectorSize, fvDeviceCharacteristics,
  0, 0, 0, 0, 0, 0
};

/* ---- VFS methods ------------------------------------------------------------ */

static int fvOpen(sqlite3_vfs *pVfs, const char *zName, sqlite3_file *pFile, int flags, int *pOutFlags){
  FvFile *p = (FvFile*)pFile;
  int rc;
  (void)pVfs;
  memset(p, 0, sizeof(*p));
  p->pReal = (sqlite3_file*)&p[1];
  if( fv.isDead ) return SQLITE_CANTOPEN;
  rc = fv.pReal->xOpen(fv.pReal, zName, p->pReal, flags, pOutFlags);
  if( rc!=SQLITE_OK ){
    /* The real VFS may have set pMethods; SQLite then calls xClose on us. */
    if( p->pReal->pMethods ) pFile->pMethods = &fvIoMethodsV1;
    return rc;
  }
  pFile->pMethods = p->pReal->pMethods->iVersion>=2 ? &fvIoMethods : &fvIoMethodsV1;
  if( zName && (flags & SQLITE_OPEN_DELETEONCLOSE)==0 ){
    FvTrack *t = fvTrackFind(zName);
    if( t==0 ){
      t = (FvTrack*)calloc(1, sizeof(*t));
      if( t ) t->zPath = strdup(zName);
      if( t==0 || t->zPath==0 ){
        free(t);
        p->pReal->pMethods->xClose(p->pReal);
        pFile->pMethods = 0;
        return SQLITE_IOERR_NOMEM;
      }
      /* What the file holds when first seen counts as on the disk. */
      p->pReal->pMethods->xFileSize(p->pReal, &t->syncedSize);
      t->pNext = fv.pTracks;
      fv.pTracks = t;
    }
    t->nRef++;
    t->pReal = p->pReal;
    p->pTrack = t;
  }
  return SQLITE_OK;
}

static int fvDelete(sqlite3_vfs *pVfs, const char *zName, int syncDir){
  FvTrack *t;
  int rc;
  (void)pVfs;
  if( fv.isDead ) return SQLITE_IOERR_DELETE;
  rc = fv.pReal->xDelete(fv.pReal, zName, syncDir);
  if( rc==SQLITE_OK && (t = fvTrackFind(zName))!=0 ){
    if( t->nRef==0 ){
      fvTrackFree(t);
    }else{
      free(t->zPath);
      t->zPath = 0;
      fvTrackClear(t);
    }
  }
  return rc;
}

static int fvAccess(sqlite3_vfs *pVfs, const char *zName, int flags, int *pResOut){
  (void)pVfs;
  return fv.pReal->xAccess(fv.pReal, zName, flags, pResOut);
}
static int fvFullPathname(sqlite3_vfs *pVfs, const char *zName, int nOut, char *zOut){
  (void)pVfs;
  return fv.pReal->xFullPathname(fv.pReal, zName, nOut, zOut);
}
static void *fvDlOpen(sqlite3_vfs *pVfs, const char *zPath){
  (void)pVfs;
  return fv.pReal->xDlOpen(fv.pReal, zPath);
}
static void fvDlError(sqlite3_vfs *pVfs, int nByte, char *zErrMsg){
  (void)pVfs;
  fv.pReal->xDlError(fv.pReal, nByte, zErrMsg);
}
static void (*fvDlSym(sqlite3_vfs *pVfs, void *pH, const char *z))(void){
  (void)pVfs;
  return fv.pReal->xDlSym(fv.pReal, pH, z);
}
static void fvDlClose(sqlite3_vfs *pVfs, void *pHandle){
  (void)pVfs;
  fv.pReal->xDlClose(fv.pReal, pHandle);
}
static int fvRandomness(sqlite3_vfs *pVfs, int nByte, char *zOut){
  (void)pVfs;
  return fv.pReal->xRandomness(fv.pReal, nByte, zOut);
}
static int fvSleep(sqlite3_vfs *pVfs, int nMicro){
  (void)pVfs;
  return fv.pReal->xSleep(fv.pReal, nMicro);
}
static int fvCurrentTime(sqlite3_vfs *pVfs, double *pTime){
  (void)pVfs;
  return fv.pReal->xCurrentTime(fv.pReal, pTime);
}
static int fvGetLastError(sqlite3_vfs *pVfs, int n, char *z){
  (void)pVfs;
  return fv.pReal->xGetLastError ? fv.pReal->xGetLastError(fv.pReal, n, z) : 0;
}
static int fvCurrentTimeInt64(sqlite3_vfs *pVfs, sqlite3_int64 *pTime){
  (void)pVfs;
  return fv.pReal->xCurrentTimeInt64(fv.pReal, pTime);
}

/* ---- public interface --------------------------------------------------------- */

int faultvfsInstall(const char *zName){
  sqlite3_vfs *pReal;
  if( fv.pReal ) return SQLITE_MISUSE;
  pReal = sqlite3_vfs_find(0);
  if( pReal==0 ) return SQLITE_ERROR;
  fv.pReal = pReal;
  fv.vfs.iVersion = 2;
  fv.vfs.szOsFile = (int)sizeof(FvFile) + pReal->szOsFile;
  fv.vfs.mxPathname = pReal->mxPathname;
  fv.vfs.zName = zName;
  fv.vfs.xOpen = fvOpen;
  fv.vfs.xDelete = fvDelete;
  fv.vfs.xAccess = fvAccess;
  fv.vfs.xFullPathname = fvFullPathname;
  fv.vfs.xDlOpen = fvDlOpen;
  fv.vfs.xDlError = fvDlError;
  fv.vfs.xDlSym = fvDlSym;
  fv.vfs.xDlClose = fvDlClose;
  fv.vfs.xRandomness = fvRandomness;
  fv.vfs.xSleep = fvSleep;
  fv.vfs.xCurrentTime = fvCurrentTime;
  fv.vfs.xGetLastError = fvGetLastError;
  fv.vfs.xCurrentTimeInt64 = fvCurrentTimeInt64;
  return sqlite3_vfs_register(&fv.vfs, 0);
}

sqlite3_int64 faultvfsCount(unsigned mask){
  sqlite3_int64 n = 0;
  int i;
  for(i=0; i<4; i++) if( mask & (1u<<i) ) n += fv.aCount[i];
  return n;
}

void faultvfsResetCounts(void){
  memset(fv.aCount, 0, sizeof(fv.aCount));
}

void faultvfsArmError(unsigned mask, int n, int persistent){
  fv.armFull = (mask & FAULTVFS_DISKFULL)!=0;
  fv.armMask = mask & FAULTVFS_ALL;
  fv.armCountdown = n;
  fv.armCrash = 0;
  fv.armPersistent = persistent;
  fv.armFired = 0;
  fv.nInjected = 0;
}

int faultvfsLive(void){
  return fv.armMask!=0;
}

int faultvfsDisarm(void){
  int n = fv.nInjected;
  fv.armMask = 0;
  fv.armCountdown = 0;
  fv.armFired = 0;
  fv.nInjected = 0;
  return n;
}

void faultvfsArmCrash(unsigned mask, int n, int eMode, unsigned int seed){
  faultvfsArmError(mask, n, 0);
  fv.armCrash = 1;
  fv.crashMode = eMode;
  fv.seed = seed;
}

int faultvfsCrashed(void){
  return fv.isDead;
}

void faultvfsCrashNow(int eMode, unsigned int seed){
  fv.crashMode = eMode;
  fv.seed = seed;
  fvApplyCrash();
  fv.armMask = 0;
}

void faultvfsRevive(void){
  FvTrack *t, *pNext;
  fv.isDead = 0;
  faultvfsDisarm();
  for(t=fv.pTracks; t; t=pNext){
    pNext = t->pNext;
    if( t->nRef==0 ) fvTrackFree(t);
    else fvTrackClear(t);
  }
}
