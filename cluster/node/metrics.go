package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Latency buckets in seconds, from a cached search to a failover.
var buckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	n      uint64
}

type metrics struct {
	mu       sync.Mutex
	requests map[string]map[int]uint64 // endpoint -> status -> count
	errors   map[string]uint64
	latency  map[string]*histogram
	rows     map[string]uint64
}

func newMetrics() *metrics {
	return &metrics{requests: map[string]map[int]uint64{}, errors: map[string]uint64{},
		latency: map[string]*histogram{}, rows: map[string]uint64{}}
}

func (m *metrics) observe(endpoint string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requests[endpoint] == nil {
		m.requests[endpoint] = map[int]uint64{}
	}
	m.requests[endpoint][status]++
	if status >= 400 {
		m.errors[endpoint]++
	}
	h := m.latency[endpoint]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(buckets))}
		m.latency[endpoint] = h
	}
	sec := d.Seconds()
	for i, b := range buckets {
		if sec <= b {
			h.counts[i]++
			break
		}
	}
	h.sum += sec
	h.n++
}

func (m *metrics) addRows(endpoint string, n int) {
	m.mu.Lock()
	m.rows[endpoint] += uint64(n)
	m.mu.Unlock()
}

func sortedKeys(m map[string]uint64) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

func label(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}

// indexStats reads, on the leader, each vectordb table's row count and
// each HNSW graph's node count (the shadow tables T_rows and T_hnswNN).
func (s *server) indexStats(ctx context.Context, b *strings.Builder) error {
	rows, err := s.db.QueryContext(ctx, `SELECT t.name, g.name FROM sqlite_schema t
	  LEFT JOIN sqlite_schema g ON g.type = 'table' AND g.name GLOB t.name || '_hnsw[0-9][0-9]'
	  WHERE t.type = 'table' AND t.sql LIKE 'CREATE VIRTUAL TABLE%USING vectordb%' ORDER BY 1, 2`)
	if err != nil {
		return err
	}
	type pair struct{ table, graph string }
	var list []pair
	for rows.Next() {
		var t string
		var g *string
		if err := rows.Scan(&t, &g); err != nil {
			rows.Close()
			return err
		}
		p := pair{table: t}
		if g != nil {
			p.graph = *g
		}
		list = append(list, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var tables, graphs strings.Builder
	seen := map[string]bool{}
	for _, p := range list {
		var n int64
		if !seen[p.table] {
			seen[p.table] = true
			if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(p.table+"_rows")).Scan(&n); err != nil {
				return err
			}
			fmt.Fprintf(&tables, "vectordb_table_rows{table=\"%s\"} %d\n", label(p.table), n)
		}
		if p.graph != "" {
			if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+quoteIdent(p.graph)).Scan(&n); err != nil {
				return err
			}
			col := strings.TrimPrefix(p.graph, p.table+"_")
			fmt.Fprintf(&graphs, "vectordb_graph_nodes{table=\"%s\",graph=\"%s\"} %d\n", label(p.table), label(col), n)
		}
	}
	b.WriteString("# HELP vectordb_table_rows Rows in each vectordb table (read on the leader).\n# TYPE vectordb_table_rows gauge\n")
	b.WriteString(tables.String())
	b.WriteString("# HELP vectordb_graph_nodes Nodes in each HNSW graph (read on the leader).\n# TYPE vectordb_graph_nodes gauge\n")
	b.WriteString(graphs.String())
	return nil
}

func (s *server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, &apiError{Error: "use GET"})
		s.m.observe("metrics", http.StatusMethodNotAllowed, time.Since(start))
		return
	}
	if known, _ := s.tokens.access(r); !known {
		writeJSON(w, http.StatusUnauthorized, &apiError{Error: "missing or unknown bearer token"})
		s.m.observe("metrics", http.StatusUnauthorized, time.Since(start))
		return
	}
	var b strings.Builder
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	err := s.indexStats(ctx, &b)
	cancel()
	scrapeErr := 0
	if err != nil {
		b.Reset()
		scrapeErr = 1
	}
	fmt.Fprintf(&b, "# HELP vectordb_index_scrape_error 1 if the table and graph counts could not be read from the leader.\n# TYPE vectordb_index_scrape_error gauge\nvectordb_index_scrape_error %d\n", scrapeErr)

	s.mu.Lock()
	role, changes := s.role, s.leaderChanges
	s.mu.Unlock()
	b.WriteString("# HELP vectordb_raft_role This node's raft role as last seen (1 for the current one).\n# TYPE vectordb_raft_role gauge\n")
	for _, r := range []string{"leader", "voter", "stand-by", "spare", "no-leader", "unknown"} {
		v := 0
		if r == role {
			v = 1
		}
		fmt.Fprintf(&b, "vectordb_raft_role{role=\"%s\"} %d\n", r, v)
	}
	fmt.Fprintf(&b, "# HELP vectordb_raft_leader_changes_total Leader changes this node has seen since it started.\n# TYPE vectordb_raft_leader_changes_total counter\nvectordb_raft_leader_changes_total %d\n", changes)

	s.m.mu.Lock()
	b.WriteString("# HELP vectordb_http_requests_total HTTP requests by endpoint and status.\n# TYPE vectordb_http_requests_total counter\n")
	eps := make([]string, 0, len(s.m.requests))
	for e := range s.m.requests {
		eps = append(eps, e)
	}
	sort.Strings(eps)
	for _, e := range eps {
		codes := make([]int, 0)
		for c := range s.m.requests[e] {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		for _, c := range codes {
			fmt.Fprintf(&b, "vectordb_http_requests_total{endpoint=\"%s\",code=\"%d\"} %d\n", e, c, s.m.requests[e][c])
		}
	}
	b.WriteString("# HELP vectordb_http_errors_total HTTP requests answered with a status of 400 or more.\n# TYPE vectordb_http_errors_total counter\n")
	for _, e := range sortedKeys(s.m.errors) {
		fmt.Fprintf(&b, "vectordb_http_errors_total{endpoint=\"%s\"} %d\n", e, s.m.errors[e])
	}
	b.WriteString("# HELP vectordb_http_rows_total Rows returned (sql, search) or inserted (bulk).\n# TYPE vectordb_http_rows_total counter\n")
	for _, e := range sortedKeys(s.m.rows) {
		fmt.Fprintf(&b, "vectordb_http_rows_total{endpoint=\"%s\"} %d\n", e, s.m.rows[e])
	}
	b.WriteString("# HELP vectordb_http_request_duration_seconds Time to answer a request, by endpoint.\n# TYPE vectordb_http_request_duration_seconds histogram\n")
	for _, e := range eps {
		h := s.m.latency[e]
		if h == nil {
			continue
		}
		var cum uint64
		for i, bk := range buckets {
			cum += h.counts[i]
			fmt.Fprintf(&b, "vectordb_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %d\n", e, bk, cum)
		}
		fmt.Fprintf(&b, "vectordb_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %d\n", e, h.n)
		fmt.Fprintf(&b, "vectordb_http_request_duration_seconds_sum{endpoint=\"%s\"} %g\n", e, h.sum)
		fmt.Fprintf(&b, "vectordb_http_request_duration_seconds_count{endpoint=\"%s\"} %d\n", e, h.n)
	}
	s.m.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write([]byte(b.String()))
	s.m.observe("metrics", http.StatusOK, time.Since(start))
}
