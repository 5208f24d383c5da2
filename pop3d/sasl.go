package pop3d

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/postoffice/postoffice/auth"
)

var errAuthzid = errors.New("authorization identity differs from the user name")

// cmdAuth implements AUTH (RFC 5034) with the PLAIN and LOGIN mechanisms.
// Without arguments it lists the mechanisms, as many clients expect from the
// older RFC 1734 usage.
func (c *conn) cmdAuth(cmd command) error {
	if cmd.rest == "" {
		c.writeLine("+OK SASL mechanisms follow")
		if c.plaintextOK() {
			c.writeLine("PLAIN")
			c.writeLine("LOGIN")
		}
		return c.writeLine(".")
	}
	args, err := cmd.args()
	if err != nil || len(args) > 2 {
		return c.badCommand("syntax: AUTH mechanism [initial-response]")
	}
	if !c.plaintextOK() {
		return errPlaintextRefused
	}

	// check runs Verify once and remembers the user name and the result.
	var (
		name     string
		verified bool
		verr     error
	)
	check := func(username, password string) error {
		ctx, cancel := c.storeCtx()
		defer cancel()
		name, verified = username, true
		verr = c.srv.opts.Auth.Verify(ctx, username, password, c.remote)
		return verr
	}
	var srv sasl.Server
	switch strings.ToUpper(args[0]) {
	case "PLAIN":
		srv = auth.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				// We do not support acting as another user.
				return errAuthzid
			}
			return check(username, password)
		})
	case "LOGIN":
		srv = auth.NewLoginServer(check)
	default:
		return c.badCommand("unsupported authentication mechanism")
	}

	var resp []byte // nil: no initial response
	if len(args) == 2 {
		// RFC 5034 §4: "=" is an empty initial response.
		if args[1] != "=" {
			if resp, err = base64.StdEncoding.DecodeString(args[1]); err != nil {
				c.authFails++
				return &respError{text: "invalid base64 in initial response"}
			}
		} else {
			resp = []byte{}
		}
	}
	for {
		chal, done, err := srv.Next(resp)
		if err != nil || done {
			if verified && verr == nil && err == nil {
				return c.login(name)
			}
			if verified {
				return c.authFailed(name, verr)
			}
			c.authFails++
			c.log.Info("sasl exchange failed", "err", err) // err never holds secrets
			if errors.Is(err, auth.ErrMalformedResponse) {
				return &respError{text: "malformed SASL response"}
			}
			return &respError{code: "AUTH", text: "authentication failed"}
		}
		c.writeLine("+ " + base64.StdEncoding.EncodeToString(chal))
		line, err := c.readLine(maxSASLLine)
		if errors.Is(err, errLineTooLong) {
			c.authFails++
			return &respError{text: "SASL response too long"}
		}
		if err != nil {
			c.readFailed(err)
			return &fatalError{err}
		}
		if line == "*" {
			// RFC 5034 §4: the client cancels; we MUST reply -ERR.
			return &respError{text: "authentication cancelled"}
		}
		if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			c.authFails++
			return &respError{text: "invalid base64 in SASL response"}
		}
	}
}
