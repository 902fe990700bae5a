package main

import (
	"fmt"
	"net/http"
	"net/smtp"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailswarm/internal/peertest"
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
				if code != http.StatusNotFound || st.Tracker != "" {
					t.Errorf("tracker off: announce %d %q, status tracker %q; want 404 and none", code, b, st.Tracker)
				}
				return
			}
			if code != 200 || !strings.Contains(string(b), tc.interval) || st.Tracker != base+"/announce" {
				t.Errorf("announce %d %q, status tracker %q; want %s and %s/announce", code, b, st.Tracker, tc.interval, base)
			}
		})
	}
}
