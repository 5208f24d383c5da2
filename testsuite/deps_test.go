package testsuite

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/postoffice/postoffice"

// TestPackageBoundaries enforces the import rules of STYLE.md §1 with
// `go list -deps`: store and auth know nothing of ours, store nothing of
// IMAP, and the protocol daemons reach SQL drivers and Maildir code only
// through store.
func TestPackageBoundaries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	ours := func(pkg, dep string) bool {
		return (dep == module || strings.HasPrefix(dep, module+"/")) &&
			dep != module+"/"+pkg && !strings.HasPrefix(dep, module+"/"+pkg+"/")
	}
	prefix := func(p string) func(string, string) bool {
		return func(_, dep string) bool { return dep == p || strings.HasPrefix(dep, p+"/") }
	}
	storePkg := module + "/store"
	rules := []struct {
		pkg     string
		why     string
		banned  func(pkg, dep string) bool
		through string // dependencies reached only through this package are allowed
	}{
		{"store", "store must not know IMAP", prefix("github.com/emersion/go-imap"), ""},
		{"store", "store imports no package of ours", ours, ""},
		{"auth", "auth imports no package of ours", ours, ""},
		{"imapd", "imapd must not know PostgreSQL", prefix("github.com/jackc/pgx"), storePkg},
		{"imapd", "imapd must not know SQLite", prefix("modernc.org/sqlite"), storePkg},
		{"imapd", "imapd must not know Maildir files", prefix("github.com/emersion/go-maildir"), storePkg},
		{"pop3d", "pop3d must not know PostgreSQL", prefix("github.com/jackc/pgx"), storePkg},
		{"pop3d", "pop3d must not know SQLite", prefix("modernc.org/sqlite"), storePkg},
		{"pop3d", "pop3d must not know Maildir files", prefix("github.com/emersion/go-maildir"), storePkg},
	}
	graphs := map[string]map[string][]string{} // pkg -> import path -> its imports
	for _, r := range rules {
		if _, ok := graphs[r.pkg]; ok {
			continue
		}
		if _, err := os.Stat(filepath.Join("..", r.pkg)); err != nil {
			t.Logf("package %s does not exist yet; not checked", r.pkg)
			graphs[r.pkg] = nil
			continue
		}
		cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/"+r.pkg)
		cmd.Stderr = new(strings.Builder)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, cmd.Stderr)
		}
		g := map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			g[f[0]] = f[1:]
		}
		graphs[r.pkg] = g
	}
	for _, r := range rules {
		g := graphs[r.pkg]
		if g == nil {
			continue
		}
		// Walk the import graph from the package, not entering r.through.
		seen := map[string]bool{}
		var walk func(p string, path []string)
		walk = func(p string, path []string) {
			if seen[p] || (r.through != "" && (p == r.through || strings.HasPrefix(p, r.through+"/"))) {
				return
			}
			seen[p] = true
			path = append(path, p)
			if r.banned(r.pkg, p) {
				t.Errorf("%s: %s", r.why, strings.Join(path, " -> "))
				return
			}
			for _, d := range g[p] {
				walk(d, path)
			}
		}
		walk(module+"/"+r.pkg, nil)
	}
}
