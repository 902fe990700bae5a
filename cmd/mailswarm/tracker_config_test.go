package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"

	"github.com/anacrolix/torrent/tracker/udp"
)

// serve's [bittorrent] tracker keys: tracker_interval is the interval its
// tracker tells peers; tracker = false leaves GET /announce 404 and
// status without a tracker URL.
func TestServeTrackerConfig(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		interval   string // the answer's "interval", "" for no tracker
	}{
		{"default", "", "8:intervali1800e"},
		{"interval", "tracker_interval = \"10m\"\n", "8:intervali600e"},
		{"off", "tracker = false\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			smtpPort, httpPort := peertest.FreePort(t), peertest.FreePort(t)
			cfg := filepath.Join(t.TempDir(), "mailswarm.toml")
			base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
			os.WriteFile(cfg, fmt.Appendf(nil, "data = %q\n[smtp]\nlisten = \"127.0.0.1:%d\"\n[imap]\nlisten = \"\"\n[http]\nlisten = \"127.0.0.1:%d\"\n"+
				"[bittorrent]\nslice_interval = \"1s\"\n%s[[list]]\nname = \"dev\"\naddresses = [\"dev@example.org\"]\n",
				data, smtpPort, httpPort, tc.keys), 0o644)
			srv := startServe(t, cfg, smtpPort, httpPort)
			defer srv.stop(t)
			msg := "From: A <a@example.net>\r\nTo: dev@example.org\r\nSubject: tracker\r\nMessage-ID: <tracker@test>\r\n\r\nhello\r\n"
			if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", smtpPort), nil, "a@example.net", []string{"dev@example.org"}, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			m, _ := firstManifest(t, base, srv.log)
			ih := m.Packs[0].InfoHash
			code, b := getURL(t, base+"/announce?info_hash="+url.QueryEscape(string(ih[:]))+"&port=40001&left=1")
			st := nodeStatus(t, &clusterNode{name: "node", ip: "127.0.0.1", http: httpPort})
			if tc.interval == "" {
				if code != http.StatusNotFound || st.Tracker != "" || st.TrackerUDP != "" {
					t.Errorf("tracker off: announce %d %q, status tracker %q %q; want 404 and none", code, b, st.Tracker, st.TrackerUDP)
				}
				return
			}
			if code != 200 || !strings.Contains(string(b), tc.interval) || st.Tracker != base+"/announce" {
				t.Errorf("announce %d %q, status tracker %q; want %s and %s/announce", code, b, st.Tracker, tc.interval, base)
			}
			// The UDP tracker on the BitTorrent port tells the same interval.
			if want := "udp://" + st.Listen + "/announce"; st.TrackerUDP != want {
				t.Fatalf("status tracker_udp %q, want %q", st.TrackerUDP, want)
			}
			cc, err := udp.NewConnClient(udp.NewConnClientOpts{Network: "udp4", Host: st.Listen})
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			hdr, _, err := cc.Client.Announce(ctx, udp.AnnounceRequest{InfoHash: ih, Left: 1, NumWant: -1, Port: 40001},
				udp.Options{}, func(net.Addr) bool { return false })
			if err != nil || !strings.Contains(tc.interval, fmt.Sprintf("i%de", hdr.Interval)) || hdr.Seeders != 1 {
				t.Errorf("UDP announce: %v, %+v: want the interval of %s and one seeder (the node)", err, hdr, tc.interval)
			}
		})
	}
}
