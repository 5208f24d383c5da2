package imapd

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/postoffice/postoffice/store"
)

// opTimeout bounds each store call made outside the selected state (login,
// mailbox management), so a stuck database cannot hang a session.
const opTimeout = 30 * time.Second

// authTimeout bounds one credential check. It is longer than opTimeout
// because auth.Verify applies its growing throttle delay inside the call.
const authTimeout = 2 * time.Minute

// session implements imapserver.Session for one connection.
//
// It keeps the connection's context in a struct, against the usual rule:
// imapserver.Session methods take no context, so the session holds the
// connection context and cancels it in Close.
//
// All methods run on the connection's goroutine, except Idle (see
// selected.go) which the library runs on a second goroutine while the first
// one waits for "DONE"; no method of this file runs during IDLE.
type session struct {
	srv     *Server
	conn    *imapserver.Conn
	ctx     context.Context
	cancel  context.CancelFunc
	log     *slog.Logger // has conn and remote; user is added after login
	baseLog *slog.Logger // log without the user attribute

	tc     *trackedConn // the accepted connection (below TLS)
	remote netip.Addr

	user     *store.User // nil until authenticated
	userSlot bool        // holds one of the user's MaxConnsPerUser slots

	sel *selected // nil unless a mailbox is selected; see selected.go
}

// Compile-time checks: the library panics at the first connection when a
// capability is advertised whose interface the session lacks.
var (
	_ imapserver.Session               = (*session)(nil)
	_ imapserver.SessionIMAP4rev2      = (*session)(nil) // IMAP4rev2, NAMESPACE, MOVE
	_ imapserver.SessionNamespace      = (*session)(nil)
	_ imapserver.SessionMove           = (*session)(nil)
	_ imapserver.SessionSASL           = (*session)(nil) // AUTH=PLAIN, AUTH=LOGIN
	_ imapserver.SessionUnauthenticate = (*session)(nil) // UNAUTHENTICATE
	_ imapserver.SessionAppendLimit    = (*session)(nil) // APPENDLIMIT=n
)

// mailStore returns the store the session works on.
func (s *session) mailStore() *store.Store { return s.srv.opts.Store }

// opCtx returns a context for one store call outside the selected state.
func (s *session) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, opTimeout)
}

// AppendLimit implements imapserver.SessionAppendLimit: the APPENDLIMIT=n
// capability (RFC 7889) and the size above which the library refuses an
// APPEND literal with NO [TOOBIG] before reading it.
func (s *session) AppendLimit() uint32 { return s.srv.appendLimit }

// Close implements imapserver.Session. The library calls it once when the
// connection ends, whatever the reason; it releases the selected mailbox,
// the connection-limit slots and the connection context.
func (s *session) Close() error {
	// The library may still run Idle on its second goroutine when the
	// connection drops mid-IDLE (it does not wait for Idle after EOF), so
	// Close must not write s.sel: it only closes the view, which is
	// synchronised by the view's own mutex.
	if sel := s.sel; sel != nil {
		sel.close()
	}
	if s.srv.draining() {
		// RFC 9051 §7.1.5: BYE before the server closes the connection.
		_ = s.conn.Bye("Server shutting down")
	}
	s.releaseUser()
	s.cancel()
	s.srv.connDone(s.tc)
	s.log.Info("connection closed")
	return nil
}
