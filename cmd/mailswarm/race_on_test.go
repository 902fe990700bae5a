//go:build race

package main

// raceDetector is set when the tests run under -race (everything some
// ten times slower): the gossip test sends fewer messages.
const raceDetector = true
