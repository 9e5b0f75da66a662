// vectordb-node: a dqlite node with vectordb registered on every
// connection, and an HTTP/JSON API that runs SQL on the leader.
//
// The C side (ext.c) registers vectordb and an authorizer through
// sqlite3_auto_extension before dqlite starts, so every connection dqlite
// opens to serve clients has both. The Go side uses go-dqlite's app package
// (node start, joining, leadership hand-over on shutdown) and its
// database/sql driver (which finds the leader and follows it).
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../src -Wall -Wextra
#cgo LDFLAGS: ${SRCDIR}/../../libvectordb.a -lsqlite3 -lraft -ldl -lm
#include <stdlib.h>
#include "ext.h"
*/
import "C"

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/canonical/go-dqlite"
	"github.com/canonical/go-dqlite/app"
	"github.com/canonical/go-dqlite/client"
)

// statementCount is 0, 1, or 2 for two or more statements (ext.c).
func statementCount(q string) int {
	cs := C.CString(q)
	defer C.free(unsafe.Pointer(cs))
	return int(C.vdbnodeStatementCount(cs))
}

// raftIndexes returns this node's raft figures as of raft's last tick
// (raftidx.c): the index of the last entry applied to the database, the
// commit index, the last index in the local log, and the term. ok is false
// before the first tick, or if the hook did not take (then never true).
func raftIndexes() (applied, commit, last, term uint64, ok bool) {
	var a, c, l, t C.uint64_t
	if C.vdbnodeRaftIndexes(&a, &c, &l, &t) != 1 {
		return 0, 0, 0, 0, false
	}
	return uint64(a), uint64(c), uint64(l), uint64(t), true
}

// raftHooked reports whether raft_init came through raftidx.c.
func raftHooked() bool {
	var a, c, l, t C.uint64_t
	return C.vdbnodeRaftIndexes(&a, &c, &l, &t) >= 0
}

type config struct {
	id            uint64
	address       string
	dir           string
	join          []string
	latency       time.Duration
	httpAddr      string
	httpPublic    bool
	tokensFile    string
	noAuth        bool
	certFile      string
	keyFile       string
	dbName        string
	maxBody       int64
	bulkRows      int
	bulkBytes     int64
	reqTimeout    time.Duration
	snapEvery     uint64
	snapKeep      uint64
	statsInterval time.Duration
	verbose       bool
}

func parseFlags() (*config, error) {
	c := &config{}
	var join string
	var latencyMs int
	flag.Uint64Var(&c.id, "id", 0, "node id of a node that joins (default: derived from -address); the first node always takes dqlite's bootstrap id")
	flag.StringVar(&c.address, "address", "", "raft address to bind, host:port (required)")
	flag.StringVar(&c.dir, "dir", "", "data directory: raft log and snapshots (required)")
	flag.StringVar(&join, "join", "", "comma-separated addresses of running nodes to join (empty: start a new cluster)")
	flag.IntVar(&latencyMs, "latency", 20, "expected network round trip in ms; heartbeat is 1.5x and election timeout 15x this")
	flag.StringVar(&c.httpAddr, "http", "127.0.0.1:8001", "HTTP API address")
	flag.BoolVar(&c.httpPublic, "http-public", false, "allow -http on an address other than loopback")
	flag.StringVar(&c.tokensFile, "tokens", "", "bearer tokens file: one 'TOKEN ro|rw' per line")
	flag.BoolVar(&c.noAuth, "no-auth", false, "serve without tokens (every request read-write); only with a loopback -http")
	flag.StringVar(&c.certFile, "tls-cert", "", "TLS certificate (PEM) for the HTTP API")
	flag.StringVar(&c.keyFile, "tls-key", "", "TLS private key (PEM) for the HTTP API")
	flag.StringVar(&c.dbName, "db", "vectordb", "name of the replicated database")
	flag.Int64Var(&c.maxBody, "max-body", 16<<20, "largest request body in bytes")
	flag.IntVar(&c.bulkRows, "bulk-rows", 100, "most rows per transaction of a /bulk load")
	flag.Int64Var(&c.bulkBytes, "bulk-bytes", 1<<20, "most bytes of values per transaction of a /bulk load")
	flag.DurationVar(&c.reqTimeout, "timeout", 10*time.Second, "deadline of one request, including finding a leader")
	flag.Uint64Var(&c.snapEvery, "snapshot-every", 256, "raft entries between snapshots (dqlite: 1024)")
	flag.Uint64Var(&c.snapKeep, "snapshot-keep", 256, "raft entries kept after a snapshot, for followers that fall behind (dqlite: 8192)")
	flag.DurationVar(&c.statsInterval, "stats-interval", 10*time.Second, "/metrics reads the index figures (vectordb_stats on the leader) at most this often")
	flag.BoolVar(&c.verbose, "v", false, "log dqlite's debug messages")
	flag.Parse()
	if flag.NArg() != 0 {
		return nil, fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if c.address == "" || c.dir == "" {
		return nil, errors.New("-address and -dir are required")
	}
	if _, _, err := net.SplitHostPort(c.address); err != nil {
		return nil, fmt.Errorf("-address %q: %v", c.address, err)
	}
	if join != "" {
		for _, a := range strings.Split(join, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.join = append(c.join, a)
			}
		}
	}
	if c.id != 0 && len(c.join) == 0 {
		return nil, errors.New("-id is for a node that joins (-join); the first node takes dqlite's bootstrap id")
	}
	if latencyMs < 1 || latencyMs > 10000 {
		return nil, fmt.Errorf("-latency %d: must be 1 to 10000 ms", latencyMs)
	}
	c.latency = time.Duration(latencyMs) * time.Millisecond
	host, _, err := net.SplitHostPort(c.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("-http %q: %v", c.httpAddr, err)
	}
	loop := false
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		loop = true
	} else if host == "localhost" {
		loop = true
	}
	if !loop && !c.httpPublic {
		return nil, fmt.Errorf("-http %q is not a loopback address: add -http-public to serve on it", c.httpAddr)
	}
	if c.tokensFile == "" && !c.noAuth {
		return nil, errors.New("give -tokens FILE, or -no-auth for an open loopback API")
	}
	if c.noAuth && (!loop || c.tokensFile != "") {
		return nil, errors.New("-no-auth needs a loopback -http and no -tokens")
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	if c.maxBody < 1024 {
		return nil, errors.New("-max-body must be at least 1024")
	}
	if c.snapEvery < 1 || c.snapKeep < 1 {
		return nil, errors.New("-snapshot-every and -snapshot-keep must be at least 1")
	}
	if c.statsInterval < time.Second || c.statsInterval > time.Hour {
		return nil, errors.New("-stats-interval must be 1s to 1h")
	}
	if c.bulkRows < 1 || c.bulkBytes < 1024 {
		return nil, errors.New("-bulk-rows must be at least 1 and -bulk-bytes at least 1024")
	}
	return c, nil
}

// seedJoinID writes the node's identity before app.New reads it, so a
// joining node takes the id given with -id. The files are those app.New
// writes itself for a joining node (info.yaml, cluster.yaml, join).
func seedJoinID(c *config) error {
	if c.id == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(c.dir, "info.yaml")); err == nil {
		return nil // an existing node keeps its id
	}
	if c.id == dqlite.BootstrapID {
		return errors.New("-id: the bootstrap id is reserved for the first node")
	}
	info := fmt.Sprintf("ID: %d\nAddress: %s\nRole: 0\n", c.id, c.address)
	var store strings.Builder
	for _, a := range c.join {
		fmt.Fprintf(&store, "- Address: %s\n  ID: 0\n  Role: 0\n", a)
	}
	if err := ioutil.WriteFile(filepath.Join(c.dir, "info.yaml"), []byte(info), 0600); err != nil {
		return err
	}
	if err := ioutil.WriteFile(filepath.Join(c.dir, "cluster.yaml"), []byte(store.String()), 0600); err != nil {
		return err
	}
	return ioutil.WriteFile(filepath.Join(c.dir, "join"), nil, 0600)
}

func main() {
	log.SetFlags(log.Ldate | log.Ltime | log.Lmicroseconds | log.LUTC)
	log.SetPrefix("vectordb-node ")
	c, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vectordb-node:", err)
		os.Exit(2)
	}
	if rc := C.vdbnodeRegister(); rc != 0 {
		log.Fatalf("sqlite3_auto_extension failed: %d", int(rc))
	}
	if err := os.MkdirAll(c.dir, 0700); err != nil {
		log.Fatalf("data directory: %v", err)
	}
	if err := seedJoinID(c); err != nil {
		log.Fatalf("node id: %v", err)
	}
	var tokens *tokenSet
	if c.tokensFile != "" {
		if tokens, err = loadTokens(c.tokensFile); err != nil {
			log.Fatalf("tokens: %v", err)
		}
	}

	// Bind the HTTP port first: a port in use is an error before the node
	// joins anything.
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		log.Fatalf("http: %v", err)
	}
	if c.certFile != "" {
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			log.Fatalf("tls: %v", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}

	logFunc := func(l client.LogLevel, format string, a ...interface{}) {
		if l >= client.LogWarn || c.verbose {
			log.Printf("dqlite %s: %s", l.String(), fmt.Sprintf(format, a...))
		}
	}
	opts := []app.Option{
		app.WithAddress(c.address),
		app.WithNetworkLatency(c.latency),
		app.WithLogFunc(logFunc),
		app.WithRolesAdjustmentFrequency(2 * time.Second),
		app.WithSnapshotParams(dqlite.SnapshotParams{Threshold: c.snapEvery, Trailing: c.snapKeep}),
	}
	if len(c.join) > 0 {
		opts = append(opts, app.WithCluster(c.join))
	}
	node, err := app.New(c.dir, opts...)
	if err != nil {
		log.Fatalf("start node: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	err = node.Ready(ctx)
	cancel()
	if err != nil {
		log.Fatalf("node not ready: %v", err)
	}
	if !raftHooked() {
		log.Printf("raft indexes unavailable: libdqlite's raft_init did not come through raftidx.c; /health reports them as null")
	}
	db, err := node.Open(context.Background(), c.dbName)
	if err != nil {
		log.Fatalf("open database: %v", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(30 * time.Second)

	s := newServer(c, node, db, tokens)
	go s.watchLeader()
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(ioutil.Discard, "", 0),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Fatalf("http: %v", err)
		}
	}()
	log.Printf("node %d raft %s http %s database %q ready", node.ID(), c.address, ln.Addr(), c.dbName)

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	log.Printf("shutting down")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	srv.Shutdown(ctx)
	cancel()
	s.stop()
	db.Close()
	// Hand leadership and the vote over to another node, then stop.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	if err := node.Handover(ctx); err != nil {
		log.Printf("handover: %v", err)
	}
	cancel()
	if err := node.Close(); err != nil {
		log.Printf("close: %v", err)
	}
	log.Printf("stopped")
}
