package main

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{"0", 0, ""},
		{"1048576", 1048576, ""},
		{"1024K", 1 << 20, ""},
		{"500M", 500 << 20, ""},
		{"2G", 2 << 30, ""},
		{"2g", 2 << 30, ""},
		{"2GB", 2 << 30, ""},
		{"2GiB", 2 << 30, ""},
		{"1T", 1 << 40, ""},
		{"1.5G", 3 << 29, ""},
		{" 10M ", 10 << 20, ""},
		{"none", 0, ""},
		{"unlimited", 0, ""},
		{"", 0, "empty"},
		{"G", 0, "want a number"},
		{"-1G", 0, "want a number"},
		{"+1G", 0, "want a number"},
		{"1e9", 0, "want a number"},
		{"0x10", 0, "want a number"},
		{"2X", 0, "unknown unit"},
		{"2 G", 0, "want a number"},
		{"2i", 0, "unknown unit"},
		{"10ib", 0, "unknown unit"},
		{"9999999999T", 0, "too large"},
		{"99999999999999999999", 0, "want a number"},
		{"1.2.3M", 0, "want a number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSize(%q) = %d, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"}, {1023, "1023"}, {1024, "1.0K"}, {1536, "1.5K"}, {2 << 30, "2.0G"}, {1 << 62, "4.0E"},
	}
	for _, tt := range tests {
		if got := formatSize(tt.in); got != tt.want {
			t.Errorf("formatSize(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"2G", "500M", "1024K", "1.5T", "123", "none"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}
