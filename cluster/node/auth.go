package main

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// A token is read-only (SELECT and the like) or read-write.
type tokenSet struct {
	tokens map[string]bool // token -> may write
}

// loadTokens reads "TOKEN ro|rw" lines; blank lines and lines starting
// with '#' are skipped. A token shorter than 16 characters is refused so a
// guessable one is not used by mistake.
func loadTokens(path string) (*tokenSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := &tokenSet{tokens: map[string]bool{}}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		fields := strings.Fields(s)
		if len(fields) != 2 || (fields[1] != "ro" && fields[1] != "rw") {
			return nil, fmt.Errorf("%s:%d: expected 'TOKEN ro' or 'TOKEN rw'", path, line)
		}
		if len(fields[0]) < 16 {
			return nil, fmt.Errorf("%s:%d: token shorter than 16 characters", path, line)
		}
		t.tokens[fields[0]] = fields[1] == "rw"
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.tokens) == 0 {
		return nil, fmt.Errorf("%s: no tokens", path)
	}
	return t, nil
}

// access returns whether the request carries a known token and whether
// that token may write. Every token is compared in constant time.
func (t *tokenSet) access(r *http.Request) (known, write bool) {
	if t == nil {
		return true, true
	}
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") {
		return false, false
	}
	got := []byte(strings.TrimSpace(h[len("Bearer "):]))
	for tok, w := range t.tokens {
		if subtle.ConstantTimeCompare(got, []byte(tok)) == 1 {
			known, write = true, w
		}
	}
	return known, write
}
