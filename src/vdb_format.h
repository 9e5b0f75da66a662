/*
** The on-disk format of a vectordb table: the one place that describes it.
** Other files name the constants below and point here instead of
** restating the layout.
**
** ---- Shadow tables -------------------------------------------------------
**
** A table T in schema S is the virtual table plus these ordinary tables in
** S, each written by exactly one module (its owner):
**
**   T_info(key TEXT PRIMARY KEY, value) WITHOUT ROWID           owner: store
**       small integer and text values under the keys listed below.
**   T_rows(rowid INTEGER PRIMARY KEY, chunk_id INTEGER NOT NULL,
**          chunk_offset INTEGER NOT NULL, [pk TEXT NOT NULL UNIQUE],
**          c<i> <type>, ...)                                      owner: store
**       one row per user row: the slot holding its vectors, the text
**       primary key when one is declared, and the value of every
**       non-vector column, as column c<i> where i is the column's position
**       among the declared columns (primary key excluded). <type> is
**       INTEGER (integer, boolean), REAL, TEXT, BLOB or none (an auxiliary
**       column without a type). Partition-key columns have an index named
**       vectordb_<token>_c<i> (see "index names" below).
**   T_chunks(chunk_id INTEGER PRIMARY KEY, validity BLOB NOT NULL,
**            rowids BLOB NOT NULL)                               owner: store
**       slot allocation, chunk_size slots per chunk; chunk ids are
**       max(chunk_id)+1 when a chunk is added, a chunk with no live slot is
**       deleted.
**   T_free(chunk_id INTEGER PRIMARY KEY)                         owner: store
**       the chunks that have at least one free slot; an insert takes the
**       lowest free slot of the lowest such chunk.
**   T_vectorsNN(chunk_id INTEGER PRIMARY KEY, vectors BLOB NOT NULL)
**                                                                 owner: store
**       NN = 00..15, one table per vector column in declaration order; a
**       row for every T_chunks row.
**   T_hnswNN(nid INTEGER PRIMARY KEY, rowid INTEGER NOT NULL,
**            chunk_id INTEGER NOT NULL, chunk_offset INTEGER NOT NULL,
**            level INTEGER NOT NULL, links BLOB NOT NULL)     owner: hnsw kind
**       only for vector column NN declared INDEXED BY hnsw(...): one row per
**       graph node, with a UNIQUE index vectordb_<token>_hnswNN_rowid on
**       rowid and an index vectordb_<token>_hnswNN_level on level (from
**       format 3 a partial index, WHERE level>0: only the nodes above the
**       bottom layer, about 1 in m, are ever looked up by level).
**       nid is allocated from T_info's hnswNN_next_nid and never reused,
**       so no edge can alias a later node; (chunk_id, chunk_offset) is the
**       row's slot, which never moves while the node lives (a new vector
**       gets a new node). Node ids are 64-bit; vdb_index_hnsw.c keeps a
**       flat in-memory table for ids below 2^24 and a hash above.
**   T_hnswlogNN(seq INTEGER PRIMARY KEY, changes BLOB)     owner: hnsw kind
**       (format 2) the graph's change log: one row per flush of the graph
**       that changed anything, seq counting up by one from 1; the latest
**       VDB_HNSW_LOG_KEEP rows are kept. A connection that cached part of
**       the graph and sees that another connection committed reads the
**       rows after the last seq it knows, drops only the nodes they name
**       and reads again only the vectors they name; a gap in seq, a row whose changes is
**       NULL, or a last-applied row whose bytes changed, means "reload
**       everything". The process-wide shared copy of an index
**       (vdb_index_hnsw.h) follows the log the same way.
**   The flat index kind has no shadow table.
**
** Index names: CREATE INDEX names cannot follow ALTER TABLE RENAME (an
** index cannot be dropped while the ALTER runs), so they carry a random
** 16-hex-digit <token> drawn at CREATE VIRTUAL TABLE instead of the table
** name, and stay unique whatever the table is later called.
**
** ---- T_info keys ---------------------------------------------------------
**
**   format              integer: the format version (VDB_FORMAT_VERSION)
**   layout              text: the layout signature (below)
**   ef_search, cache_mb integer: table settings stored by commands
**                       (INSERT INTO T(T) VALUES ('ef_search=N')); absent
**                       means the declared default. Their ranges are in the
**                       index kinds' parameter tables (vdb_index_hnsw.c);
**                       a value out of range is ignored on connect and
**                       reported by the integrity check.
**   hnswNN_entry        integer: the graph's entry point nid (absent when
**                       the graph is empty)
**   hnswNN_entry_level  integer: that node's level, 0..VDB_HNSW_MAX_LEVEL
**   hnswNN_next_nid     integer: the next node id to allocate, >= 1
**
** ---- BLOB layouts ----------------------------------------------------------
**
** Every integer inside a BLOB is little-endian (vdbGetLe64, vdbPutLe64).
**   T_chunks.validity   chunk_size/8 bytes; slot j is live iff bit j%8 of
**                       byte j/8 is set.
**   T_chunks.rowids     chunk_size x int64: the rowid in slot j; 0 in a
**                       free slot.
**   T_vectorsNN.vectors chunk_size x the column's vector size, slot j at
**                       offset j x size: float32 as IEEE-754 binary32, int8
**                       as bytes, bit vectors packed LSB-first (element i
**                       is bit i%8 of byte i/8). Free slots are zero.
**   T_hnswlogNN.changes 24-byte entries: a node id, then the chunk_id and
**                       slot offset whose vector changed with it (a node
**                       created or removed), or 0 and 0 (only its links or
**                       rowid changed); NULL when the flush changed more
**                       nodes than VDB_HNSW_LOG_MAX_ENTRIES (a bulk load).
**                       Rows written since the shared index (2026-12) start
**                       with an entry of node id 0 and chunk_id 0 whose
**                       third field is random: readers skip it (older
**                       builds do too, finding no node 0 and no chunk 0);
**                       it makes each row's bytes unique, so a cache that
**                       remembers a hash of the last row it applied can tell
**                       when that row was rewritten (a restore from a backup
**                       followed by new commits) and reload instead.
**   T_hnswNN.links      format 3: for each layer 0..level, in order, a
**                       varint link count n (at most cap(layer): 3M on
**                       layer 0, M above, vdbHnswLayerCap), then the n
**                       linked node ids in ascending order as varints: the
**                       first id itself, then each id less the one before
**                       it (so at least 1: no link repeats). The BLOB ends
**                       exactly after layer `level`. Ids are below 2^63.
**                       At 1M nodes a layer-0 link takes 2.7 bytes on
**                       average instead of 8, and a node's row holds its
**                       links only, not its free slots.
**                       Formats 1 and 2: for each layer, a uint16 link
**                       count n, then cap(layer) int64 node ids of which
**                       the first n are links (in any order) and the rest
**                       zero, so the BLOB's size follows from (M, level).
**   varint              LEB128, unsigned: 7 bits per byte, least
**                       significant group first, the high bit set on every
**                       byte but the last; at most 9 bytes (63 bits), and
**                       no final byte of zero after the first (one
**                       encoding per value).
**
** ---- Layout signature -----------------------------------------------------
**
** T_info's layout is the declaration's storage-relevant part, checked on
** every connect so a declaration that no longer matches the tables (a
** schema edited by hand) is refused instead of misread:
**
**   chunk=<chunk_size>;pk=<none|integer|text>
**   (chunk_size is the declared one or the default, whose rule has changed
**   between builds: a declaration without chunk_size takes the stored
**   value when it is one such a declaration could have; vdb_vtab.c)
**   then, for each declared column in order:
**     ;v:<float32|int8|bit>[<dims>]<index part>   a vector column
**     ;P:<type>  ;M:<type>  ;A:<type>             partition, metadata, aux
**   where <type> is integer, float, text, boolean, blob or any, and the
**   index part is the kind's own: empty for flat,
**   :hnsw(<m>,<ef_construction>,<metric>) for hnsw.
**
** ---- Versions ---------------------------------------------------------------
**
**   1   the first version.
**   2   adds T_hnswlogNN. A build that does not log would let other
**       connections keep stale nodes, so format 1 builds must refuse it.
**       This build reads and writes both: a format 1 table has no log, and
**       its readers drop their whole graph cache when another connection
**       commits, as format 1 builds did.
**   3   T_hnswNN.links as varints without free slots, and the level index
**       partial (above). About 2.4x smaller graph rows at 1M x 128; a
**       format 2 reader would misread the links, hence the new number.
**       This build reads and writes formats 1 to 3, each in its own
**       layout (a table keeps its format); new tables are format 3.
**
** A reader refuses a table whose format it does not know: xConnect fails
** with SQLITE_ERROR "vectordb table T has storage format N; this build
** reads formats 1 to 3", and nothing is read or written. A missing format
** key is SQLITE_CORRUPT_VTAB. A change that an older build would misread
** gets a new version number and a line above; a reader never guesses.
*/
#ifndef VDB_FORMAT_H
#define VDB_FORMAT_H
#include "vdb_sqlite.h"

#define VDB_FORMAT_VERSION 3      /* what new tables get */
#define VDB_FORMAT_OLDEST  1      /* the oldest this build reads */

/* The hnsw change log (format 2): rows kept, and the most node entries
** one row lists before it says "reload everything" instead. */
#define VDB_HNSW_LOG_KEEP        1024
#define VDB_HNSW_LOG_MAX_ENTRIES 1024

/* T_info keys of the table itself (index kinds prefix theirs, e.g. hnsw00_). */
#define VDB_INFO_FORMAT  "format"
#define VDB_INFO_LAYOUT  "layout"

/* Columns of T_rows before the declared ones, in order. */
#define VDB_ROWS_COL_ROWID   0
#define VDB_ROWS_COL_CHUNK   1
#define VDB_ROWS_COL_OFFSET  2
#define VDB_ROWS_COL_PK      3      /* only with a text primary key */

/* Hex digits of the random token in index names. */
#define VDB_INDEX_TOKEN_CHARS 16

/* Little-endian 64-bit integers, the byte order of every integer stored
** in a shadow-table BLOB. */
static inline sqlite3_int64 vdbGetLe64(const unsigned char *a){
  sqlite3_uint64 v = 0;
  int i;
  for(i=7; i>=0; i--) v = (v<<8) | a[i];
  return (sqlite3_int64)v;
}
static inline void vdbPutLe64(unsigned char *a, sqlite3_int64 x){
  int i;
  for(i=0; i<8; i++) a[i] = (unsigned char)((sqlite3_uint64)x >> (8*i));
}

/* Varints (format 3 link lists). VDB_VARINT_MAX bytes hold any value
** below 2^63. vdbPutVarint returns the bytes written; vdbGetVarint the
** bytes read, or 0 when a[0..n) does not start with a well-formed varint
** (truncated, longer than VDB_VARINT_MAX, or not the shortest encoding). */
#define VDB_VARINT_MAX 9
static inline int vdbPutVarint(unsigned char *a, sqlite3_uint64 x){
  int n = 0;
  while( x>=0x80 ){
    a[n++] = (unsigned char)(x | 0x80);
    x >>= 7;
  }
  a[n++] = (unsigned char)x;
  return n;
}
static inline int vdbGetVarint(const unsigned char *a, int n, sqlite3_uint64 *pX){
  sqlite3_uint64 x = 0;
  int i;
  for(i=0; i<n && i<VDB_VARINT_MAX; i++){
    x |= (sqlite3_uint64)(a[i] & 0x7f) << (7*i);
    if( (a[i] & 0x80)==0 ){
      if( a[i]==0 && i>0 ) return 0;
      *pX = x;
      return i+1;
    }
  }
  return 0;
}

#endif
