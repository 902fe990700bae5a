//go:build race

package imapd_test

// raceDetector is set when the tests run under -race, which makes the
// server some ten times slower: load tests scale down (.ci/run runs them
// at full size without -race as well).
const raceDetector = true
