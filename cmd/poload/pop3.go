package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// pop3Client is the small POP3 client (RFC 1939) the load tool needs:
// USER/PASS, STAT, RETR, QUIT.
type pop3Client struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

func dialPOP3(addr string, timeout time.Duration) (*pop3Client, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &pop3Client{conn: conn, br: bufio.NewReaderSize(conn, 64<<10), bw: bufio.NewWriter(conn)}
	if _, err := c.status(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("pop3 greeting: %w", err)
	}
	return c, nil
}

// status reads one status line and returns its text after "+OK".
func (c *pop3Client) status() (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if rest, ok := strings.CutPrefix(line, "+OK"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("pop3: %s", line)
}

func (c *pop3Client) cmd(format string, args ...any) (string, error) {
	c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c.bw, format+"\r\n", args...)
	if err := c.bw.Flush(); err != nil {
		return "", err
	}
	return c.status()
}

func (c *pop3Client) login(user, pass string) error {
	if _, err := c.cmd("USER %s", user); err != nil {
		return err
	}
	_, err := c.cmd("PASS %s", pass)
	return err
}

// stat returns the message count and maildrop size.
func (c *pop3Client) stat() (count int, size int64, err error) {
	s, err := c.cmd("STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("pop3: STAT reply %q", s)
	}
	count, err = strconv.Atoi(f[0])
	if err != nil {
		return 0, 0, err
	}
	size, err = strconv.ParseInt(f[1], 10, 64)
	return count, size, err
}

var errMultiline = errors.New("pop3: multi-line response not terminated")

// retr fetches message n and returns the bytes received on the wire
// (including CRLFs and dot-stuffing), discarding the content.
func (c *pop3Client) retr(n int) (int64, error) {
	if _, err := c.cmd("RETR %d", n); err != nil {
		return 0, err
	}
	var total int64
	for {
		line, err := c.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			total += int64(len(line))
			continue // very long line: keep reading it
		}
		if err == io.EOF {
			return total, errMultiline
		}
		if err != nil {
			return total, err
		}
		total += int64(len(line))
		if bytes.Equal(line, []byte(".\r\n")) {
			return total, nil
		}
	}
}

func (c *pop3Client) quit() error {
	_, err := c.cmd("QUIT")
	c.conn.Close()
	return err
}

func (c *pop3Client) close() { c.conn.Close() }
