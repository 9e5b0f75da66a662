/*
** This node's raft indexes (applied, commit, last, term) for /health and
** /metrics.
**
** dqlite 1.11 keeps its struct raft inside the opaque dqlite_node and no
** call of its C API, its wire protocol or go-dqlite returns an index.
** libraft 0.15 does have raft_last_applied() and raft_last_index(); what is
** missing is a way to reach the struct raft. libdqlite calls libraft's
** raft_init() through the dynamic linker (libraft.so.2 is a NEEDED library
** of libdqlite.so.0), so this executable defines raft_init() itself: the
** dynamic linker binds libdqlite's call to it (an executable's definition
** comes first in the lookup order), and it forwards to libraft's own
** (dlsym RTLD_NEXT). Before returning it wraps the raft_io's start method,
** the documented hook through which libraft asks its I/O for a periodic
** tick (every heartbeat timeout). The wrapped tick runs libraft's tick and
** then copies the indexes, on raft's own thread, into atomics that any
** thread may read; no other thread ever touches the struct raft.
**
** One node per process is followed (the first raft_init); vectordb-node
** starts one. If raft_init was not routed here (a libdqlite linked with
** libraft statically, say), vdbnodeRaftIndexes() says so by returning 0.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <raft.h>
#include "ext.h"

typedef int (*RaftInitFn)(struct raft*, struct raft_io*, struct raft_fsm*,
                          raft_id, const char*);
typedef int (*RaftStartFn)(struct raft_io*, unsigned, raft_io_tick_cb,
                           raft_io_recv_cb);

/* The followed node. Written by raft_init() before dqlite starts the
** thread that runs raft (thread creation orders those writes before
** anything that thread does); read only on that thread afterwards. */
static struct raft_io *pFollowedIo = 0;
static RaftStartFn xOrigStart = 0;
static raft_io_tick_cb xOrigTick = 0;

static atomic_flag followClaimed = ATOMIC_FLAG_INIT;
static atomic_int hooked = 0;            /* raft_init came through here */
static atomic_int seen = 0;              /* a tick has copied the figures */
static _Atomic uint64_t aApplied, aCommit, aLast, aTerm;

/* Runs on raft's thread every heartbeat timeout: libraft's tick first,
** then a copy of the figures it may have changed. */
static void vdbnodeTick(struct raft_io *io){
  struct raft *r;
  xOrigTick(io);
  r = (struct raft*)io->data;          /* libraft's raft_init sets io->data */
  atomic_store(&aApplied, (uint64_t)raft_last_applied(r));
  atomic_store(&aCommit, (uint64_t)r->commit_index);
  atomic_store(&aLast, (uint64_t)raft_last_index(r));
  atomic_store(&aTerm, (uint64_t)r->current_term);
  atomic_store(&seen, 1);
}

static int vdbnodeStart(struct raft_io *io, unsigned msecs,
                        raft_io_tick_cb tick, raft_io_recv_cb recv){
  if( io==pFollowedIo && tick!=0 ){
    xOrigTick = tick;
    tick = vdbnodeTick;
  }
  return xOrigStart(io, msecs, tick, recv);
}

int raft_init(struct raft *r, struct raft_io *io, struct raft_fsm *fsm,
              raft_id id, const char *address){
  static RaftInitFn xReal = 0;
  int rc;
  if( xReal==0 ){
    xReal = (RaftInitFn)dlsym(RTLD_NEXT, "raft_init");
    if( xReal==0 ) return RAFT_NOTFOUND;
  }
  rc = xReal(r, io, fsm, id, address);
  if( rc==0 && io->start!=0 && !atomic_flag_test_and_set(&followClaimed) ){
    pFollowedIo = io;
    xOrigStart = io->start;
    io->start = vdbnodeStart;
    atomic_store(&hooked, 1);
  }
  return rc;
}

/*
** Copies the followed node's figures as of raft's last tick. Returns 1
** with the figures set; 0 before the first tick; -1 if raft_init never came
** through this file (no figures will ever come).
*/
int vdbnodeRaftIndexes(uint64_t *pApplied, uint64_t *pCommit,
                       uint64_t *pLast, uint64_t *pTerm){
  if( !atomic_load(&hooked) ) return -1;
  if( !atomic_load(&seen) ) return 0;
  *pApplied = atomic_load(&aApplied);
  *pCommit = atomic_load(&aCommit);
  *pLast = atomic_load(&aLast);
  *pTerm = atomic_load(&aTerm);
  return 1;
}
