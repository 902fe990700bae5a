package swarm

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"testing"
)

// FuzzParseManifest feeds ParseManifest arbitrary files. It must not
// panic, and what it accepts must be the canonical encoding of what it
// returns. The input is also tried as a body: a body that decodes and
// passes the rules must sign (under the test key) into a file that
// ParseManifest accepts and returns unchanged.
func FuzzParseManifest(f *testing.F) {
	// Small seeds keep the fuzzer's minimizing of new inputs (quadratic
	// in their length) short.
	d := manDayPack(0, "2026-01-31", 1000)
	d.File = "d"
	m := &Manifest{
		List: "l", Key: manTestPub(), Seq: 2, Prev: manH32("1"),
		Packs:   []PackEntry{d},
		Bundles: []BundleEntry{{Name: "b", Month: "2026-01", Files: []string{"d"}, Size: 1000, InfoHash: manH20("b")}},
	}
	empty := &Manifest{List: "l", Key: manTestPub(), Seq: 1}
	f.Add(manSign(f, empty))
	emptyBody, _, err := decodeFile(empty.Bytes())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(emptyBody)
	good := manSign(f, m)
	body, _, err := decodeFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(body)
	f.Add(bytes.Replace(good, []byte("4:sizei1000e"), []byte("4:sizei1001e"), 1))
	f.Add(good[:len(good)/2])
	f.Add(append(bytes.Clone(good), 'e'))
	f.Add(bytes.Replace(body, []byte("3:seqi2e"), []byte("3:seqi02e"), 1))
	f.Add(bytes.Replace(body, []byte("1:vi1e"), []byte("1:vi1e1:wi0e"), 1))
	f.Add([]byte("d4:body0:3:sig0:e"))
	f.Add([]byte("de"))
	f.Add([]byte("li-0ei01e2:abe"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseManifest(b, nil); err == nil {
			if !bytes.Equal(m.Bytes(), b) {
				t.Fatalf("accepted %q but Bytes() = %q", b, m.Bytes())
			}
			body, _, err := decodeFile(b)
			if err != nil {
				t.Fatalf("accepted %q but cannot split it: %v", b, err)
			}
			if enc := encodeBody(m); !bytes.Equal(enc, body) {
				t.Fatalf("accepted body %q re-encodes to %q", body, enc)
			}
			if m.Hash() != sha256.Sum256(b) {
				t.Fatalf("Hash() is not the sha256 of %q", b)
			}
		}

		m, err := decodeBody(b)
		if err != nil {
			return
		}
		if enc := encodeBody(m); !bytes.Equal(enc, b) {
			t.Fatalf("decoded body %q re-encodes to %q", b, enc)
		}
		m.Key = manTestPub()
		if m.check() != nil {
			return
		}
		signed, err := m.Sign(manTestKey)
		if err != nil {
			t.Fatalf("Sign of a manifest that passes the rules: %v", err)
		}
		got, err := ParseManifest(signed, manTestPub())
		if err != nil {
			t.Fatalf("ParseManifest refuses what Sign made: %v\n%q", err, signed)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("ParseManifest(Sign(m)) = %+v, want %+v", got, m)
		}
	})
}
