package gitstore

import (
	"os"
	"testing"
)

// BenchmarkVerifyPack verifies the pack MAILSWARM_BENCH_PACK names (for
// example the one archive's BenchmarkInstallPack keeps): every object
// inflated and hashed, the trailer checked. Reports MiB of pack a second.
func BenchmarkVerifyPack(b *testing.B) {
	p, err := os.ReadFile(benchPackPath(b))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := VerifyPack(p); err != nil {
			b.Fatal(err)
		}
	}
}
