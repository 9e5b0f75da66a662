// vectordb-clustertest: starts a three-node vectordb cluster on 127.0.0.1,
// kills leaders under writes and searches, and checks that nothing that
// was acknowledged is lost.
//
//	vectordb-clustertest -node build/vectordb-node -kills 1    (make test)
//	vectordb-clustertest -node build/vectordb-node -kills 20   (make clustertest)
//
// Every node is started in its own process group with a parent-death
// signal, and killed on every exit path. Ends with "N passed, N failed".
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"math"
	"math/big"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/canonical/go-dqlite/client"
	"github.com/canonical/go-dqlite/driver"
)

const (
	rwToken = "rw-token-0123456789abcdef"
	roToken = "ro-token-0123456789abcdef"
	dim     = 8
	dbName  = "vectordb"
)

var (
	nodeBin  = flag.String("node", "build/vectordb-node", "the vectordb-node binary")
	kills    = flag.Int("kills", 1, "leader kills")
	deadline = flag.Duration("deadline", 25*time.Second, "the whole run must end within this")
	keep     = flag.Bool("keep", false, "keep the temporary directory (logs) even when all passed")
	verbose  = flag.Bool("v", false, "print progress")
	extra    = flag.String("node-flags", "", "more options for every node, space-separated")
	passed   int
	failed   int
	runEnd   time.Time
)

func check(ok bool, name string, format string, a ...interface{}) bool {
	if ok {
		passed++
		fmt.Printf("ok - %s\n", name)
	} else {
		failed++
		fmt.Printf("FAIL - %s: %s\n", name, fmt.Sprintf(format, a...))
	}
	return ok
}

func logf(format string, a ...interface{}) {
	if *verbose {
		fmt.Printf("# "+time.Now().Format("15:04:05.000 ")+format+"\n", a...)
	}
}

// ---- nodes -------------------------------------------------------------------

type node struct {
	idx      int
	raft     string
	http     string
	dir      string
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
	extra    []string
	joinAddr string
}

type cluster struct {
	tmp   string
	nodes []*node
	mu    sync.Mutex // guards cmd/exited of every node and alive
	alive map[int]bool
	hc    *http.Client
	// unexpected lists nodes that exited while they should have run.
	unexpected []string
}

// freePorts asks the kernel for n distinct free ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := []int{}
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *cluster) start(n *node) error {
	args := []string{"-address", n.raft, "-dir", n.dir, "-http", n.http,
		"-tokens", filepath.Join(c.tmp, "tokens"), "-latency", "20",
		"-max-body", "1048576", "-bulk-rows", "100", "-timeout", "5s", "-stats-interval", "1s"}
	if n.joinAddr != "" {
		args = append(args, "-join", n.joinAddr)
	}
	args = append(args, n.extra...)
	args = append(args, strings.Fields(*extra)...)
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0600)
	if err != nil {
		return err
	}
	cmd := exec.Command(*nodeBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		f.Close()
		c.mu.Lock()
		expected := !c.alive[n.idx] || n.cmd != cmd
		c.mu.Unlock()
		if !expected {
			// Nothing here stops a node without first marking it dead.
			c.mu.Lock()
			c.unexpected = append(c.unexpected, fmt.Sprintf("node %d (pid %d) exited on its own at %s: %v",
				n.idx+1, cmd.Process.Pid, time.Now().Format("15:04:05.000"), err))
			c.mu.Unlock()
		}
		close(exited)
	}()
	c.mu.Lock()
	n.cmd, n.exited = cmd, exited
	c.alive[n.idx] = true
	c.mu.Unlock()
	return nil
}

func (c *cluster) kill(n *node, sig syscall.Signal) {
	c.mu.Lock()
	cmd, exited := n.cmd, n.exited
	delete(c.alive, n.idx)
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

func (c *cluster) running(n *node) bool {
	c.mu.Lock()
	exited := n.exited
	c.mu.Unlock()
	if exited == nil {
		return false
	}
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

func (c *cluster) killAll() {
	for _, n := range c.nodes {
		c.kill(n, syscall.SIGKILL)
	}
}

func (c *cluster) aliveNodes() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node
	for _, n := range c.nodes {
		if c.alive[n.idx] {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) byRaft(addr string) *node {
	for _, n := range c.nodes {
		if n.raft == addr {
			return n
		}
	}
	return nil
}

func (c *cluster) store() client.NodeStore {
	s := client.NewInmemNodeStore()
	var infos []client.NodeInfo
	for _, n := range c.nodes {
		infos = append(infos, client.NodeInfo{Address: n.raft})
	}
	s.Set(context.Background(), infos)
	return s
}

func quietLog(client.LogLevel, string, ...interface{}) {}

// leader returns the leader's raft address as the cluster reports it.
func (c *cluster) leader(ctx context.Context) (string, error) {
	cli, err := client.FindLeader(ctx, c.store(), client.WithLogFunc(quietLog))
	if err != nil {
		return "", err
	}
	defer cli.Close()
	info, err := cli.Leader(ctx)
	if err != nil {
		return "", err
	}
	if info == nil {
		return "", errors.New("no leader")
	}
	return info.Address, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	if end.After(runEnd) {
		end = runEnd
	}
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- HTTP --------------------------------------------------------------------

type reply struct {
	status int
	body   map[string]interface{}
	raw    string
}

func (c *cluster) post(n *node, path, token string, req interface{}) (*reply, error) {
	var body []byte
	switch r := req.(type) {
	case []byte:
		body = r
	default:
		body, _ = json.Marshal(req)
	}
	hr, _ := http.NewRequest(http.MethodPost, "http://"+n.http+path, bytes.NewReader(body))
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	return c.do(hr)
}

func (c *cluster) get(n *node, path, token string) (*reply, error) {
	hr, _ := http.NewRequest(http.MethodGet, "http://"+n.http+path, nil)
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	return c.do(hr)
}

func (c *cluster) do(hr *http.Request) (*reply, error) {
	resp, err := c.hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &reply{status: resp.StatusCode, raw: string(b)}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.Decode(&r.body)
	return r, nil
}

func vecJSON(v []float32) []interface{} {
	out := make([]interface{}, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}

func randVec(r *rand.Rand) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func blob(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// ---- the run -----------------------------------------------------------------

func main() {
	flag.Parse()
	runEnd = time.Now().Add(*deadline)
	code := run()
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if code == 0 && failed > 0 {
		code = 1
	}
	os.Exit(code)
}

func run() int {
	tmp, err := ioutil.TempDir("", "vectordb-cluster-")
	if err != nil {
		check(false, "temporary directory", "%v", err)
		return 1
	}
	c := &cluster{tmp: tmp, alive: map[int]bool{},
		hc: &http.Client{Timeout: 8 * time.Second}}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sig
		c.killAll()
		fmt.Printf("interrupted; logs in %s\n", tmp)
		os.Exit(1)
	}()
	// A watchdog: past the deadline nothing is left running.
	go func() {
		time.Sleep(time.Until(runEnd) + 15*time.Second)
		c.killAll()
		fmt.Printf("FAIL - deadline: the run did not end in time; logs in %s\n", tmp)
		fmt.Printf("%d passed, %d failed\n", passed, failed+1)
		os.Exit(1)
	}()
	defer func() {
		c.killAll()
		if failed == 0 && !*keep {
			os.RemoveAll(tmp)
		} else {
			fmt.Printf("# node logs in %s\n", tmp)
		}
	}()
	err = scenario(c)
	c.mu.Lock()
	gone := append([]string(nil), c.unexpected...)
	c.mu.Unlock()
	check(len(gone) == 0, "no node exited on its own", "%s", strings.Join(gone, "; "))
	if err != nil {
		check(false, "scenario", "%v", err)
		return 1
	}
	return 0
}

func scenario(c *cluster) error {
	tokens := fmt.Sprintf("# test tokens\n%s rw\n%s ro\n", rwToken, roToken)
	if err := ioutil.WriteFile(filepath.Join(c.tmp, "tokens"), []byte(tokens), 0600); err != nil {
		return err
	}
	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		n := &node{idx: i, raft: fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			http:    fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			dir:     filepath.Join(c.tmp, fmt.Sprintf("node%d", i+1)),
			logPath: filepath.Join(c.tmp, fmt.Sprintf("node%d.log", i+1))}
		if i > 0 {
			n.joinAddr = c.nodes[0].raft
		}
		if i == 2 {
			n.extra = []string{"-id", "4242"}
		}
		c.nodes = append(c.nodes, n)
	}

	// Form the cluster: the first node bootstraps, the others join.
	t0 := time.Now()
	for _, n := range c.nodes {
		if err := c.start(n); err != nil {
			return err
		}
		ok := waitFor(20*time.Second, func() bool {
			r, err := c.get(n, "/health", roToken)
			return err == nil && r.status == 200
		})
		if !check(ok, fmt.Sprintf("node %d answers /health", n.idx+1), "not within the deadline") {
			return errors.New("cluster did not form")
		}
	}
	ok := waitFor(20*time.Second, func() bool { return c.voters() == 3 })
	if !check(ok, "three voters", "have %d", c.voters()) {
		return errors.New("cluster did not form")
	}
	fmt.Printf("# cluster formed in %.2f s\n", time.Since(t0).Seconds())
	_, desc := c.roles()
	r, err := c.get(c.nodes[2], "/health", roToken)
	check(err == nil && fmt.Sprint(r.body["id"]) == "4242", "-id gives a joining node its id", "%v %s (%s)", err, statusOf(r), desc)

	db, err := c.driverDB()
	if err != nil {
		return err
	}
	defer db.Close()

	if err := setup(c); err != nil {
		return err
	}
	accessChecks(c, db)
	metricsChecks(c)
	raftIndexChecks(c)
	before, err := knnAll(c, c.nodes[0])
	if !check(err == nil, "KNN before the kills", "%v", err) {
		return err
	}
	st := &stats{}
	failovers := killLoop(c, db, st)
	verify(c, db, st, before)
	appliedConverge(c)
	report(st, failovers)
	return tlsCheck(c)
}

// tlsCheck starts a one-node cluster serving HTTPS with a certificate
// made here, and reads /health through it with that certificate trusted.
func tlsCheck(c *cluster) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vectordb test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(c.tmp, "cert.pem"), filepath.Join(c.tmp, "key.pem")
	ioutil.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0600)
	ioutil.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0600)
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	n := &node{idx: len(c.nodes), raft: fmt.Sprintf("127.0.0.1:%d", ports[0]), http: fmt.Sprintf("127.0.0.1:%d", ports[1]),
		dir: filepath.Join(c.tmp, "tls"), logPath: filepath.Join(c.tmp, "tls.log"),
		extra: []string{"-tls-cert", certPath, "-tls-key", keyPath}}
	c.nodes = append(c.nodes, n)
	if err := c.start(n); err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(der))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var status int
	ok := waitFor(20*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, "https://"+n.http+"/health", nil)
		req.Header.Set("Authorization", "Bearer "+roToken)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		status = resp.StatusCode
		return status == 200
	})
	check(ok, "HTTPS with -tls-cert/-tls-key", "status %d", status)
	r, err := c.get(n, "/health", roToken)
	check(err != nil || r.status != 200, "plain HTTP on the TLS port is not served", "%s", statusOf(r))
	c.kill(n, syscall.SIGTERM)
	return nil
}

func mustParse(der []byte) *x509.Certificate {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return cert
}

// voters counts the voters of the cluster's configuration that run.
// go-dqlite's app demotes a voter that is down to spare and promotes it
// again when it is back, so this is 3 only when all three are back.
func (c *cluster) voters() int {
	v, _ := c.roles()
	return v
}

func (c *cluster) roles() (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cli, err := client.FindLeader(ctx, c.store(), client.WithLogFunc(quietLog))
	if err != nil {
		return 0, err.Error()
	}
	defer cli.Close()
	nodes, err := cli.Cluster(ctx)
	if err != nil {
		return 0, err.Error()
	}
	v := 0
	var desc []string
	for _, n := range nodes {
		m := c.byRaft(n.Address)
		up := m != nil && c.running(m)
		if n.Role == client.Voter && up {
			v++
		}
		desc = append(desc, fmt.Sprintf("%s %s running=%v", n.Address, n.Role, up))
	}
	return v, strings.Join(desc, "; ")
}

func (c *cluster) driverDB() (*sql.DB, error) {
	drv, err := driver.New(c.store(), driver.WithLogFunc(quietLog),
		driver.WithAttemptTimeout(2*time.Second), driver.WithConnectionTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	sql.Register("dqlite-test", drv)
	db, err := sql.Open("dqlite-test", dbName)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	return db, nil
}

// setup creates two indexed tables: 'frozen', which no one writes after
// the load (its KNN answers must not change), and 'items', written during
// the kills.
func setup(c *cluster) error {
	n := c.nodes[1]
	for _, q := range []string{
		"CREATE VIRTUAL TABLE frozen USING vectordb(embedding float[8] INDEXED BY hnsw(m=8, ef_construction=64), tag integer)",
		"CREATE VIRTUAL TABLE items USING vectordb(embedding float[8] INDEXED BY hnsw(m=8, ef_construction=64), tag integer)",
	} {
		r, err := c.post(n, "/sql", rwToken, map[string]interface{}{"sql": q})
		if err != nil || r.status != 200 {
			return fmt.Errorf("create: %v %v", err, r)
		}
	}
	rnd := rand.New(rand.NewSource(1))
	rows := [][]interface{}{}
	for i := 1; i <= 500; i++ {
		rows = append(rows, []interface{}{i, vecJSON(randVec(rnd)), i % 5})
	}
	r, err := c.post(n, "/bulk", rwToken, map[string]interface{}{
		"table": "frozen", "columns": []string{"rowid", "embedding", "tag"}, "rows": rows})
	ok := err == nil && r.status == 200 && fmt.Sprint(r.body["rows"]) == "500" && fmt.Sprint(r.body["transactions"]) == "5"
	check(ok, "bulk load of 500 rows splits into 5 transactions of 100", "%v %v", err, r)
	if !ok {
		return errors.New("bulk load failed")
	}
	return nil
}

// knnAll runs the same 20 searches (with and without a filter) on frozen.
func knnAll(c *cluster, n *node) ([]string, error) {
	rnd := rand.New(rand.NewSource(2))
	var out []string
	for i := 0; i < 20; i++ {
		req := map[string]interface{}{"table": "frozen", "vector": vecJSON(randVec(rnd)), "k": 10}
		if i%2 == 1 {
			req["filters"] = map[string]interface{}{"tag": []int{1, 3}}
		}
		r, err := c.post(n, "/search", roToken, req)
		if err != nil {
			return nil, err
		}
		if r.status != 200 {
			return nil, fmt.Errorf("search: %d %s", r.status, r.raw)
		}
		rows, _ := r.body["rows"].([]interface{})
		if len(rows) != 10 {
			return nil, fmt.Errorf("search %d: %d rows", i, len(rows))
		}
		out = append(out, fmt.Sprint(rows))
	}
	return out, nil
}

// accessChecks: tokens, the authorizer, the body limit, bad requests.
func accessChecks(c *cluster, db *sql.DB) {
	n := c.nodes[2]
	ins := map[string]interface{}{"sql": "INSERT INTO frozen(rowid, embedding, tag) VALUES (?, ?, 0)",
		"params": []interface{}{9001, vecJSON(make([]float32, dim))}}
	r, err := c.post(n, "/sql", "", ins)
	check(err == nil && r.status == 401, "no token: 401", "%v %v", err, r)
	r, err = c.post(n, "/sql", "not-a-known-token-at-all", ins)
	check(err == nil && r.status == 401, "unknown token: 401", "%v %v", err, r)
	r, err = c.post(n, "/sql", roToken, ins)
	check(err == nil && r.status == 403, "read-only token refused an INSERT: 403", "%v %v", err, r)
	r, err = c.post(n, "/sql", roToken, map[string]interface{}{"sql": "SELECT 1; DELETE FROM frozen"})
	check(err == nil && r.status == 403, "read-only token refused two statements: 403", "%v %v", err, r)
	r, err = c.post(n, "/bulk", roToken, map[string]interface{}{"table": "frozen", "columns": []string{"tag"}, "rows": [][]int{{1}}})
	check(err == nil && r.status == 403, "read-only token refused /bulk: 403", "%v %v", err, r)
	r, err = c.post(n, "/sql", roToken, map[string]interface{}{"sql": "SELECT count(*) FROM frozen"})
	check(err == nil && r.status == 200 && strings.Contains(r.raw, "[500]"), "read-only token reads", "%v %v", err, r)

	// Crash pragmas and the rest the authorizer refuses, through HTTP with
	// a read-write token and through the dqlite driver directly.
	for _, q := range []string{"PRAGMA journal_mode=DELETE", "PRAGMA page_size=16384",
		"PRAGMA locking_mode=EXCLUSIVE", "PRAGMA journal_mode=MEMORY", "PRAGMA wal_checkpoint(TRUNCATE)",
		"ATTACH 'x.db' AS x",
		"SELECT load_extension('/nonexistent')"} {
		r, err := c.post(n, "/sql", rwToken, map[string]interface{}{"sql": q})
		check(err == nil && r.status >= 400 && r.status < 500 && strings.Contains(r.raw, "not authorized"),
			"HTTP refuses "+q, "%v %v", err, r)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = db.ExecContext(ctx, q)
		cancel()
		check(err != nil && strings.Contains(err.Error(), "not authorized"), "driver refuses "+q, "%v", err)
	}
	r, err = c.post(n, "/sql", rwToken, map[string]interface{}{"sql": "SELECT * FROM pragma_journal_mode('delete')"})
	check(err == nil && r.status == 400, "HTTP refuses the table-valued pragma_journal_mode('delete')", "%v %v", err, r)
	r, err = c.post(n, "/sql", rwToken, map[string]interface{}{"sql": "PRAGMA journal_mode"})
	check(err == nil && r.status == 200 && strings.Contains(strings.ToLower(r.raw), "wal"), "PRAGMA journal_mode reads wal", "%v %v", err, r)

	big := bytes.Repeat([]byte("x"), 2<<20)
	r, err = c.post(n, "/sql", rwToken, []byte(`{"sql":"`+string(big)+`"}`))
	check(err == nil && r.status == 413, "a 2 MiB body is refused: 413", "%v %v", err, statusOf(r))
	for _, bad := range []string{`{"sql":`, `[1,2]`, `{"sql":"SELECT ?","params":[[1,"x"]]}`,
		`{"sql":"SELECT 1","nope":1}`, `{"sql":"SELEC 1"}`, "{\"sql\":\"SELECT 1\u0000\"}"} {
		r, err = c.post(n, "/sql", rwToken, []byte(bad))
		check(err == nil && r.status == 400 && r.body["error"] != nil, "malformed request gets 400 with an error: "+strings.ReplaceAll(bad, "\x00", "\\0"), "%v %v", err, r)
	}
	r, err = c.post(n, "/search", roToken, map[string]interface{}{"table": "frozen", "vector": []float32{1, 2}, "k": 3})
	check(err == nil && r.status == 400 && strings.Contains(r.raw, "has 2 dimensions; the column has 8"), "search with a wrong dimension: SQLite's error, 400", "%v %v", err, r)
	r, err = c.post(n, "/sql", rwToken, map[string]interface{}{"sql": "INSERT INTO frozen(rowid, embedding, tag) VALUES (1, ?, 0)", "params": []interface{}{vecJSON(make([]float32, dim))}})
	check(err == nil && r.status == 409, "duplicate rowid: 409", "%v %v", err, r)

	// Every node still runs and answers.
	for _, m := range c.nodes {
		r, err := c.get(m, "/health", roToken)
		check(c.running(m) && err == nil && r.status == 200, fmt.Sprintf("node %d up after the refused requests", m.idx+1), "%v %v", err, r)
	}
	r, err = c.get(n, "/metrics", roToken)
	check(err == nil && r.status == 200 && strings.Contains(r.raw, `vectordb_graph_nodes{table="frozen",column="embedding"} 500`) &&
		strings.Contains(r.raw, `vectordb_http_requests_total{endpoint="sql",code="403"}`) &&
		strings.Contains(r.raw, `vectordb_http_request_duration_seconds_count{endpoint="search"}`) &&
		strings.Contains(r.raw, `vectordb_table_rows{table="frozen"} 500`) &&
		strings.Contains(r.raw, `vectordb_raft_role{role="`),
		"metrics: rows, graph nodes, requests by status, latency, raft role", "%v %s", err, statusOf(r))
}

// metricLine finds the sample of name{labels} in Prometheus text and
// parses its value; ok is false if it is absent or not a number.
func metricLine(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(line[len(series)+1:]), 64)
			return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
		}
	}
	return 0, false
}

// metricsChecks: the per-column graph and cache figures of /metrics are
// present and numeric, and the cache hits grow after searches (the node
// runs with -stats-interval 1s, so the figures are read again within a
// second).
func metricsChecks(c *cluster) {
	n := c.nodes[0]
	col := `{table="frozen",column="embedding"}`
	r, err := c.get(n, "/metrics", roToken)
	if !check(err == nil && r.status == 200, "metrics: GET /metrics", "%v %s", err, statusOf(r)) {
		return
	}
	vals := map[string]float64{}
	var bad []string
	for _, m := range []string{"vectordb_graph_nodes", "vectordb_graph_cached_nodes", "vectordb_graph_cache_bytes",
		"vectordb_graph_cache_table_bytes", "vectordb_graph_cache_budget_bytes",
		"vectordb_graph_cache_hits_total", "vectordb_graph_cache_misses_total"} {
		v, ok := metricLine(r.raw, m+col)
		if !ok || v < 0 {
			bad = append(bad, m)
		}
		vals[m] = v
	}
	check(len(bad) == 0, "metrics: graph and cache figures of frozen.embedding are numbers", "missing or not numbers: %v", bad)
	check(vals["vectordb_graph_nodes"] == 500 && vals["vectordb_graph_cache_budget_bytes"] == 256<<20 &&
		vals["vectordb_graph_cache_bytes"] >= vals["vectordb_graph_cache_table_bytes"],
		"metrics: 500 nodes, a 256 MiB budget, cache bytes include the lookup tables", "%v", vals)
	levels, perLevel := 0.0, 0
	for l := 0; l < 16; l++ {
		if v, ok := metricLine(r.raw, fmt.Sprintf(`vectordb_graph_level_nodes{table="frozen",column="embedding",level="%d"}`, l)); ok {
			levels += v
			perLevel++
		}
	}
	deg, ok1 := metricLine(r.raw, "vectordb_graph_degree_mean"+col)
	maxDeg, ok2 := metricLine(r.raw, "vectordb_graph_degree_max"+col)
	check(levels == 500 && perLevel >= 2 && ok1 && ok2 && deg > 0 && maxDeg >= deg && maxDeg <= 24,
		"metrics: nodes per level add up to 500, degrees within 3m", "levels %v (%d) degree %v %v", levels, perLevel, deg, maxDeg)
	_, ok := metricLine(r.raw, `vectordb_graph_nodes{table="items",column="embedding"}`)
	check(ok, "metrics: figures for the second table too", "no vectordb_graph_nodes for items")
	v, ok := metricLine(r.raw, "vectordb_index_scrape_error")
	check(ok && v == 0, "metrics: the index figures were read", "vectordb_index_scrape_error %v %v", v, ok)

	// The searches go through the node that is scraped: each node reaches
	// the leader through its own dqlite connections, and while vectordb
	// keeps one graph cache per connection a scrape reads the cache of one
	// of the scraped node's connections (database/sql hands out the one
	// used last, so the one the last search used).
	h0 := vals["vectordb_graph_cache_hits_total"]
	rnd := rand.New(rand.NewSource(3))
	var last float64
	var text string
	grew := waitFor(10*time.Second, func() bool {
		req := map[string]interface{}{"table": "frozen", "vector": vecJSON(randVec(rnd)), "k": 10}
		if r, err := c.post(n, "/search", roToken, req); err != nil || r.status != 200 {
			return false
		}
		r, err := c.get(n, "/metrics", roToken)
		if err != nil || r.status != 200 {
			return false
		}
		text = r.raw
		last, _ = metricLine(text, "vectordb_graph_cache_hits_total"+col)
		return last > h0
	})
	check(grew, "metrics: cache hits grow after searches", "hits %v, then %v", h0, last)
	ratio, ok := metricLine(text, "vectordb_graph_cache_hit_ratio"+col)
	check(ok && ratio > 0 && ratio <= 1, "metrics: a hit ratio above 0, at most 1, after searches", "%v %v", ok, ratio)
}

// health reads a node's /health figures.
func (c *cluster) health(n *node) (map[string]interface{}, error) {
	r, err := c.get(n, "/health", roToken)
	if err != nil {
		return nil, err
	}
	if r.status != 200 {
		return nil, fmt.Errorf("%s", statusOf(r))
	}
	return r.body, nil
}

func uintField(m map[string]interface{}, k string) (uint64, bool) {
	n, ok := m[k].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(string(n), 10, 64)
	return v, err == nil
}

// raftIndexChecks: /health reports raft's indexes on every node; a write
// acknowledged by the leader is applied on every node.
func raftIndexChecks(c *cluster) {
	r, err := c.post(c.nodes[1], "/sql", rwToken, map[string]interface{}{"sql": "CREATE TABLE raft_probe(x)"})
	if !check(err == nil && r.status == 200, "health: a write to follow", "%v %s", err, statusOf(r)) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	addr, err := c.leader(ctx)
	cancel()
	leader := c.byRaft(addr)
	if !check(err == nil && leader != nil, "health: a leader is known", "%v %q", err, addr) {
		return
	}
	h, err := c.health(leader)
	target, ok := uint64(0), false
	if err == nil {
		target, ok = uintField(h, "applied_index")
	}
	if !check(ok && target > 0, "health: the leader reports its applied index", "%v %v", err, h) {
		return
	}
	var desc []string
	all := waitFor(10*time.Second, func() bool {
		desc = desc[:0]
		for _, n := range c.nodes {
			h, err := c.health(n)
			if err != nil {
				desc = append(desc, err.Error())
				return false
			}
			a, ok1 := uintField(h, "applied_index")
			cm, ok2 := uintField(h, "commit_index")
			l, ok3 := uintField(h, "last_index")
			t, ok4 := uintField(h, "term")
			desc = append(desc, fmt.Sprintf("node %d applied %d commit %d last %d term %d", n.idx+1, a, cm, l, t))
			if !(ok1 && ok2 && ok3 && ok4) || a < target || cm < a || l < cm || t < 1 {
				return false
			}
		}
		return true
	})
	check(all, "health: every node applied the write (applied <= commit <= last index)", "target %d: %s", target, strings.Join(desc, "; "))
}

// appliedConverge: once writes stop, every node (the restarted one too)
// reports the same applied index, the leader's.
func appliedConverge(c *cluster) {
	var desc []string
	same := waitFor(10*time.Second, func() bool {
		desc = desc[:0]
		var first uint64
		for i, n := range c.nodes {
			h, err := c.health(n)
			if err != nil {
				desc = append(desc, err.Error())
				return false
			}
			a, ok := uintField(h, "applied_index")
			desc = append(desc, fmt.Sprintf("node %d applied %d", n.idx+1, a))
			if !ok || a == 0 || (i > 0 && a != first) {
				return false
			}
			first = a
		}
		return true
	})
	check(same, "health: after the kills every node reports the same applied index", "%s", strings.Join(desc, "; "))
}

func statusOf(r *reply) string {
	if r == nil {
		return "no reply"
	}
	if len(r.raw) > 300 {
		return fmt.Sprintf("%d %s...", r.status, r.raw[:300])
	}
	return fmt.Sprintf("%d %s", r.status, r.raw)
}

// ---- writes and kills ----------------------------------------------------------

type stats struct {
	mu         sync.Mutex
	acked      []int64
	attempted  int64
	killAt     int64 // unix nanos of the latest kill
	firstAfter int64 // unix nanos of the first acknowledgement of a write sent after it
	searches   int64
	searchErr  int64
	errs       map[string]int
}

// fail records why a write was not acknowledged (printed with -v).
func (s *stats) fail(kind string, err error, r *reply) {
	msg := kind + ": "
	if err != nil {
		msg += err.Error()
	} else {
		msg += statusOf(r)
	}
	if len(msg) > 100 {
		msg = msg[:100]
	}
	s.mu.Lock()
	if s.errs == nil {
		s.errs = map[string]int{}
	}
	s.errs[msg]++
	s.mu.Unlock()
}

// ack records an acknowledged write that was sent at start. The first
// write sent after a kill and acknowledged ends that kill's failover.
func (s *stats) ack(id int64, start time.Time) {
	s.mu.Lock()
	s.acked = append(s.acked, id)
	if s.killAt != 0 && start.UnixNano() > s.killAt && s.firstAfter == 0 {
		s.firstAfter = time.Now().UnixNano()
	}
	s.mu.Unlock()
}

func (s *stats) killed(t time.Time) {
	s.mu.Lock()
	s.killAt, s.firstAfter = t.UnixNano(), 0
	s.mu.Unlock()
}

func (s *stats) failover() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstAfter == 0 {
		return 0
	}
	return time.Duration(s.firstAfter - s.killAt)
}

// writers: one through HTTP (any running node), one through the dqlite
// driver; searchers through HTTP. Each write has its own rowid.
func startLoad(c *cluster, db *sql.DB, st *stats, stop chan struct{}, wg *sync.WaitGroup) {
	var httpID int64 = 1000000
	var drvID int64 = 2000000
	wg.Add(3)
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewSource(3))
		for {
			select {
			case <-stop:
				return
			default:
			}
			alive := c.aliveNodes()
			if len(alive) == 0 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			n := alive[rnd.Intn(len(alive))]
			id := httpID
			httpID++
			atomic.AddInt64(&st.attempted, 1)
			start := time.Now()
			r, err := c.post(n, "/sql", rwToken, map[string]interface{}{
				"sql":    "INSERT INTO items(rowid, embedding, tag) VALUES (?, ?, 1)",
				"params": []interface{}{id, vecJSON(randVec(rnd))}})
			if err == nil && r.status == 200 {
				st.ack(id, start)
			} else {
				st.fail("http", err, r)
			}
		}
	}()
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewSource(4))
		for {
			select {
			case <-stop:
				return
			default:
			}
			id := drvID
			drvID++
			atomic.AddInt64(&st.attempted, 1)
			// A client of the driver retries SQLITE_BUSY itself (the
			// statement did not run); the HTTP API does it for its clients.
			v := blob(randVec(rnd))
			start := time.Now()
			var err error
			for try := 0; try < 50; try++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err = db.ExecContext(ctx, "INSERT INTO items(rowid, embedding, tag) VALUES (?, ?, 2)", id, v)
				cancel()
				var de driver.Error
				if !errors.As(err, &de) || de.Code&0xff != 5 {
					break
				}
				time.Sleep(time.Duration(1+rnd.Intn(5)) * time.Millisecond)
			}
			if err == nil {
				st.ack(id, start)
			} else {
				st.fail("driver", err, nil)
			}
		}
	}()
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewSource(5))
		for {
			select {
			case <-stop:
				return
			default:
			}
			alive := c.aliveNodes()
			if len(alive) == 0 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			n := alive[rnd.Intn(len(alive))]
			r, err := c.post(n, "/search", roToken, map[string]interface{}{"table": "items", "vector": vecJSON(randVec(rnd)), "k": 5})
			if err == nil && r.status == 200 {
				atomic.AddInt64(&st.searches, 1)
			} else {
				atomic.AddInt64(&st.searchErr, 1)
			}
		}
	}()
}

// killLoop SIGKILLs the leader -kills times, measuring the time from the
// kill to the first write acknowledged after it, and restarts the killed
// node each time once a new leader took over.
func killLoop(c *cluster, db *sql.DB, st *stats) []time.Duration {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	startLoad(c, db, st, stop, &wg)
	var failovers []time.Duration
	for k := 0; k < *kills; k++ {
		// All three are voters again, and some writes go through, before
		// each kill.
		ok := waitFor(20*time.Second, func() bool { return c.voters() == 3 })
		_, desc := c.roles()
		if !check(ok, fmt.Sprintf("kill %d: three running voters before it", k+1), "%s", desc) {
			break
		}
		base := len(ackedCopy(st))
		if !check(waitFor(10*time.Second, func() bool { return len(ackedCopy(st)) >= base+20 }),
			fmt.Sprintf("kill %d: writes acknowledged before it", k+1), "only %d", len(ackedCopy(st))-base) {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addr, err := c.leader(ctx)
		cancel()
		victim := c.byRaft(addr)
		if !check(err == nil && victim != nil, fmt.Sprintf("kill %d: a leader is known", k+1), "%v %q", err, addr) {
			break
		}
		st.killed(time.Now())
		c.kill(victim, syscall.SIGKILL)
		logf("killed node %d (leader %s)", victim.idx+1, addr)
		ok = waitFor(30*time.Second, func() bool { return st.failover() > 0 })
		if !check(ok, fmt.Sprintf("kill %d: a write sent after the kill is acknowledged", k+1), "none within the deadline") {
			break
		}
		failovers = append(failovers, st.failover())
		var newLeader string
		ok = waitFor(10*time.Second, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			newLeader, err = c.leader(ctx)
			return err == nil && newLeader != addr
		})
		check(ok, fmt.Sprintf("kill %d: a new leader was elected", k+1), "%v leader %q", err, newLeader)
		// The killed node restarts with the same data directory.
		logf("restarting node %d", victim.idx+1)
		if err := c.start(victim); !check(err == nil, fmt.Sprintf("kill %d: the killed node restarts", k+1), "%v", err) {
			break
		}
		ok = waitFor(20*time.Second, func() bool {
			r, err := c.get(victim, "/health", roToken)
			return err == nil && r.status == 200 && r.body["leader"] != nil && r.body["leader"] != ""
		})
		check(ok, fmt.Sprintf("kill %d: the restarted node follows a leader", k+1), "not within the deadline")
	}
	// More writes after the last restart, then stop.
	base := len(ackedCopy(st))
	waitFor(10*time.Second, func() bool { return len(ackedCopy(st)) >= base+20 })
	close(stop)
	wg.Wait()
	return failovers
}

func ackedCopy(st *stats) []int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]int64(nil), st.acked...)
}

// ---- verification ----------------------------------------------------------------

// transfer makes n the leader.
func (c *cluster) transfer(n *node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli, err := client.FindLeader(ctx, c.store(), client.WithLogFunc(quietLog))
	if err != nil {
		return err
	}
	defer cli.Close()
	nodes, err := cli.Cluster(ctx)
	if err != nil {
		return err
	}
	for _, info := range nodes {
		if info.Address == n.raft {
			if l, err := cli.Leader(ctx); err == nil && l != nil && l.Address == n.raft {
				return nil
			}
			return cli.Transfer(ctx, info.ID)
		}
	}
	return fmt.Errorf("%s is not in the cluster", n.raft)
}

func verify(c *cluster, db *sql.DB, st *stats, before []string) {
	acked := ackedCopy(st)
	ok := waitFor(20*time.Second, func() bool { return c.voters() == 3 })
	_, desc := c.roles()
	check(ok, "three running voters after the kills", "%s", desc)
	// Every node in turn becomes the leader and is checked there: only
	// the leader serves queries in dqlite.
	var found int
	for _, n := range c.nodes {
		name := fmt.Sprintf("node %d", n.idx+1)
		var err error
		ok := waitFor(40*time.Second, func() bool {
			if err = c.transfer(n); err != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				l, _ := c.leader(ctx)
				cancel()
				logf("%s transfer to %s: %v (leader %s)", time.Now().Format("15:04:05.000"), n.raft, err, l)
				// Let a transfer that is still under way finish or time
				// out (an election timeout) before asking again.
				time.Sleep(500 * time.Millisecond)
				return false
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			l, e := c.leader(ctx)
			return e == nil && l == n.raft
		})
		if !check(ok, name+" becomes the leader", "%v (%s)", err, func() string { _, d := c.roles(); return d }()) {
			continue
		}
		present := map[int64]bool{}
		rows, err := queryRows(c, n, "SELECT rowid FROM items")
		if !check(err == nil, name+": reads items", "%v", err) {
			continue
		}
		for _, r := range rows {
			id, _ := r[0].(json.Number).Int64()
			present[id] = true
		}
		missing := 0
		for _, id := range acked {
			if !present[id] {
				missing++
			}
		}
		found = len(acked) - missing
		check(missing == 0 && len(acked) > 0, name+": every acknowledged write is present",
			"%d of %d missing", missing, len(acked))
		after, err := knnAll(c, n)
		same := err == nil && len(after) == len(before)
		for i := 0; same && i < len(after); i++ {
			same = after[i] == before[i]
		}
		check(same, name+": KNN on frozen equals the answers before the kills", "%v", err)
		for _, t := range []string{"frozen", "items"} {
			r, err := c.post(n, "/sql", rwToken, map[string]interface{}{"sql": fmt.Sprintf("INSERT INTO %s(%s) VALUES ('integrity-check')", t, t)})
			check(err == nil && r.status == 200, name+": vectordb integrity-check of "+t, "%v %s", err, statusOf(r))
		}
		rows, err = queryRows(c, n, "PRAGMA integrity_check")
		check(err == nil && len(rows) == 1 && rows[0][0] == "ok", name+": PRAGMA integrity_check", "%v %v", err, rows)
		exactMatches(c, n, name)
	}
	fmt.Printf("# acknowledged writes %d, found %d, attempted %d\n", len(acked), found, atomic.LoadInt64(&st.attempted))
}

// exactMatches compares exact KNN on items (ef_search = 0) with a brute
// force over the rows read back.
func exactMatches(c *cluster, n *node, name string) {
	r, err := c.post(n, "/sql", roToken, map[string]interface{}{"sql": "SELECT rowid, embedding FROM items", "vectors": "array"})
	if !check(err == nil && r.status == 200, name+": reads items' vectors", "%v %s", err, statusOf(r)) {
		return
	}
	type row struct {
		id int64
		v  []float64
	}
	var all []row
	for _, x := range r.body["rows"].([]interface{}) {
		a := x.([]interface{})
		id, _ := a[0].(json.Number).Int64()
		var v []float64
		for _, e := range a[1].([]interface{}) {
			f, _ := e.(json.Number).Float64()
			v = append(v, f)
		}
		all = append(all, row{id, v})
	}
	rnd := rand.New(rand.NewSource(6))
	bad := 0
	for q := 0; q < 5; q++ {
		qv := randVec(rnd)
		type hit struct {
			id int64
			d  float64
		}
		var hits []hit
		for _, rw := range all {
			s := 0.0
			for i := range qv {
				d := float64(float32(rw.v[i]) - qv[i])
				s += d * d
			}
			hits = append(hits, hit{rw.id, math.Sqrt(s)})
		}
		sort.Slice(hits, func(i, j int) bool {
			if hits[i].d != hits[j].d {
				return hits[i].d < hits[j].d
			}
			return hits[i].id < hits[j].id
		})
		r, err := c.post(n, "/search", roToken, map[string]interface{}{"table": "items", "vector": vecJSON(qv), "k": 10, "ef_search": 0})
		if err != nil || r.status != 200 {
			bad++
			continue
		}
		got := r.body["rows"].([]interface{})
		for i := 0; i < 10 && i < len(hits); i++ {
			id, _ := got[i].([]interface{})[0].(json.Number).Int64()
			if id != hits[i].id {
				bad++
				break
			}
		}
	}
	check(bad == 0, name+": exact KNN on items equals a brute force over its rows", "%d of 5 queries differ", bad)
}

func queryRows(c *cluster, n *node, q string) ([][]interface{}, error) {
	r, err := c.post(n, "/sql", roToken, map[string]interface{}{"sql": q})
	if err != nil {
		return nil, err
	}
	if r.status != 200 {
		return nil, fmt.Errorf("%s", statusOf(r))
	}
	var out [][]interface{}
	for _, x := range r.body["rows"].([]interface{}) {
		out = append(out, x.([]interface{}))
	}
	return out, nil
}

func report(st *stats, f []time.Duration) {
	sort.Slice(f, func(i, j int) bool { return f[i] < f[j] })
	if len(f) > 0 {
		median := (f[(len(f)-1)/2] + f[len(f)/2]) / 2
		fmt.Printf("# leader kills %d; failover (kill to the first acknowledged write sent after it): median %.3f s, worst %.3f s\n",
			len(f), median.Seconds(), f[len(f)-1].Seconds())
		var all []string
		for _, d := range f {
			all = append(all, fmt.Sprintf("%.2f", d.Seconds()))
		}
		fmt.Printf("# failover times, sorted (s): %s\n", strings.Join(all, " "))
	}
	st.mu.Lock()
	for m, n := range st.errs {
		logf("%6d writes not acknowledged: %s", n, m)
	}
	st.mu.Unlock()
	fmt.Printf("# searches answered %d, failed %d (failures are expected while no leader is elected)\n",
		atomic.LoadInt64(&st.searches), atomic.LoadInt64(&st.searchErr))
}
