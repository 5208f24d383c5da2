package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/postoffice/postoffice/auth"
)

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var workloadOrder = []string{"pop3-retr", "pop3-login", "imap-headers", "imap-body", "append", "login", "mixed", "select-big-first", "select-big", "idle", "idle-big"}

// reportMain reads --json output files and prints one Markdown table:
// per workload, each server's figures and the ratio ours/base.
func reportMain(args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	ours := fs.String("ours", "postofficed", "server label whose ratio is shown")
	base := fs.String("base", "dovecot-tuned", "server label the ratio is taken against")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var rs []result
	for _, f := range fs.Args() {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "poload report:", err)
			return 1
		}
		more, err := readResults(fh)
		fh.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "poload report: %s: %v\n", f, err)
			return 1
		}
		rs = append(rs, more...)
	}
	writeTable(os.Stdout, rs, *ours, *base)
	return 0
}

func readResults(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var res result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

func rank(w string) int {
	if i := slices.Index(workloadOrder, w); i >= 0 {
		return i
	}
	return len(workloadOrder)
}

// keyFigures are the workload-specific figures shown in the table and
// compared (lower is better for all of them).
func keyFigures(r result) []string {
	switch r.Workload {
	case "idle", "idle-big":
		return []string{"pss_per_conn_kb", "p50_ms", "p99_ms", "max_ms", "missed", "idle_cpu_ms_per_s"}
	case "select-big", "select-big-first":
		return []string{"cold_ms", "warm_ms", "messages"}
	}
	return nil
}

func writeTable(w io.Writer, rs []result, ours, base string) {
	sort.SliceStable(rs, func(i, j int) bool { return rank(rs[i].Workload) < rank(rs[j].Workload) })
	find := func(workload, server string) *result {
		for i := range rs {
			if rs[i].Workload == workload && rs[i].Server == server {
				return &rs[i]
			}
		}
		return nil
	}
	fmt.Fprintf(w, "| workload | server | conns | ops | ops/s | MB/s | server CPU s / 1000 ops | server PSS MB end (max) | other | %s / %s |\n", ours, base)
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---|---|")
	for _, r := range rs {
		mbs := "-"
		if r.MBPerS > 0 {
			mbs = fmt.Sprintf("%.1f", r.MBPerS)
		}
		opsPerS := fmt.Sprintf("%.1f", r.OpsPerS)
		if r.OpsPerS == 0 || strings.HasPrefix(r.Workload, "idle") {
			opsPerS = "-" // idle: connections are not a rate
		}
		cpu := "-"
		if r.CPUPer1000 >= 0 {
			cpu = fmt.Sprintf("%.3f", r.CPUPer1000)
		}
		var other []string
		for _, k := range keyFigures(r) {
			if v, ok := r.Extra[k]; ok {
				other = append(other, fmt.Sprintf("%s %.4g", k, v))
			}
		}
		if r.Errors > 0 {
			other = append(other, fmt.Sprintf("**%d errors**: %.80s", r.Errors, r.FirstError))
		}
		ratio := ""
		b := find(r.Workload, base)
		if b == nil && r.Workload == "idle-big" {
			b = find("idle", base) // a per-process server's cost per connection does not depend on N
		}
		if r.Server == ours && b != nil {
			ratio = ratios(r, *b)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d %s | %s | %s | %s | %.1f (%.1f) | %s | %s |\n",
			r.Workload, r.Server, r.Conns, r.Ops, r.OpUnit, opsPerS, mbs, cpu, r.PSSEndMB, r.PSSMaxMB,
			strings.Join(other, ", "), ratio)
	}
}

// ratios formats ours/base for CPU per op, throughput, memory and the
// workload's key figures.
func ratios(o, b result) string {
	var out []string
	add := func(name string, x, y float64) {
		if y > 0 && x > 0 {
			out = append(out, fmt.Sprintf("%s ×%.2f", name, x/y))
		}
	}
	if o.CPUPer1000 >= 0 && o.Workload != "select-big-first" {
		add("CPU/op", o.CPUPer1000, b.CPUPer1000)
	}
	switch o.Workload {
	case "idle", "idle-big":
		add("PSS/conn", o.Extra["pss_per_conn_kb"], b.Extra["pss_per_conn_kb"])
		add("p99", o.Extra["p99_ms"], b.Extra["p99_ms"])
	case "select-big", "select-big-first":
		add("cold", o.Extra["cold_ms"], b.Extra["cold_ms"])
		add("warm", o.Extra["warm_ms"], b.Extra["warm_ms"])
	default:
		add("ops/s", o.OpsPerS, b.OpsPerS)
		add("PSS max", o.PSSMaxMB, b.PSSMaxMB)
	}
	return strings.Join(out, ", ")
}

// hashMain prints an argon2id hash of a password in Dovecot's
// "{ARGON2ID}$argon2id$..." form, made by the server's own auth package,
// so both servers can be given the very same stored hash.
func hashMain(args []string) int {
	fs := flag.NewFlagSet("hash", flag.ContinueOnError)
	pw := fs.String("password", "benchpw", "password")
	t := fs.Uint("t", uint(auth.DefaultParams.Time), "argon2 passes")
	mKiB := fs.Uint("m", uint(auth.DefaultParams.MemoryKiB), "argon2 memory in KiB")
	p := fs.Uint("p", uint(auth.DefaultParams.Threads), "argon2 lanes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	h, err := auth.Hash(*pw, auth.Params{Time: uint32(*t), MemoryKiB: uint32(*mKiB), Threads: uint8(*p)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "poload hash:", err)
		return 1
	}
	fmt.Println(h)
	return 0
}

// corpusMain writes the benchmark corpus.
func corpusMain(args []string) int {
	fs := flag.NewFlagSet("corpus", flag.ContinueOnError)
	var o corpusOptions
	fs.StringVar(&o.Dir, "out", "", "output directory (Maildirs at OUT/<user>/Maildir); must not exist")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fs.IntVar(&o.Users, "users", 50, "users bench1..benchN")
	fs.IntVar(&o.Messages, "msgs", 200, "messages per bench user")
	fs.StringVar(&o.BigUser, "big-user", "big", "user with the big mailbox; empty: none")
	fs.IntVar(&o.BigCount, "big-msgs", 100000, "messages in the big mailbox")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.Dir == "" {
		fmt.Fprintln(os.Stderr, "poload corpus: --out is required")
		return 2
	}
	if _, err := os.Stat(o.Dir); err == nil {
		fmt.Fprintf(os.Stderr, "poload corpus: %s exists\n", o.Dir)
		return 1
	}
	t0 := time.Now()
	n, err := generateCorpus(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "poload corpus:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "poload corpus: %d users × %d msgs + %s %d msgs, %.1f MB in %.1fs\n",
		o.Users, o.Messages, o.BigUser, o.BigCount, float64(n)/1e6, time.Since(t0).Seconds())
	return 0
}
