//go:build !race

package imapd_test

const raceDetector = false
