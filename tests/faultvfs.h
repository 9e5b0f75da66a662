/*
** faultvfs: a VFS shim for fault-injection tests.
**
** faultvfsInstall() registers, under its own name, a VFS that forwards
** every call to the VFS that was the default at that moment, and adds:
**
**   I/O errors   faultvfsArmError(mask, n, persistent) makes the n-th
**                operation of the kinds in mask (counted over every file
**                opened through the shim: database, journal, WAL, temp
**                files) fail with SQLITE_IOERR_READ / _WRITE / _FSYNC /
**                _TRUNCATE without doing anything; with persistent set,
**                every later operation of those kinds fails too.
**
**   power loss   For every file with a name, the shim remembers what the
**                file held at its last xSync (its size and the old content
**                of each 512-byte sector written since). faultvfsArmCrash()
**                picks the n-th write/sync at which the "machine" loses
**                power: the operation is not done, each file returns to
**                its last synced image (FAULTVFS_LOSE_ALL) or keeps a
**                random subset of the sectors written since
**                (FAULTVFS_LOSE_SOME, as a disk that wrote back part of its
**                cache: half, seven eighths or all of the sectors, by
**                chance), and from then on every write, sync, truncate,
**                delete and open fails without effect, so the dead
**                connection can only be closed. faultvfsRevive() then lets the next
**                connection recover the files as they are.
**
** Opening, deleting and creating files count as durable at once (as in
** SQLite's own crash tests). Since durability is modelled, xSync does not
** call the real fsync. Files are opened with I/O methods version 2
** at most, so SQLite never reads through a memory map and every byte that
** reaches a file passes through xWrite. Single-threaded use only.
*/
#ifndef FAULTVFS_H
#define FAULTVFS_H
#include <sqlite3.h>

#define FAULTVFS_READ      0x01
#define FAULTVFS_WRITE     0x02
#define FAULTVFS_SYNC      0x04
#define FAULTVFS_TRUNCATE  0x08
#define FAULTVFS_ALL       0x0f
/* With FAULTVFS_WRITE in faultvfsArmError's mask: the write fails with
** SQLITE_FULL (a full disk) instead, which SQLite handles apart from I/O
** errors (it may roll back only the statement). */
#define FAULTVFS_DISKFULL  0x10

#define FAULTVFS_LOSE_ALL  0
#define FAULTVFS_LOSE_SOME 1

/* Register the shim as zName (not as the default VFS). */
int faultvfsInstall(const char *zName);

/* Operations of the kinds in mask seen since the last faultvfsResetCounts(). */
sqlite3_int64 faultvfsCount(unsigned mask);
void faultvfsResetCounts(void);

/* Fail the n-th (n>=1) operation of the kinds in mask from now on. */
void faultvfsArmError(unsigned mask, int n, int persistent);
/* Is a fault armed that can still fire (a countdown running, or a
** persistent error failing every operation)? */
int faultvfsLive(void);
/* Lift any armed error or crash; returns how many operations failed
** because of it (0: the countdown never reached n). */
int faultvfsDisarm(void);

/* Lose power at the n-th (n>=1) operation of the kinds in mask from now
** on; seed drives FAULTVFS_LOSE_SOME's choice of sectors. */
void faultvfsArmCrash(unsigned mask, int n, int eMode, unsigned int seed);
/* Has the armed crash happened? */
int faultvfsCrashed(void);
/* Make a lost power supply work again (after the dead connection is
** closed); forgets every file's synced image. */
void faultvfsRevive(void);
/* Lose power now (the same as a crash reaching its countdown). */
void faultvfsCrashNow(int eMode, unsigned int seed);

#endif
