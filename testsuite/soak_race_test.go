//go:build race

package testsuite

// soakRace: the test binary has the race detector, so the soak builds the
// daemons with it too and counts their reports.
const soakRace = true
