package main

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"math"
	"net/http"
	"sort"
	"strconv"
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

// indexFigure is one vectordb_stats figure turned into a metric: the key
// it comes from, the metric's name, type and help.
type indexFigure struct {
	key, name, kind, help string
	scale                 float64
}

// The per-column figures exported, in this order. Keys that a column's
// index kind does not report (a flat index has no graph) are left out.
var indexFigures = []indexFigure{
	{"nodes", "vectordb_graph_nodes", "gauge", "Nodes in the HNSW graph of each indexed column.", 1},
	{"degree_mean", "vectordb_graph_degree_mean", "gauge", "Mean number of bottom-layer links per node.", 1},
	{"degree_max", "vectordb_graph_degree_max", "gauge", "Most bottom-layer links of one node.", 1},
	{"cached_nodes", "vectordb_graph_cached_nodes", "gauge", "Graph nodes decoded in the cache read by the scrape.", 1},
	{"cache_bytes", "vectordb_graph_cache_bytes", "gauge", "Bytes held by the graph cache read by the scrape: nodes, vector chunks and lookup tables.", 1},
	{"cache_table_bytes", "vectordb_graph_cache_table_bytes", "gauge", "Of vectordb_graph_cache_bytes, the bytes of the cache's lookup tables.", 1},
	{"cache_mb", "vectordb_graph_cache_budget_bytes", "gauge", "The graph cache's budget (the table's cache_mb).", 1 << 20},
	{"hits", "vectordb_graph_cache_hits_total", "counter", "Graph node lookups answered from the cache read by the scrape.", 1},
	{"misses", "vectordb_graph_cache_misses_total", "counter", "Graph nodes read from the shadow table into the cache read by the scrape.", 1},
}

type columnStats struct {
	table, column string
	values        map[string]float64
}

// tableStats holds a table's own figures. vectordb_stats's bytes_* keys
// are not used: they come from SQLite's dbstat, which under dqlite 1.11
// reports nonsense sizes (dqlite's VFS answers SQLITE_OK to every file
// control, so dbstat takes it for ZIPVFS and reads a page size it never
// got).
type tableStats struct {
	rows    float64
	hasRows bool
}

// readIndexStats reads, on the leader and through the same database/sql
// pool (so the same dqlite connections) that serves queries, each vectordb
// table's row count and each vector column's graph and cache figures from
// vectordb_stats, and renders them as Prometheus text.
func (s *server) readIndexStats(ctx context.Context) (string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM sqlite_schema
	  WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%USING vectordb%' ORDER BY 1`)
	if err != nil {
		return "", err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return "", err
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	tableFigs := map[string]*tableStats{}
	var cols []*columnStats
	for _, t := range tables {
		st, err := s.db.QueryContext(ctx, `SELECT "column", key, value FROM vectordb_stats(?)`, t)
		if err != nil {
			return "", fmt.Errorf("vectordb_stats(%q): %v", t, err)
		}
		byCol := map[string]*columnStats{}
		ts := &tableStats{}
		tableFigs[t] = ts
		for st.Next() {
			var col sql.NullString
			var key string
			var v interface{}
			if err := st.Scan(&col, &key, &v); err != nil {
				st.Close()
				return "", err
			}
			f, isNum := number(v)
			if !isNum {
				continue // text figures (the index kind)
			}
			if !col.Valid {
				if key == "rows" {
					ts.rows, ts.hasRows = f, true
				}
				continue
			}
			cs := byCol[col.String]
			if cs == nil {
				cs = &columnStats{table: t, column: col.String, values: map[string]float64{}}
				byCol[col.String] = cs
				cols = append(cols, cs)
			}
			cs.values[key] = f
		}
		st.Close()
		if err := st.Err(); err != nil {
			return "", fmt.Errorf("vectordb_stats(%q): %v", t, err)
		}
	}
	sort.SliceStable(cols, func(i, j int) bool {
		if cols[i].table != cols[j].table {
			return cols[i].table < cols[j].table
		}
		return cols[i].column < cols[j].column
	})

	var b strings.Builder
	b.WriteString("# HELP vectordb_table_rows Rows in each vectordb table.\n# TYPE vectordb_table_rows gauge\n")
	for _, t := range tables {
		if ts := tableFigs[t]; ts.hasRows {
			fmt.Fprintf(&b, "vectordb_table_rows{table=\"%s\"} %s\n", label(t), num(ts.rows))
		}
	}
	b.WriteString("# HELP vectordb_graph_level_nodes Nodes of each HNSW graph by top level.\n# TYPE vectordb_graph_level_nodes gauge\n")
	for _, cs := range cols {
		for _, k := range sortedKeysF(cs.values) {
			if lv := strings.TrimPrefix(k, "nodes_level_"); lv != k {
				fmt.Fprintf(&b, "vectordb_graph_level_nodes{table=\"%s\",column=\"%s\",level=\"%s\"} %s\n", label(cs.table), label(cs.column), label(lv), num(cs.values[k]))
			}
		}
	}
	for _, fig := range indexFigures {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", fig.name, fig.help, fig.name, fig.kind)
		for _, cs := range cols {
			if v, ok := cs.values[fig.key]; ok {
				fmt.Fprintf(&b, "%s{table=\"%s\",column=\"%s\"} %s\n", fig.name, label(cs.table), label(cs.column), num(v*fig.scale))
			}
		}
	}
	b.WriteString("# HELP vectordb_graph_cache_hit_ratio hits / (hits + misses) of the cache read by the scrape; absent before the first lookup.\n# TYPE vectordb_graph_cache_hit_ratio gauge\n")
	for _, cs := range cols {
		h, ok1 := cs.values["hits"]
		m, ok2 := cs.values["misses"]
		if ok1 && ok2 && h+m > 0 {
			fmt.Fprintf(&b, "vectordb_graph_cache_hit_ratio{table=\"%s\",column=\"%s\"} %s\n", label(cs.table), label(cs.column), num(h/(h+m)))
		}
	}
	return b.String(), nil
}

func sortedKeysF(m map[string]float64) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// number reads an SQLite value as a float64 when it is a number.
func number(v interface{}) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// num prints a figure the way Prometheus reads it: integers in full.
func num(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// indexStats returns the index figures, read again only when the copy in
// hand is older than -stats-interval: vectordb_stats reads every graph
// row and walks every page of the table's shadow tables (dbstat) on the
// leader, so scrapes must not be able to repeat it at will. One read runs
// at a time; scrapes arriving meanwhile wait for it and share its result.
// A failed read is kept as long, so a failing leader is not asked again
// at every scrape either.
func (s *server) indexStats() (text string, age time.Duration, err error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.statsAt.IsZero() || time.Since(s.statsAt) >= s.c.statsInterval {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.statsText, s.statsErr = s.readIndexStats(ctx)
		cancel()
		s.statsAt = time.Now()
		if s.statsErr != nil {
			log.Printf("metrics: reading the index figures: %v", s.statsErr)
		}
	}
	return s.statsText, time.Since(s.statsAt), s.statsErr
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
	text, age, err := s.indexStats()
	scrapeErr := 0
	if err != nil {
		scrapeErr = 1
	} else {
		b.WriteString(text)
	}
	fmt.Fprintf(&b, "# HELP vectordb_index_scrape_error 1 if the index figures could not be read from the leader.\n# TYPE vectordb_index_scrape_error gauge\nvectordb_index_scrape_error %d\n", scrapeErr)
	fmt.Fprintf(&b, "# HELP vectordb_index_stats_age_seconds Age of the index figures (read again at most every -stats-interval).\n# TYPE vectordb_index_stats_age_seconds gauge\nvectordb_index_stats_age_seconds %.3f\n", age.Seconds())

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
