//go:build race

package main

// raceDetector is set under -race, which makes serve some ten times
// slower: the simulated week scales down (fewer days of history, fewer
// slices a day), never to nothing; the gossip test sends fewer messages.
const raceDetector = true
