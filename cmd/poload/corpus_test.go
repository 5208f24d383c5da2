package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

func TestCrlfSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"a", 1},
		{"a\n", 3},
		{"a\r\n", 3},
		{"\n\n", 4},
		{"a\nb\r\nc\n", 9},
	} {
		if got := crlfSize([]byte(tc.in)); got != tc.want {
			t.Errorf("crlfSize(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

var nameRE = regexp.MustCompile(`^\d+\.M\d+P\d+\.[a-z.]+,S=(\d+),W=(\d+):2,[FS]*$`)

func TestGenerateCorpus_namesAndSizes(t *testing.T) {
	dir := t.TempDir()
	o := corpusOptions{Dir: dir, Seed: 7, Users: 2, Messages: 150, BigUser: "big", BigCount: 50}
	if _, err := generateCorpus(o); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, u := range []string{"bench1", "bench2", "big"} {
		md := filepath.Join(dir, u, "Maildir")
		for _, d := range []string{"cur", "new", "tmp", ".Sent/cur", ".Trash/new"} {
			if fi, err := os.Stat(filepath.Join(md, d)); err != nil || !fi.IsDir() {
				t.Fatalf("%s/%s: not a directory (%v)", u, d, err)
			}
		}
		ents, err := os.ReadDir(filepath.Join(md, "cur"))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"bench1": 150, "bench2": 150, "big": 50}[u]
		if len(ents) != want {
			t.Fatalf("%s: %d messages, want %d", u, len(ents), want)
		}
		for _, e := range ents {
			m := nameRE.FindStringSubmatch(e.Name())
			if m == nil {
				t.Fatalf("bad name %q", e.Name())
			}
			b, err := os.ReadFile(filepath.Join(md, "cur", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			s, _ := strconv.Atoi(m[1])
			w, _ := strconv.Atoi(m[2])
			if s != len(b) {
				t.Errorf("%s: S=%d, file has %d bytes", e.Name(), s, len(b))
			}
			crlf := bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
			if w != len(crlf) {
				t.Errorf("%s: W=%d, CRLF form has %d bytes", e.Name(), w, len(crlf))
			}
			if bytes.Contains(b, []byte("\r")) {
				t.Errorf("%s: has CR; MTAs write LF", e.Name())
			}
			if !bytes.Contains(b, []byte("\n\n")) || !bytes.HasPrefix(b, []byte("Return-Path: ")) {
				t.Errorf("%s: no header/body split", e.Name())
			}
			if u != "big" {
				sizes = append(sizes, len(b))
			}
		}
	}
	lo, hi, big := 1<<30, 0, 0
	for _, s := range sizes {
		lo, hi = min(lo, s), max(hi, s)
		if s > 50<<10 {
			big++
		}
	}
	if lo < minMsgSize || hi > maxMsgSize+2<<10 {
		t.Errorf("sizes %d..%d outside about %d..%d", lo, hi, minMsgSize, maxMsgSize)
	}
	if big == 0 || big > len(sizes)/4 {
		t.Errorf("%d of %d messages over 50 KB: want a tail, not a bulk", big, len(sizes))
	}
}

func TestGen_deterministic(t *testing.T) {
	d := time.Unix(corpusEpoch, 0).UTC()
	a, b := newGen(3), newGen(3)
	for i := range 50 {
		ma, mb := a.message(a.size(maxMsgSize), d), b.message(b.size(maxMsgSize), d)
		if !bytes.Equal(ma, mb) {
			t.Fatalf("message %d differs for the same seed", i)
		}
	}
	if bytes.Equal(newGen(3).message(5000, d), newGen(4).message(5000, d)) {
		t.Fatal("different seeds gave the same message")
	}
}

func TestGen_variety(t *testing.T) {
	g := newGen(1)
	seen := map[string]bool{}
	d := time.Unix(corpusEpoch, 0).UTC()
	for range 300 {
		m := g.message(g.size(maxMsgSize), d)
		for _, k := range []string{"text/plain", "text/html", "multipart/alternative", "multipart/mixed", "base64", "=?UTF-8?B?"} {
			if bytes.Contains(m, []byte(k)) {
				seen[k] = true
			}
		}
	}
	if len(seen) != 6 {
		t.Fatalf("corpus lacks some kinds: saw %v", seen)
	}
}
