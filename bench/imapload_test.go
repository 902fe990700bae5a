package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// TestIMAPLoadBench runs the IMAP load benchmark briefly, the same binary
// as baseline and as this, clients from two loopback addresses: both
// rows, every kind of command answered OK, IDLE told of the new mail,
// nothing failed.
func TestIMAPLoadBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs mailswarm serve twice")
	}
	peertest.Need(t, "python3")
	bin := testBinary(t)
	c := imapLoadConfig{N: 60, Clients: 6, Duration: 4 * time.Second, Rate: 10, Senders: 2, Sources: 2,
		Bin: bin, Baseline: bin, Shared: peertest.SharedDir(t)}
	sides, err := runIMAPLoadBench(t.Context(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(sides) != 2 || sides[0].Label != "baseline" || sides[1].Label != "this" {
		t.Fatalf("sides = %+v, want baseline and this", sides)
	}
	for _, s := range sides {
		if s.Err != nil || s.Loaded != 60 || s.FailedCmds != 0 || s.FailedClients != 0 || s.SendFailed != 0 {
			t.Errorf("%s: err %v, loaded %d, failed commands %d, failed clients %d, new mail failed %d; errors %q",
				s.Label, s.Err, s.Loaded, s.FailedCmds, s.FailedClients, s.SendFailed, s.Errs)
		}
		for k, l := range s.Lat {
			if len(l) == 0 {
				t.Errorf("%s: no %s answered", s.Label, loadKindNames[k])
			}
		}
		if s.Sent != 40 || s.IdlesSaw == 0 || s.PeakRSSKiB <= 0 {
			t.Errorf("%s: %d new messages sent (want 40), %d IDLEs saw mail (want some), peak RSS %d KiB", s.Label, s.Sent, s.IdlesSaw, s.PeakRSSKiB)
		}
	}
	table := renderIMAPLoadTable(c, sides)
	for _, want := range []string{"| baseline | 60 |", "| this | 60 |", "| this | IDLE (2 s at most) |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
