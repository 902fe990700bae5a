package message

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse: Parse never panics and its encodings round-trip; the
// decoders never panic on the input. (That the IMAP renderings are
// well-formed is imapd's FuzzFormat.)
func FuzzParse(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.raw)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "parse", "*.eml"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := Parse(raw)
		if p.MessageID == "" {
			t.Fatal("empty MessageID")
		}
		env, err := DecodeEnvelope(EncodeEnvelope(&p.Envelope))
		if err != nil || !reflect.DeepEqual(*env, p.Envelope) {
			t.Fatalf("envelope round trip: %v", err)
		}
		bs, err := DecodeBodyStructure(EncodeBodyStructure(&p.Body))
		if err != nil || !reflect.DeepEqual(*bs, p.Body) {
			t.Fatalf("bodystructure round trip: %v", err)
		}
		// garbage in the stored encodings must not panic either
		DecodeEnvelope(raw)
		DecodeBodyStructure(raw)
		if len(raw) > 0 {
			DecodeEnvelope(append([]byte{envelopeFormat}, raw...))
			DecodeBodyStructure(append([]byte{bodyStructureFormat}, raw...))
		}
	})
}
