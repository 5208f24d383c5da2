//go:build !race

package testsuite

// soakRace: see soak_race_test.go.
const soakRace = false
