/*
** The node host's C side: registers vectordb and the authorizer for every
** connection dqlite opens in this process.
*/
#ifndef VDBNODE_EXT_H
#define VDBNODE_EXT_H
int vdbnodeRegister(void);
int vdbnodeStatementCount(const char *z);
#endif
