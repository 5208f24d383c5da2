package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseSize parses a storage size: plain bytes ("1048576") or a number with
// a binary unit K, M, G or T (powers of 1024; "KB", "KiB" and lower case
// are accepted too), e.g. "2G", "500M", "1024K", "1.5G". "0", "none" and
// "unlimited" mean no limit (0).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "none", "unlimited":
		return 0, nil
	case "":
		return 0, fmt.Errorf("bad size %q: empty", s)
	}
	num := strings.TrimRightFunc(t, func(r rune) bool { return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' })
	mult, ok := sizeUnits[strings.ToUpper(t[len(num):])]
	if !ok {
		return 0, fmt.Errorf("bad size %q: unknown unit (use K, M, G or T)", s)
	}
	if num == "" || strings.ContainsAny(num, "+-eExXpP_") {
		return 0, fmt.Errorf("bad size %q: want a number like 2G, 500M or 1048576", s)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad size %q: want a number like 2G, 500M or 1048576", s)
		}
		if n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("bad size %q: too large", s)
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q: want a number like 2G, 500M or 1048576", s)
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return int64(math.Round(v)), nil
}

// sizeUnits are the accepted unit suffixes, upper-cased.
var sizeUnits = map[string]float64{
	"": 1, "B": 1,
	"K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10,
	"M": 1 << 20, "MB": 1 << 20, "MIB": 1 << 20,
	"G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30,
	"T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40,
}

// formatSize renders n bytes with a binary unit: "512", "1.5K", "2.0G".
func formatSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	f := float64(n)
	i := -1
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + string(units[i])
}
