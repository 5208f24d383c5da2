package auth

import (
	"bytes"
	"errors"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
)

// ErrMalformedResponse is returned by the SASL mechanisms for a client
// response that breaks the mechanism's syntax (missing fields, empty user
// name or password, NUL bytes, invalid UTF-8 in a name, oversized fields).
// Protocols answer it as a client error (IMAP BAD, POP3 -ERR).
var ErrMalformedResponse = errors.New("auth: malformed SASL response")

// maxFieldLen bounds each SASL field (identity, user name, password).
const maxFieldLen = maxPasswordLen

// NewPlainServer returns a server for the PLAIN mechanism (RFC 4616). fn
// gets the authorization identity (empty when the client sent none), the
// user name and the password, and decides; it must reject an identity
// other than "" or username unless it supports acting as another user.
// Its error is returned from Next as is.
func NewPlainServer(fn func(identity, username, password string) error) sasl.Server {
	return &plainServer{fn: fn}
}

type plainServer struct {
	fn   func(identity, username, password string) error
	done bool
}

func (s *plainServer) Next(response []byte) (challenge []byte, done bool, err error) {
	if s.done {
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
	if response == nil {
		// RFC 4616 §2: without an initial response the server sends an
		// empty challenge.
		return []byte{}, false, nil
	}
	s.done = true
	// RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd;
	// authcid and passwd are non-empty, none of the three contains NUL.
	f := bytes.Split(response, []byte{0})
	if len(f) != 3 || !validName(f[0], true) || !validName(f[1], false) || !validPassword(f[2]) {
		return nil, true, ErrMalformedResponse
	}
	return nil, true, s.fn(string(f[0]), string(f[1]), string(f[2]))
}

// NewLoginServer returns a server for the LOGIN mechanism
// (draft-murchison-sasl-login): it challenges "Username:", then
// "Password:", and calls fn with the two answers. A non-empty initial
// response is taken as the user name (what go-sasl's client and most
// mail clients send). Its error is returned from Next as is.
func NewLoginServer(fn func(username, password string) error) sasl.Server {
	return &loginServer{fn: fn}
}

type loginState int

const (
	loginStart loginState = iota
	loginWantUser
	loginWantPassword
	loginDone
)

type loginServer struct {
	fn       func(username, password string) error
	state    loginState
	username string
}

func (s *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch s.state {
	case loginStart:
		if len(response) == 0 {
			s.state = loginWantUser
			return []byte("Username:"), false, nil
		}
		return s.takeUser(response)
	case loginWantUser:
		return s.takeUser(response)
	case loginWantPassword:
		s.state = loginDone
		if !validPassword(response) {
			return nil, true, ErrMalformedResponse
		}
		return nil, true, s.fn(s.username, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

func (s *loginServer) takeUser(response []byte) ([]byte, bool, error) {
	if !validName(response, false) {
		s.state = loginDone
		return nil, true, ErrMalformedResponse
	}
	s.username = string(response)
	s.state = loginWantPassword
	return []byte("Password:"), false, nil
}

// validName accepts a user name or identity: UTF-8 without NUL, CR or LF,
// at most maxFieldLen bytes, non-empty unless allowEmpty.
func validName(b []byte, allowEmpty bool) bool {
	return (allowEmpty || len(b) > 0) && len(b) <= maxFieldLen &&
		utf8.Valid(b) && !bytes.ContainsAny(b, "\x00\r\n")
}

// validPassword accepts any non-empty bytes without NUL up to maxFieldLen
// (legacy passwords need not be UTF-8).
func validPassword(b []byte) bool {
	return len(b) > 0 && len(b) <= maxFieldLen && bytes.IndexByte(b, 0) < 0
}
