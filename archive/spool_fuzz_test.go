package archive

import "testing"

// FuzzSpoolSegment feeds arbitrary bytes as a spool segment: the reader
// must not panic and must yield only whole, CRC-valid records, in order.
func FuzzSpoolSegment(f *testing.F) {
	var seg []byte
	for i := range 3 {
		seg = appendRecord(seg, uint64(i+1), int64(i), spoolMsg(i, true))
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add(append(append([]byte(nil), seg[:40]...), seg...))
	f.Add([]byte(spoolMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, valid, err := parseSegment(b)
		if valid < 0 || valid > len(b) {
			t.Fatalf("valid = %d of %d", valid, len(b))
		}
		off := 0
		for _, r := range recs {
			again, ok := decodeRecord(b, off)
			if !ok || again.end != r.end || again.seq != r.seq || string(again.data) != string(r.data) {
				t.Fatalf("record at %d is not a valid record", off)
			}
			enc := appendRecord(nil, r.seq, r.arrived, r.data)
			if string(enc) != string(b[off:r.end]) {
				t.Fatalf("record at %d does not re-encode to its bytes", off)
			}
			off = r.end
		}
		if off != valid {
			t.Fatalf("records end at %d, valid = %d", off, valid)
		}
		if err == nil && valid < len(b) {
			for i := valid + 1; i < len(b); i++ {
				if _, ok := decodeRecord(b, i); ok {
					t.Fatalf("valid record at %d after the torn tail at %d, yet no error", i, valid)
				}
			}
		}
	})
}
