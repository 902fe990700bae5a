//go:build race

package archive

// raceDetector is set under -race, which makes import, verify and reindex
// some ten times slower: the corpus tests import a sample of each large
// corpus (corpusSample); .ci/run runs them at full size without -race.
const raceDetector = true
