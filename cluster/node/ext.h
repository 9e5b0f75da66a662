/*
** The node host's C side: registers vectordb and the authorizer for every
** connection dqlite opens in this process; follows this node's raft
** indexes (raftidx.c).
*/
#ifndef VDBNODE_EXT_H
#define VDBNODE_EXT_H
#include <stdint.h>
int vdbnodeRegister(void);
int vdbnodeStatementCount(const char *z);
int vdbnodeRaftIndexes(uint64_t *pApplied, uint64_t *pCommit,
                       uint64_t *pLast, uint64_t *pTerm);
#endif
