package archive

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const killChildEnv = "MAILSWARM_SPOOL_KILL_CHILD"

// killChild is the process TestSpoolKill9 kills: 16 senders Accept
// messages without Message-ID (so deduplication cannot hide a replayed
// one), each recorded in acked after Accept returned, while Run commits
// every 20 ms.
func killChild(dir string) {
	a, err := Open(&Options{Dir: dir, CommitInterval: 20 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	l, err := a.List("test")
	if err != nil {
		panic(err)
	}
	acked, err := os.OpenFile(filepath.Join(dir, "acked"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		panic(err)
	}
	go a.Run(context.Background())
	var mu sync.Mutex
	for s := range 16 {
		go func() {
			for i := 0; ; i++ {
				subj := fmt.Sprintf("kill %d-%d-%d", os.Getpid(), s, i)
				raw := fmt.Appendf(nil, "From: k@example.org\r\nSubject: %s\r\n\r\n%s\r\n", subj, subj)
				if err := l.Accept(context.Background(), raw); err != nil {
					panic(err)
				}
				mu.Lock()
				acked.WriteString(subj + "\n")
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestSpoolKill9 kills a delivering and committing process with SIGKILL
// again and again: every acknowledged message must be archived exactly
// once, and git must stay sound.
func TestSpoolKill9(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	a, err := Open(&Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Create("test", ""); err != nil {
		t.Fatal(err)
	}
	a.Close()
	const kills = 20
	for range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolKill9$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rand.IntN(200)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}

	_, l := newSpoolList(t, Options{Dir: dir})
	if _, err := l.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range subjects(t, l) {
		count[s]++
	}
	f, err := os.Open(filepath.Join(dir, "acked"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nacked := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "kill ") {
			continue // a line torn by the kill
		}
		nacked++
		if count[sc.Text()] != 1 {
			t.Errorf("acknowledged %q archived %d times", sc.Text(), count[sc.Text()])
		}
	}
	for s, n := range count {
		if n != 1 {
			t.Errorf("%q archived %d times", s, n)
		}
	}
	t.Logf("%d kills: %d acknowledged, %d archived", kills, nacked, len(count))
	if nacked == 0 {
		t.Error("nothing acknowledged")
	}
	gitFsck(t, l)
}
