package metrics

import (
	"fmt"
	"os"
)

// MaildirWritable checks that files can be created in dir, the Maildir
// root: it creates and removes a temporary dot-file there (dot-files are
// ignored by Maildir readers).
func MaildirWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".healthz-*")
	if err != nil {
		return fmt.Errorf("maildir root %s not writable: %w", dir, err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("maildir root %s: %w", dir, err)
	}
	return nil
}
