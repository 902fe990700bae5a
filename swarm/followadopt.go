package swarm

import (
	"context"
	"path/filepath"
	"time"
)

// One copy at a mirror (docs/ARCHITECTURE.md, "One copy: sealed day
// packs"). A mirror that followed a day's slices installed each slice
// file as a git pack; at the day close it rebuilds the day pack from git
// (or downloads it, installing only the commits after its tip) and seeds
// it from packs/: the day's objects on disk twice. adoptDays makes such a
// day pack the epoch's storage as the origin's adoptSealed does, through
// the same archive.List.AdoptSealed and under the same invariants: the
// file is final first (the manifest naming it is written: called from
// commit), it is linked in with a sealed .keep, rows move in one durable
// transaction, the slice packs it covers go.
//
// A day pack downloaded and installed whole is already one of the epoch's
// git packs under its own trailer (List.Installed): nothing to do, and
// its file is not verified again. Nor is the
// check made again in a process once a day pack was found or made a
// git pack: two stats for each of a 7,300-day list's day packs were
// 30 ms of every slice. The first call in a process also
// passes every epoch with day packs, with no file, so that a swap a kill
// cut short ends (a stat of the swapped mark when none did).

// adoptDays adopts the day packs of m that are not git packs yet. Errors
// are logged and the work tried again at the next commit.
func (f *follower) adoptDays(m *Manifest) {
	byEpoch := map[int][]string{}
	var epochs []int
	add := func(epoch int) {
		if _, ok := byEpoch[epoch]; !ok {
			byEpoch[epoch] = nil
			epochs = append(epochs, epoch)
		}
	}
	every := f.installedOK == nil
	if every {
		f.installedOK = map[epochTrailer]bool{}
	}
	var adopting []epochTrailer
	for _, p := range m.Packs {
		if p.Kind != KindDay {
			continue
		}
		if every {
			add(p.Epoch)
		}
		if f.installedOK[epochTrailer{p.Epoch, p.Trailer}] {
			continue
		}
		if f.list.Installed(p.Epoch, p.Trailer) {
			f.installedOK[epochTrailer{p.Epoch, p.Trailer}] = true
			continue
		}
		add(p.Epoch)
		byEpoch[p.Epoch] = append(byEpoch[p.Epoch], filepath.Join(f.dir, packsDir, p.File))
		adopting = append(adopting, epochTrailer{p.Epoch, p.Trailer})
	}
	failed := false
	for _, epoch := range epochs {
		start := time.Now()
		dropped, err := f.list.AdoptSealed(context.Background(), epoch, byEpoch[epoch])
		if err != nil {
			f.log.Warn("swarm: follow: day packs not adopted as the epoch's storage", "epoch", epoch, "err", err)
			failed = true
			continue
		}
		if len(byEpoch[epoch]) > 0 || len(dropped) > 0 {
			f.log.Debug("swarm: follow: day packs adopted", "epoch", epoch, "days", len(byEpoch[epoch]),
				"packs_dropped", len(dropped), "seconds", time.Since(start).Seconds())
		}
		f.mu.Lock()
		f.st.DaysAdopted += len(byEpoch[epoch])
		f.mu.Unlock()
	}
	if failed {
		f.installedOK = nil // every epoch again next time
		return
	}
	// Adopted: git packs from now on.
	for _, et := range adopting {
		f.installedOK[et] = true
	}
}

// epochTrailer names a git pack: its epoch and its SHA-1 trailer.
type epochTrailer struct {
	epoch   int
	trailer [20]byte
}
