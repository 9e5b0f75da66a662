package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/canonical/go-dqlite/app"
	"github.com/canonical/go-dqlite/client"
	"github.com/canonical/go-dqlite/driver"
)

type server struct {
	c      *config
	node   *app.App
	db     *sql.DB
	tokens *tokenSet
	m      *metrics

	mu            sync.Mutex
	leader        string
	role          string
	leaderChanges uint64
	quit          chan struct{}
	done          chan struct{}

	statsMu   sync.Mutex // one read of the index figures at a time
	statsAt   time.Time  // when statsText/statsErr were read
	statsText string
	statsErr  error
}

func newServer(c *config, node *app.App, db *sql.DB, tokens *tokenSet) *server {
	return &server{c: c, node: node, db: db, tokens: tokens, m: newMetrics(),
		role: "unknown", quit: make(chan struct{}), done: make(chan struct{})}
}

// apiError is what every failing request gets: the message (SQLite's own
// text for SQL errors), SQLite's extended code when there is one, and a
// fitting HTTP status.
type apiError struct {
	status int
	Error  string `json:"error"`
	Code   int    `json:"sqlite_code,omitempty"`
}

func badRequest(format string, a ...interface{}) *apiError {
	return &apiError{status: http.StatusBadRequest, Error: fmt.Sprintf(format, a...)}
}

// sqlError maps an error from the driver to a status: SQLite's primary
// code decides (constraint 409, permission 403, busy 503, corrupt 500,
// other statement errors 400); losing the leader or the deadline is 503.
func sqlError(err error) *apiError {
	var de driver.Error
	if errors.As(err, &de) {
		e := &apiError{Error: de.Message, Code: de.Code}
		switch de.Code & 0xff {
		case 19: // SQLITE_CONSTRAINT
			e.status = http.StatusConflict
		case 23, 3: // SQLITE_AUTH, SQLITE_PERM
			e.status = http.StatusForbidden
		case 5, 6, 10: // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR (leadership changes)
			e.status = http.StatusServiceUnavailable
		case 11, 26: // SQLITE_CORRUPT, SQLITE_NOTADB
			e.status = http.StatusInternalServerError
		default:
			e.status = http.StatusBadRequest
		}
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &apiError{status: http.StatusServiceUnavailable, Error: "no answer from a leader before the deadline: " + err.Error()}
	}
	return &apiError{status: http.StatusServiceUnavailable, Error: err.Error()}
}

type handlerFunc func(ctx context.Context, body []byte, write bool) (interface{}, *apiError)

// handle wraps an endpoint: method, token, body limit, deadline, metrics,
// and a recover so that no request can take the node down.
func (s *server) handle(endpoint, method string, fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		status := http.StatusOK
		defer func() {
			if p := recover(); p != nil {
				log.Printf("%s: internal error: %v", endpoint, p)
				status = http.StatusInternalServerError
				writeJSON(w, status, &apiError{Error: fmt.Sprintf("internal error: %v", p)})
			}
			s.m.observe(endpoint, status, time.Since(start))
		}()
		reply := func(code int, v interface{}) {
			status = code
			writeJSON(w, code, v)
		}
		if r.Method != method {
			w.Header().Set("Allow", method)
			reply(http.StatusMethodNotAllowed, &apiError{Error: "use " + method})
			return
		}
		known, write := s.tokens.access(r)
		if !known {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vectordb"`)
			reply(http.StatusUnauthorized, &apiError{Error: "missing or unknown bearer token"})
			return
		}
		var body []byte
		if method == http.MethodPost {
			if r.ContentLength > s.c.maxBody {
				reply(http.StatusRequestEntityTooLarge, &apiError{Error: fmt.Sprintf("request body of %d bytes is over the limit of %d", r.ContentLength, s.c.maxBody)})
				return
			}
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.c.maxBody))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					reply(http.StatusRequestEntityTooLarge, &apiError{Error: fmt.Sprintf("request body is over the limit of %d bytes", s.c.maxBody)})
				} else {
					reply(http.StatusBadRequest, &apiError{Error: "reading the body: " + err.Error()})
				}
				return
			}
			body = b
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.c.reqTimeout)
		defer cancel()
		v, e := fn(ctx, body, write)
		if e != nil {
			reply(e.status, e)
			return
		}
		reply(http.StatusOK, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&apiError{Error: "encoding the reply: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/sql", s.handle("sql", http.MethodPost, s.handleSQL))
	mux.HandleFunc("/search", s.handle("search", http.MethodPost, s.handleSearch))
	mux.HandleFunc("/bulk", s.handle("bulk", http.MethodPost, s.handleBulk))
	mux.HandleFunc("/health", s.handle("health", http.MethodGet, s.handleHealth))
	mux.HandleFunc("/metrics", s.handleMetrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, &apiError{Error: "no such endpoint: " + r.URL.Path})
	})
	return mux
}

// decode reads a JSON object strictly: unknown fields and trailing data
// are errors, numbers stay exact.
func decode(body []byte, v interface{}) *apiError {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return badRequest("malformed JSON request: %v", err)
	}
	if d.More() {
		return badRequest("malformed JSON request: data after the object")
	}
	return nil
}

// ---- values ----------------------------------------------------------------

// param turns one JSON value into an SQL parameter: numbers (integers
// stay integers), strings, booleans (0/1), null, an array of numbers (a
// float32 vector, as a little-endian BLOB) or {"base64": "..."} (a BLOB).
func param(raw json.RawMessage) (interface{}, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v interface{}
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case string:
		return x, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return f, nil
	case []interface{}:
		return floatVector(x)
	case map[string]interface{}:
		b64, ok := x["base64"].(string)
		if !ok || len(x) != 1 {
			return nil, errors.New(`an object parameter must be {"base64": "..."}`)
		}
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("base64: %v", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unsupported value %s", string(raw))
}

func floatVector(a []interface{}) ([]byte, error) {
	if len(a) == 0 {
		return nil, errors.New("an empty array is not a vector")
	}
	b := make([]byte, 4*len(a))
	for i, e := range a {
		n, ok := e.(json.Number)
		if !ok {
			return nil, fmt.Errorf("vector element %d is not a number", i)
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || math.Abs(f) > math.MaxFloat32 {
			return nil, fmt.Errorf("vector element %d (%s) is not a finite float32", i, n)
		}
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(f)))
	}
	return b, nil
}

func params(raw []json.RawMessage) ([]interface{}, *apiError) {
	args := make([]interface{}, len(raw))
	for i, r := range raw {
		v, err := param(r)
		if err != nil {
			return nil, badRequest("parameter %d: %v", i+1, err)
		}
		args[i] = v
	}
	return args, nil
}

// outValue makes a column value JSON-ready. BLOBs are base64 text, or with
// "vectors": "array" float32 arrays when their length is a multiple of 4.
// Non-finite floats have no JSON form and come back as null.
func outValue(v interface{}, arrays bool) interface{} {
	switch x := v.(type) {
	case []byte:
		if arrays && len(x)%4 == 0 && len(x) > 0 {
			f := make([]interface{}, len(x)/4)
			for i := range f {
				g := float64(math.Float32frombits(binary.LittleEndian.Uint32(x[4*i:])))
				if math.IsNaN(g) || math.IsInf(g, 0) {
					f[i] = nil
				} else {
					f[i] = float32(g)
				}
			}
			return f
		}
		return base64.StdEncoding.EncodeToString(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	}
	return v
}

type rowsReply struct {
	Columns []string        `json:"columns"`
	Rows    [][]interface{} `json:"rows"`
}

func readRows(rows *sql.Rows, arrays bool) (*rowsReply, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := &rowsReply{Columns: cols, Rows: [][]interface{}{}}
	for rows.Next() {
		vals := make([]interface{}, len(cols))
		ptrs := make([]interface{}, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i := range vals {
			vals[i] = outValue(vals[i], arrays)
		}
		out.Rows = append(out.Rows, vals)
	}
	return out, rows.Err()
}

func vectorFormat(s string) (bool, *apiError) {
	switch s {
	case "", "base64":
		return false, nil
	case "array":
		return true, nil
	}
	return false, badRequest(`"vectors" must be "base64" or "array", not %q`, s)
}

// query runs a read-only statement on the leader.
//
// dqlite 1.11 garbles an error raised while a query steps (not while it
// is prepared): the client reads the first column's name as the message
// and the column count as the code. The same statement run as an exec
// request reports SQLite's own message, and a read-only statement writes
// nothing, so on a query error the statement is run once more that way to
// learn the real error.
func (s *server) query(ctx context.Context, q string, args []interface{}, arrays bool) (*rowsReply, *apiError) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	var out *rowsReply
	if err == nil {
		out, err = readRows(rows, arrays)
	}
	if err == nil {
		return out, nil
	}
	var de driver.Error
	if !errors.As(err, &de) {
		return nil, sqlError(err)
	}
	_, err2 := s.db.ExecContext(ctx, q, args...)
	var de2 driver.Error
	if errors.As(err2, &de2) && de2.Code != 100 && de2.Code != 0 {
		return nil, sqlError(err2)
	}
	return nil, &apiError{status: http.StatusInternalServerError,
		Error: "the query failed after returning rows; dqlite 1.11 does not pass SQLite's message on in this case"}
}

// ---- /sql ------------------------------------------------------------------

type sqlRequest struct {
	SQL     string            `json:"sql"`
	Params  []json.RawMessage `json:"params"`
	Vectors string            `json:"vectors"`
}

// Opcodes whose presence makes a statement a write. A write transaction
// (OP_Transaction with P2 != 0) is what sqlite3_stmt_readonly() looks for;
// the others change things outside a write transaction.
var writeOpcodes = map[string]bool{
	"VUpdate": true, "VCreate": true, "VDestroy": true, "Vacuum": true,
	"VRename": true,
}

// isWrite asks the leader for the statement's bytecode (EXPLAIN, which
// prepares but does not run it) and looks for a write. It errors on SQL
// that does not prepare, with SQLite's message.
func (s *server) isWrite(ctx context.Context, q string, args []interface{}) (bool, error) {
	rows, err := s.db.QueryContext(ctx, "EXPLAIN "+q, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	write := false
	for rows.Next() {
		var addr, p1, p2, p3, p5 sql.NullInt64
		var op, p4, comment sql.NullString
		if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
			return false, err
		}
		if (op.String == "Transaction" && p2.Int64 != 0) || writeOpcodes[op.String] {
			write = true
		}
	}
	return write, rows.Err()
}

func (s *server) handleSQL(ctx context.Context, body []byte, mayWrite bool) (interface{}, *apiError) {
	var req sqlRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if strings.TrimSpace(req.SQL) == "" {
		return nil, badRequest(`"sql" is missing or empty`)
	}
	arrays, e := vectorFormat(req.Vectors)
	if e != nil {
		return nil, e
	}
	args, e := params(req.Params)
	if e != nil {
		return nil, e
	}
	if strings.IndexByte(req.SQL, 0) >= 0 {
		return nil, badRequest(`"sql" contains a NUL character`)
	}
	if statementCount(req.SQL) > 1 {
		// Several statements run as one exec request on the leader (in
		// one transaction if they say BEGIN ... COMMIT); they return no
		// rows, and parameters bind to the first statement.
		if !mayWrite {
			return nil, &apiError{status: http.StatusForbidden, Error: "a read-only token runs one statement per request"}
		}
		res, err := s.db.ExecContext(ctx, req.SQL, args...)
		if err != nil {
			return nil, sqlError(err)
		}
		n, _ := res.RowsAffected()
		id, _ := res.LastInsertId()
		return map[string]int64{"rows_affected": n, "last_insert_id": id}, nil
	}
	write, err := s.isWrite(ctx, req.SQL, args)
	if err != nil {
		return nil, sqlError(err)
	}
	if !write {
		out, e := s.query(ctx, req.SQL, args, arrays)
		if e != nil {
			return nil, e
		}
		s.m.addRows("sql", len(out.Rows))
		return out, nil
	}
	if !mayWrite {
		return nil, &apiError{status: http.StatusForbidden, Error: "this token is read-only and the statement writes"}
	}
	var res sql.Result
	err = retryBusy(ctx, func() error {
		var e error
		res, e = s.db.ExecContext(ctx, req.SQL, args...)
		return e
	})
	if err != nil {
		return nil, sqlError(err)
	}
	n, _ := res.RowsAffected()
	id, _ := res.LastInsertId()
	return map[string]int64{"rows_affected": n, "last_insert_id": id}, nil
}

// retryBusy runs fn again while it fails with SQLITE_BUSY or
// SQLITE_LOCKED, until the request's deadline. dqlite's leader has no busy
// timeout: a write that meets another connection's write transaction
// fails at once, before it changed anything. Only a single statement or a
// whole transaction is retried, never a request that could have
// committed part of its work.
func retryBusy(ctx context.Context, fn func() error) error {
	wait := time.Millisecond
	for {
		err := fn()
		var de driver.Error
		if err == nil || !errors.As(err, &de) || (de.Code&0xff != 5 && de.Code&0xff != 6) {
			return err
		}
		jitter := time.Duration(rand.Int63n(int64(wait)))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait + jitter):
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// ---- /search ---------------------------------------------------------------

type searchRequest struct {
	Table    string                     `json:"table"`
	Column   string                     `json:"column"`
	Vector   json.RawMessage            `json:"vector"`
	K        int                        `json:"k"`
	EfSearch *int                       `json:"ef_search"`
	Filters  map[string]json.RawMessage `json:"filters"`
	Columns  []string                   `json:"columns"`
	Vectors  string                     `json:"vectors"`
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

var filterOps = map[string]string{"eq": "=", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}

// filter turns one entry of "filters" into SQL: a scalar is equality, an
// array is IN, an object {"lt": x, "ge": y, ...} is comparisons.
func filter(col string, raw json.RawMessage, where *[]string, args *[]interface{}) *apiError {
	t := bytes.TrimSpace(raw)
	switch {
	case len(t) > 0 && t[0] == '[':
		var list []json.RawMessage
		if err := json.Unmarshal(t, &list); err != nil || len(list) == 0 {
			return badRequest("filter %q: a list must hold one value or more", col)
		}
		marks := make([]string, len(list))
		for i, r := range list {
			v, err := scalar(r)
			if err != nil {
				return badRequest("filter %q: %v", col, err)
			}
			marks[i] = "?"
			*args = append(*args, v)
		}
		*where = append(*where, quoteIdent(col)+" IN ("+strings.Join(marks, ",")+")")
	case len(t) > 0 && t[0] == '{':
		var ops map[string]json.RawMessage
		if err := json.Unmarshal(t, &ops); err != nil || len(ops) == 0 {
			return badRequest("filter %q: an object must hold comparisons (eq, ne, lt, le, gt, ge)", col)
		}
		for name, r := range ops {
			op, ok := filterOps[name]
			if !ok {
				return badRequest("filter %q: unknown comparison %q (eq, ne, lt, le, gt, ge)", col, name)
			}
			v, err := scalar(r)
			if err != nil {
				return badRequest("filter %q: %v", col, err)
			}
			*where = append(*where, quoteIdent(col)+" "+op+" ?")
			*args = append(*args, v)
		}
	default:
		v, err := scalar(t)
		if err != nil {
			return badRequest("filter %q: %v", col, err)
		}
		if v == nil {
			*where = append(*where, quoteIdent(col)+" IS NULL")
		} else {
			*where = append(*where, quoteIdent(col)+" = ?")
			*args = append(*args, v)
		}
	}
	return nil
}

func scalar(raw json.RawMessage) (interface{}, error) {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && (t[0] == '[' || t[0] == '{') {
		return nil, errors.New("a filter value must be a number, string, boolean or null")
	}
	return param(t)
}

func (s *server) handleSearch(ctx context.Context, body []byte, _ bool) (interface{}, *apiError) {
	var req searchRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Table == "" {
		return nil, badRequest(`"table" is missing`)
	}
	if req.Column == "" {
		req.Column = "embedding"
	}
	if req.K < 1 || req.K > 16384 {
		return nil, badRequest(`"k" must be 1 to 16384`)
	}
	arrays, e := vectorFormat(req.Vectors)
	if e != nil {
		return nil, e
	}
	var vec interface{}
	t := bytes.TrimSpace(req.Vector)
	switch {
	case len(t) > 0 && t[0] == '[':
		var a []interface{}
		d := json.NewDecoder(bytes.NewReader(t))
		d.UseNumber()
		if err := d.Decode(&a); err != nil {
			return nil, badRequest(`"vector": %v`, err)
		}
		b, err := floatVector(a)
		if err != nil {
			return nil, badRequest(`"vector": %v`, err)
		}
		vec = b
	case len(t) > 0 && t[0] == '"':
		var s64 string
		json.Unmarshal(t, &s64)
		b, err := base64.StdEncoding.DecodeString(s64)
		if err != nil || len(b) == 0 || len(b)%4 != 0 {
			return nil, badRequest(`"vector": base64 of little-endian float32 values expected`)
		}
		vec = b
	default:
		return nil, badRequest(`"vector" must be an array of numbers or base64 float32`)
	}
	cols := []string{"rowid", "distance"}
	for _, c := range req.Columns {
		cols = append(cols, quoteIdent(c))
	}
	where := []string{quoteIdent(req.Column) + " MATCH ?", "k = ?"}
	args := []interface{}{vec, int64(req.K)}
	if req.EfSearch != nil {
		where = append(where, "ef_search = ?")
		args = append(args, int64(*req.EfSearch))
	}
	for col, raw := range req.Filters {
		if e := filter(col, raw, &where, &args); e != nil {
			return nil, e
		}
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteIdent(req.Table) +
		" WHERE " + strings.Join(where, " AND ") + " ORDER BY distance, rowid"
	out, e := s.query(ctx, q, args, arrays)
	if e != nil {
		return nil, e
	}
	s.m.addRows("search", len(out.Rows))
	return out, nil
}

// ---- /bulk -----------------------------------------------------------------

type bulkRequest struct {
	Table   string              `json:"table"`
	Columns []string            `json:"columns"`
	Rows    [][]json.RawMessage `json:"rows"`
}

func valueSize(v interface{}) int64 {
	switch x := v.(type) {
	case []byte:
		return int64(len(x))
	case string:
		return int64(len(x))
	}
	return 8
}

// handleBulk inserts rows in transactions of at most -bulk-rows rows and
// -bulk-bytes bytes of values, so that no raft entry grows without bound.
// Each transaction commits on its own: on an error the reply says how
// many rows were committed before it.
func (s *server) handleBulk(ctx context.Context, body []byte, mayWrite bool) (interface{}, *apiError) {
	if !mayWrite {
		return nil, &apiError{status: http.StatusForbidden, Error: "this token is read-only and /bulk writes"}
	}
	var req bulkRequest
	if e := decode(body, &req); e != nil {
		return nil, e
	}
	if req.Table == "" || len(req.Columns) == 0 {
		return nil, badRequest(`"table" and "columns" are required`)
	}
	qc := make([]string, len(req.Columns))
	marks := make([]string, len(req.Columns))
	for i, c := range req.Columns {
		qc[i] = quoteIdent(c)
		marks[i] = "?"
	}
	q := "INSERT INTO " + quoteIdent(req.Table) + "(" + strings.Join(qc, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
	// Convert everything first: a bad value fails the request before
	// anything is written.
	rows := make([][]interface{}, len(req.Rows))
	sizes := make([]int64, len(req.Rows))
	for i, r := range req.Rows {
		if len(r) != len(req.Columns) {
			return nil, badRequest("row %d has %d values for %d columns", i, len(r), len(req.Columns))
		}
		args, e := params(r)
		if e != nil {
			e.Error = fmt.Sprintf("row %d: %s", i, e.Error)
			return nil, e
		}
		rows[i] = args
		for _, a := range args {
			sizes[i] += valueSize(a)
		}
	}
	committed, txs := 0, 0
	for committed < len(rows) {
		end, bytes := committed, int64(0)
		for end < len(rows) && end-committed < s.c.bulkRows && (end == committed || bytes+sizes[end] <= s.c.bulkBytes) {
			bytes += sizes[end]
			end++
		}
		batch := rows[committed:end]
		if err := retryBusy(ctx, func() error { return s.insertBatch(ctx, q, batch) }); err != nil {
			e := sqlError(err)
			e.Error = fmt.Sprintf("%s (rows %d to %d; %d rows committed before them in %d transactions)", e.Error, committed, end-1, committed, txs)
			return nil, e
		}
		committed = end
		txs++
	}
	s.m.addRows("bulk", committed)
	return map[string]int{"rows": committed, "transactions": txs}, nil
}

func (s *server) insertBatch(ctx context.Context, q string, rows [][]interface{}) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	stmt, err := tx.PrepareContext(ctx, q)
	if err != nil {
		tx.Rollback()
		return err
	}
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r...); err != nil {
			stmt.Close()
			tx.Rollback()
			return err
		}
	}
	stmt.Close()
	return tx.Commit()
}

// ---- /health and the leader watch --------------------------------------------

// watchLeader follows the leader twice a second, counting changes.
func (s *server) watchLeader() {
	defer close(s.done)
	var cli *client.Client
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		leader, role := "", "unknown"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if cli == nil {
			cli, _ = s.node.Leader(ctx)
		}
		if cli != nil {
			info, err := cli.Leader(ctx)
			var nodes []client.NodeInfo
			if err == nil && info != nil {
				nodes, err = cli.Cluster(ctx)
			}
			if err != nil || info == nil {
				cli.Close()
				cli = nil
			} else {
				leader = info.Address
				for _, n := range nodes {
					if n.ID == s.node.ID() {
						role = strings.ToLower(n.Role.String())
					}
				}
				if leader == s.node.Address() {
					role = "leader"
				}
			}
		}
		cancel()
		s.mu.Lock()
		if leader != "" && leader != s.leader {
			if s.leader != "" {
				s.leaderChanges++
			}
			s.leader = leader
		}
		if leader == "" {
			role = "no-leader"
		}
		s.role = role
		s.mu.Unlock()
		select {
		case <-s.quit:
			if cli != nil {
				cli.Close()
			}
			return
		case <-tick.C:
		}
	}
}

func (s *server) stop() {
	close(s.quit)
	<-s.done
}

func (s *server) handleHealth(ctx context.Context, _ []byte, _ bool) (interface{}, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reply := map[string]interface{}{
		"id":             s.node.ID(),
		"address":        s.node.Address(),
		"role":           s.role,
		"leader":         s.leader,
		"leader_changes": s.leaderChanges,
		"database":       s.c.dbName,
		"applied_index":  nil,
		"commit_index":   nil,
		"last_index":     nil,
		"term":           nil,
	}
	if applied, commit, last, term, ok := raftIndexes(); ok {
		reply["applied_index"] = applied
		reply["commit_index"] = commit
		reply["last_index"] = last
		reply["term"] = term
	}
	return reply, nil
}
