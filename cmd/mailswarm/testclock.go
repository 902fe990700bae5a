package main

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// testClockEnv names a file holding a number of seconds that serve's
// swarm clock runs ahead of the real one. It exists for the multi-node
// tests (a day close or a month close in real serve processes, without
// waiting for midnight); nothing else should set it.
const testClockEnv = "MAILSWARM_TEST_CLOCK_OFFSET_FILE"

// swarmClock returns the clock of serve's swarm node: nil (time.Now)
// unless testClockEnv is set, then time.Now plus the file's offset,
// re-read at most every 100 ms.
func swarmClock() func() time.Time {
	path := os.Getenv(testClockEnv)
	if path == "" {
		return nil
	}
	var mu sync.Mutex
	var offset time.Duration
	var read time.Time
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(read) > 100*time.Millisecond {
			read = now
			if b, err := os.ReadFile(path); err == nil {
				if s, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil {
					offset = time.Duration(s * float64(time.Second))
				}
			}
		}
		return time.Now().Add(offset)
	}
}
