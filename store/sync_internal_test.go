package store

import (
	"slices"
	"testing"
)

func TestSortByName_deliveryOrder(t *testing.T) {
	names := []string{
		"1700000001.M5P9Q1.host",
		"1700000000.M100000P9Q3.host",
		"1700000000.M99999P9Q2.host:2,S",
		"1700000000.M99999P9Q10.host",
		"junk",
		"1699999999.host",
	}
	sortByName(names)
	want := []string{"junk", "1699999999.host", "1700000000.M99999P9Q2.host:2,S", "1700000000.M99999P9Q10.host",
		"1700000000.M100000P9Q3.host", "1700000001.M5P9Q1.host"}
	if !slices.Equal(names, want) {
		t.Fatalf("got %q", names)
	}
}
