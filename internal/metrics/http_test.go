package metrics

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestMaildirWritable(t *testing.T) {
	dir := t.TempDir()
	if err := MaildirWritable(dir); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %d files behind", len(ents))
	}
	if err := MaildirWritable(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing directory reported writable")
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if err := MaildirWritable(file); err == nil {
		t.Error("regular file reported writable")
	}
}

// The counting listener tracks open connections and bytes written.
func TestProtoListener(t *testing.T) {
	reg := NewRegistry()
	s := NewServer(reg)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := s.Proto("pop3").Listener(raw)
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if sc.RemoteAddr().String() != cc.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s", sc.RemoteAddr())
	}
	if got := s.Connections.With("pop3").Value(); got != 1 {
		t.Errorf("open = %d, want 1", got)
	}
	io.WriteString(sc, "+OK ready\r\n")
	if got := s.BytesSent.With("pop3").Value(); got != 11 {
		t.Errorf("bytes = %d, want 11", got)
	}
	sc.Close()
	sc.Close() // counted once
	if got := s.Connections.With("pop3").Value(); got != 0 {
		t.Errorf("open after close = %d, want 0", got)
	}
	if got := s.ConnectionsTotal.With("pop3").Value(); got != 1 {
		t.Errorf("total = %d, want 1", got)
	}
}
