package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const userCols = `id, name, password_hash, disabled, quota_bytes, quota_messages, used_bytes, used_messages, maildir_override, created_at, last_login_at`

func scanUser(r interface{ Scan(...any) error }) (*User, error) {
	var u User
	var disabled, created, last int64
	if err := r.Scan(&u.ID, &u.Name, &u.PasswordHash, &disabled, &u.QuotaBytes, &u.QuotaMessages,
		&u.UsedBytes, &u.UsedMessages, &u.MaildirOverride, &created, &last); err != nil {
		return nil, err
	}
	u.Disabled = disabled != 0
	u.CreatedAt = fromNanos(created)
	u.LastLoginAt = fromNanos(last)
	return &u, nil
}

// ValidUserName accepts plain names and addresses that are safe as path
// elements: no separators, no dot-only or dot-leading names, no control or
// space characters. CreateUser checks it.
func ValidUserName(name string) error {
	if name == "" || len(name) > 255 || !utf8.ValidString(name) {
		return fmt.Errorf("store: invalid user name %q", name)
	}
	if name[0] == '.' || strings.Contains(name, "..") {
		return fmt.Errorf("store: invalid user name %q", name)
	}
	for _, r := range name {
		if r == '/' || r == '\\' || r == '%' || r == '*' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("store: invalid user name %q", name)
		}
	}
	return nil
}

// CreateUser adds a user with u's Name, PasswordHash, quotas and
// MaildirOverride, and creates the Maildir. ErrUserExists if taken.
func (s *Store) CreateUser(ctx context.Context, u User) (*User, error) {
	if err := ValidUserName(u.Name); err != nil {
		return nil, err
	}
	if u.QuotaBytes < 0 || u.QuotaMessages < 0 {
		return nil, errors.New("store: negative quota")
	}
	var id UserID
	err := s.db.queryRow(ctx, `INSERT INTO users (name, password_hash, quota_bytes, quota_messages, maildir_override, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING id`,
		u.Name, u.PasswordHash, u.QuotaBytes, u.QuotaMessages, u.MaildirOverride, time.Now().UnixNano()).Scan(&id)
	if errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrUserExists, u.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: create user %s: %w", u.Name, err)
	}
	nu, err := s.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := initMaildir(s.MaildirPath(nu)); err != nil {
		return nil, err
	}
	return nu, nil
}

// User returns the user called name, or ErrNoUser.
func (s *Store) User(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(s.db.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
	if errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	if err != nil {
		return nil, fmt.Errorf("store: look up user %s: %w", name, err)
	}
	return u, nil
}

// UserByID returns the user with id, or ErrNoUser.
func (s *Store) UserByID(ctx context.Context, id UserID) (*User, error) {
	u, err := scanUser(s.db.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if errors.Is(err, errNoRows) {
		return nil, fmt.Errorf("%w: id %d", ErrNoUser, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: look up user %d: %w", id, err)
	}
	return u, nil
}

// Users lists all users by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rs, err := s.db.query(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rs.Close()
	var out []User
	for rs.Next() {
		u, err := scanUser(rs)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		out = append(out, *u)
	}
	return out, rs.Err()
}

func (s *Store) updateUser(ctx context.Context, name, what, q string, args ...any) error {
	n, err := s.db.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: %s for %s: %w", what, name, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	return nil
}

// SetPassword replaces the user's password hash.
func (s *Store) SetPassword(ctx context.Context, name, hash string) error {
	return s.updateUser(ctx, name, "set password", `UPDATE users SET password_hash = $1 WHERE name = $2`, hash, name)
}

// SetDisabled disables or enables the account.
func (s *Store) SetDisabled(ctx context.Context, name string, disabled bool) error {
	return s.updateUser(ctx, name, "set disabled", `UPDATE users SET disabled = $1 WHERE name = $2`, b2i(disabled), name)
}

// SetQuota sets the storage and message-count limits; 0 means unlimited.
func (s *Store) SetQuota(ctx context.Context, name string, bytes, messages int64) error {
	if bytes < 0 || messages < 0 {
		return errors.New("store: negative quota")
	}
	return s.updateUser(ctx, name, "set quota", `UPDATE users SET quota_bytes = $1, quota_messages = $2 WHERE name = $3`, bytes, messages, name)
}

// RecordLogin stamps the user's last login time.
func (s *Store) RecordLogin(ctx context.Context, id UserID) error {
	_, err := s.db.exec(ctx, `UPDATE users SET last_login_at = $1 WHERE id = $2`, time.Now().UnixNano(), id)
	if err != nil {
		return fmt.Errorf("store: record login of %d: %w", id, err)
	}
	return nil
}

// PasswordHash returns the user's hash and disabled flag; ErrNoUser if the
// user is unknown.
func (s *Store) PasswordHash(ctx context.Context, name string) (string, bool, error) {
	var hash string
	var disabled int64
	err := s.db.queryRow(ctx, `SELECT password_hash, disabled FROM users WHERE name = $1`, name).Scan(&hash, &disabled)
	if errors.Is(err, errNoRows) {
		return "", false, fmt.Errorf("%w: %s", ErrNoUser, name)
	}
	if err != nil {
		return "", false, fmt.Errorf("store: password hash of %s: %w", name, err)
	}
	return hash, disabled != 0, nil
}

// DeleteUser removes the user and its index rows. With purgeMail it also
// removes the Maildir from disk.
func (s *Store) DeleteUser(ctx context.Context, name string, purgeMail bool) error {
	u, err := s.User(ctx, name)
	if err != nil {
		return err
	}
	if _, err := s.db.exec(ctx, `DELETE FROM users WHERE id = $1`, u.ID); err != nil {
		return fmt.Errorf("store: delete user %s: %w", name, err)
	}
	s.forgetUser(u.ID)
	if purgeMail {
		if err := os.RemoveAll(s.MaildirPath(u)); err != nil {
			return fmt.Errorf("store: purge mail of %s: %w", name, err)
		}
	}
	return nil
}
