package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Reading a server's CPU time and memory from /proc, summed over its whole
// process tree (Dovecot runs a process per session).

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what we use from /proc/<pid>/stat.
type procStat struct {
	PID, PPID int
	// CPU is utime+stime+cutime+cstime: the process's own CPU time plus
	// that of its children it has waited for, so that sessions which
	// ended during a measurement still count (in their parent).
	CPU time.Duration
}

// parseStat parses the contents of /proc/<pid>/stat. The command name
// (field 2) may contain spaces and parentheses, so fields are counted from
// the last ')'.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return st, fmt.Errorf("stat: malformed %q", b)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return st, fmt.Errorf("stat: pid: %w", err)
	}
	// After ')': field 3 (state) is f[0], so field k is f[k-3].
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return st, fmt.Errorf("stat: %d fields after comm", len(f))
	}
	st.PID = pid
	if st.PPID, err = strconv.Atoi(f[4-3]); err != nil {
		return st, fmt.Errorf("stat: ppid: %w", err)
	}
	var ticks uint64
	for k := 14; k <= 17; k++ { // utime stime cutime cstime
		v, err := strconv.ParseInt(f[k-3], 10, 64)
		if err != nil {
			return st, fmt.Errorf("stat: field %d: %w", k, err)
		}
		if v > 0 {
			ticks += uint64(v)
		}
	}
	st.CPU = time.Duration(ticks) * time.Second / clockTicks
	return st, nil
}

// parsePSS returns the Pss: line of /proc/<pid>/smaps_rollup in KiB.
func parsePSS(b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("smaps_rollup: no Pss line")
}

// treeSample is a snapshot of a process tree.
type treeSample struct {
	At    time.Time
	CPU   time.Duration // summed over live processes of the tree
	PSSKB uint64        // summed PSS; 0 when not measured
	Procs int
}

// allStats reads /proc/*/stat. Processes that vanish meanwhile are skipped.
func allStats(procDir string) (map[int]procStat, error) {
	ents, err := os.ReadDir(procDir)
	if err != nil {
		return nil, err
	}
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(procDir + "/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		out[st.PID] = st
	}
	return out, nil
}

// treeOf returns root and all its descendants present in stats.
func treeOf(root int, stats map[int]procStat) []int {
	children := make(map[int][]int)
	for pid, st := range stats {
		children[st.PPID] = append(children[st.PPID], pid)
	}
	if _, ok := stats[root]; !ok {
		return nil
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// sampleTree measures the tree rooted at pid: CPU always, PSS when withPSS.
func sampleTree(procDir string, pid int, withPSS bool) (treeSample, error) {
	s := treeSample{At: time.Now()}
	stats, err := allStats(procDir)
	if err != nil {
		return s, err
	}
	tree := treeOf(pid, stats)
	if len(tree) == 0 {
		return s, fmt.Errorf("process %d not found", pid)
	}
	s.Procs = len(tree)
	for _, p := range tree {
		s.CPU += stats[p].CPU
		if withPSS {
			b, err := os.ReadFile(fmt.Sprintf("%s/%d/smaps_rollup", procDir, p))
			if err != nil {
				continue // exited, or a kernel thread
			}
			if kb, err := parsePSS(b); err == nil {
				s.PSSKB += kb
			}
		}
	}
	return s, nil
}
