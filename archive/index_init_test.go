package archive

import (
	"path/filepath"
	"sync"
	"testing"
)

// TestOpenIndexConcurrentCreate: processes opening a list whose index does
// not exist yet (serve creating a mirror list while `mailswarm export`
// opens it) each create the schema or find it; none fails. Before, the
// second to create failed with "table meta already exists" (seen from
// export beside a mirror's first sync).
func TestOpenIndexConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	for round := range 20 {
		path := filepath.Join(dir, "index"+string(rune('a'+round))+".sqlite3")
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				<-start
				db, err := openIndex(path, true)
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: opener %d: %v", round, i, err)
			}
		}
	}
}
