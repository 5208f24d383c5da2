package imapd

// The literal guard.
//
// go-imap v2 beta.8 refuses a non-synchronising literal ("{n+}") that is too
// big (any over 4096 octets, since we do not advertise LITERAL+; or an APPEND
// over APPENDLIMIT) with NO or BAD, but does not read the literal: the
// client has already sent it, so the library then parses the literal data
// as commands. A message body would run as IMAP commands.
//
// RFC 7888 §4 (LITERAL-) lets the server close the connection in that
// case. The guard does: it watches the plaintext stream of each connection
// and, at the end of a line that announces a non-synchronising literal over
// 4096 octets, cuts the stream. The library gets the command line (and
// answers it with its NO/BAD), but no byte after it: every later read fails
// and the connection ends.
//
// The plaintext stream is only visible through imapserver.Options.
// DebugWriter (under STARTTLS the library creates the TLS connection
// itself). The library tees both directions into that writer: received data
// from an io.TeeReader (so an error from Write cuts the read short), sent
// data from an io.MultiWriter. The guard tells them apart by its caller.
// Sent data matters too: after a synchronising literal "{n}" the guard must
// know whether the library answered "+" (the literal follows and is skipped)
// or refused it (what follows is the next command).

import (
	"log/slog"
	"runtime"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// maxSmallLiteral is RFC 7888 §4's LITERAL- limit, which the library applies
// to non-synchronising literals.
const maxSmallLiteral = 4096

// errLiteralRefused is what reads return once the guard has cut the stream.
// It is an *imap.Error so that a command whose argument was the literal
// (LOGIN {5000+}) is answered BAD, as RFC 7888 §4 asks, rather than as an
// internal error.
var errLiteralRefused error = bad(imap.ResponseCodeTooBig, "Non-synchronizing literals are limited to 4096 bytes; closing connection")

// errLiteralTooBig cuts the stream after a synchronising literal over 4096
// octets outside an APPEND message. The library refuses such a literal
// (without "+"), but then waits for more input to parse the argument the
// literal stood for: the client, waiting for "+", would hang until the
// library's 30 s read timeout. Cutting the stream answers at once.
var errLiteralTooBig error = bad(imap.ResponseCodeTooBig, "Literals are limited to 4096 bytes for this command; closing connection")

type guardMode int

const (
	guardLine      guardMode = iota // in a command line
	guardLiteral                    // skipping literal data
	guardAwaitCont                  // sent "{n}": waiting for "+" or a refusal
)

// guard is the per-connection DebugWriter described above.
type guard struct {
	srv *Server
	tc  *trackedConn
	log *slog.Logger

	mu       sync.Mutex // Idle writes on another goroutine while "DONE" is read
	mode     guardMode
	tail     []byte // the end of the current received line (at most tailMax)
	cmd      []byte // the start of the current command's first line (at most cmdMax)
	contLine bool   // the current line continues a command after a literal
	litLeft  int64  // guardLiteral: octets left; guardAwaitCont: announced size
	sentBOL  bool   // the last sent octet ended a line
	tripped  bool
}

const (
	tailMax = 32
	cmdMax  = 64
)

func (g *guard) Write(p []byte) (int, error) {
	if isIngress() {
		return g.received(p)
	}
	g.sent(p)
	return len(p), nil
}

// received scans data the library has just read. It returns how much of p
// the library may use, and an error once the stream is cut.
func (g *guard) received(p []byte) (int, error) {
	g.mu.Lock()
	n, err := g.scan(p)
	g.mu.Unlock()
	g.debug(p[:n])
	if err != nil {
		g.tc.fail(err)
		g.log.Warn("refused an oversized non-synchronizing literal; closing the connection")
	}
	return n, err
}

func (g *guard) scan(p []byte) (int, error) {
	if g.tripped {
		return 0, errLiteralRefused
	}
	for i := 0; i < len(p); i++ {
		if g.mode == guardLiteral {
			skip := min(int64(len(p)-i), g.litLeft)
			g.litLeft -= skip
			i += int(skip) - 1
			if g.litLeft == 0 {
				g.mode = guardLine
				g.tail = g.tail[:0]
			}
			continue
		}
		b := p[i]
		if b != '\n' {
			if !g.contLine && len(g.cmd) < cmdMax {
				g.cmd = append(g.cmd, b)
			}
			if len(g.tail) == tailMax {
				copy(g.tail, g.tail[1:])
				g.tail = g.tail[:tailMax-1]
			}
			g.tail = append(g.tail, b)
			continue
		}
		size, nonSync, ok := literalHeader(g.tail)
		g.tail = g.tail[:0]
		if !ok {
			// The command ends here. (A line the client sent while a
			// "{n}" was pending is not literal data either: the library
			// refused it, or the client broke the protocol; either way,
			// scan on as lines.)
			g.cmd, g.contLine = g.cmd[:0], false
			continue
		}
		appendMessage := g.appendMessage()
		g.contLine = true
		switch {
		case nonSync && size > maxSmallLiteral:
			g.tripped = true
			return i + 1, errLiteralRefused
		case !nonSync && size > maxSmallLiteral && !appendMessage:
			g.tripped = true
			return i + 1, errLiteralTooBig
		case nonSync:
			g.mode, g.litLeft = guardLiteral, size
			if size == 0 {
				g.mode = guardLine
			}
		default:
			g.mode, g.litLeft = guardAwaitCont, size
		}
	}
	return len(p), nil
}

// appendMessage reports whether the literal announced at the end of the
// current line can be an APPEND message (not the APPEND mailbox name,
// "tag APPEND {n}", which is limited to 4096 octets like any argument).
func (g *guard) appendMessage() bool {
	f := strings.SplitN(string(g.cmd), " ", 3)
	if len(f) < 3 || !strings.EqualFold(f[1], "APPEND") {
		return false
	}
	return g.contLine || !strings.HasPrefix(f[2], "{")
}

// sent watches the library's output for the answer to a pending "{n}".
func (g *guard) sent(p []byte) {
	g.debug(p)
	if len(p) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mode != guardAwaitCont {
		// Nothing pending: only where lines begin matters (most output,
		// message bodies included, takes this path).
		g.sentBOL = p[len(p)-1] == '\n'
		return
	}
	for i, b := range p {
		bol := (i == 0 && g.sentBOL) || (i > 0 && p[i-1] == '\n')
		if !bol || g.mode != guardAwaitCont {
			continue
		}
		switch b {
		case '+': // continuation request: the literal follows
			g.mode = guardLiteral
			if g.litLeft == 0 {
				g.mode = guardLine
			}
		case '*': // untagged data; keep waiting
		default: // tagged answer: refused
			g.mode = guardLine
		}
	}
	g.sentBOL = p[len(p)-1] == '\n'
}

// debug copies the stream to Options.Debug, if set.
func (g *guard) debug(p []byte) {
	if g.srv.opts.Debug == nil || len(p) == 0 {
		return
	}
	g.srv.debugMu.Lock()
	_, _ = g.srv.opts.Debug.Write(p)
	g.srv.debugMu.Unlock()
}

// literalHeader parses a literal announcement at the end of a line:
// "{n}", "{n+}" (RFC 7888) or "~{n}" (RFC 3516), before the CRLF. Sizes too
// long to parse count as huge.
func literalHeader(line []byte) (size int64, nonSync, ok bool) {
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	line = line[:len(line)-1]
	if line[len(line)-1] == '+' {
		nonSync = true
		line = line[:len(line)-1]
	}
	i := len(line)
	for i > 0 && line[i-1] >= '0' && line[i-1] <= '9' {
		i--
	}
	if i == len(line) || i == 0 || line[i-1] != '{' {
		return 0, false, false
	}
	digits := line[i:]
	if len(digits) > 18 {
		return 1 << 62, nonSync, true
	}
	for _, d := range digits {
		size = size*10 + int64(d-'0')
	}
	return size, nonSync, true
}

// ingressFunc is the function that writes received data to the DebugWriter
// in this library version (imapserver.Options.wrapReadWriter).
const ingressFunc = "io.(*teeReader).Read"

var ingressPCs sync.Map // uintptr → bool

// isIngress reports whether guard.Write was called by io.TeeReader (data
// received) rather than io.MultiWriter (data sent).
//
//go:noinline
func isIngress() bool {
	var pcs [1]uintptr
	// Skip runtime.Callers, isIngress and guard.Write.
	if runtime.Callers(3, pcs[:]) == 0 {
		return false
	}
	if v, ok := ingressPCs.Load(pcs[0]); ok {
		return v.(bool)
	}
	frame, _ := runtime.CallersFrames(pcs[:]).Next()
	in := frame.Function == ingressFunc
	ingressPCs.Store(pcs[0], in)
	return in
}
