package message

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Compact binary encoding of Envelope and BodyStructure for the index:
// a format byte, then strings as uvarint length + bytes, numbers as
// uvarints, lists as a uvarint count. Decoding checks every length
// against what is left, so garbage gives an error, never a panic.

const (
	envelopeFormat      = 2 // 2: Envelope.Empty added
	bodyStructureFormat = 2 // 2: envelopes inside are format 2
)

var errCorrupt = errors.New("message: corrupt encoding")

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a list length; each element takes at least min bytes.
func (d *decoder) count(min int) int {
	n := d.uint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.err = errCorrupt
		return 0
	}
	return int(n)
}

func (e *encoder) envelope(env *Envelope) {
	e.str(env.Date)
	e.str(env.Subject)
	for _, l := range [][]EnvelopeAddress{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		e.uint(uint64(len(l)))
		for _, a := range l {
			var flags uint64
			if a.GroupStart {
				flags |= 1
			}
			if a.GroupEnd {
				flags |= 2
			}
			if a.NameEmpty {
				flags |= 4
			}
			e.uint(flags)
			e.str(a.Name)
			e.str(a.AdrList)
			e.str(a.Mailbox)
			e.str(a.Host)
		}
	}
	e.str(env.InReplyTo)
	e.str(env.MessageID)
	e.uint(uint64(env.Empty))
}

func (d *decoder) envelope() *Envelope {
	env := &Envelope{}
	env.Date = d.str()
	env.Subject = d.str()
	for _, l := range []*[]EnvelopeAddress{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc} {
		n := d.count(5)
		if n > 0 {
			*l = make([]EnvelopeAddress, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			flags := d.uint()
			(*l)[i] = EnvelopeAddress{
				GroupStart: flags&1 != 0, GroupEnd: flags&2 != 0, NameEmpty: flags&4 != 0,
				Name: d.str(), AdrList: d.str(), Mailbox: d.str(), Host: d.str(),
			}
		}
	}
	env.InReplyTo = d.str()
	env.MessageID = d.str()
	env.Empty = uint8(d.uint())
	return env
}

// EncodeEnvelope encodes e compactly for storage; DecodeEnvelope reverses it.
func EncodeEnvelope(e *Envelope) []byte {
	enc := &encoder{b: make([]byte, 0, 256)}
	enc.b = append(enc.b, envelopeFormat)
	if e == nil {
		e = &Envelope{}
	}
	enc.envelope(e)
	return enc.b
}

// DecodeEnvelope decodes what EncodeEnvelope produced.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	if len(b) == 0 || b[0] != envelopeFormat {
		return nil, fmt.Errorf("decode envelope: %w", errCorrupt)
	}
	d := &decoder{b: b[1:]}
	env := d.envelope()
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode envelope: %w", d.err)
	}
	return env, nil
}

// maxDecodeDepth bounds nesting when decoding a stored BodyStructure.
const maxDecodeDepth = 200

func (e *encoder) params(ps [][2]string) {
	e.uint(uint64(len(ps)))
	for _, p := range ps {
		e.str(p[0])
		e.str(p[1])
	}
}

func (d *decoder) params() [][2]string {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	ps := make([][2]string, n)
	for i := 0; i < n && d.err == nil; i++ {
		ps[i] = [2]string{d.str(), d.str()}
	}
	return ps
}

func (e *encoder) bodyStructure(b *BodyStructure) {
	e.str(b.Type)
	e.str(b.Subtype)
	e.params(b.Params)
	e.str(b.ID)
	e.str(b.Description)
	e.str(b.Encoding)
	e.uint(uint64(b.Size))
	e.uint(uint64(b.Lines))
	var flags uint64
	if b.Envelope != nil {
		flags |= 1
	}
	if b.Body != nil {
		flags |= 2
	}
	e.uint(flags)
	if b.Envelope != nil {
		e.envelope(b.Envelope)
	}
	if b.Body != nil {
		e.bodyStructure(b.Body)
	}
	e.uint(uint64(len(b.Children)))
	for i := range b.Children {
		e.bodyStructure(&b.Children[i])
	}
	e.str(b.MD5)
	e.str(b.Disposition)
	e.params(b.DispositionParams)
	e.uint(uint64(len(b.Language)))
	for _, l := range b.Language {
		e.str(l)
	}
	e.str(b.Location)
	e.uint(uint64(b.Empty))
}

func (d *decoder) bodyStructure(b *BodyStructure, depth int) {
	if depth > maxDecodeDepth {
		d.err = errCorrupt
		return
	}
	b.Type = d.str()
	b.Subtype = d.str()
	b.Params = d.params()
	b.ID = d.str()
	b.Description = d.str()
	b.Encoding = d.str()
	b.Size = int64(d.uint())
	b.Lines = int64(d.uint())
	flags := d.uint()
	if d.err != nil {
		return
	}
	if flags&1 != 0 {
		b.Envelope = d.envelope()
	}
	if flags&2 != 0 && d.err == nil {
		b.Body = &BodyStructure{}
		d.bodyStructure(b.Body, depth+1)
	}
	if n := d.count(16); n > 0 {
		b.Children = make([]BodyStructure, n)
		for i := 0; i < n && d.err == nil; i++ {
			d.bodyStructure(&b.Children[i], depth+1)
		}
	}
	b.MD5 = d.str()
	b.Disposition = d.str()
	b.DispositionParams = d.params()
	if n := d.count(1); n > 0 {
		b.Language = make([]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			b.Language[i] = d.str()
		}
	}
	b.Location = d.str()
	b.Empty = uint8(d.uint())
}

// EncodeBodyStructure encodes b compactly for storage;
// DecodeBodyStructure reverses it.
func EncodeBodyStructure(b *BodyStructure) []byte {
	enc := &encoder{b: make([]byte, 0, 128)}
	enc.b = append(enc.b, bodyStructureFormat)
	if b == nil {
		b = &BodyStructure{}
	}
	enc.bodyStructure(b)
	return enc.b
}

// DecodeBodyStructure decodes what EncodeBodyStructure produced.
func DecodeBodyStructure(data []byte) (*BodyStructure, error) {
	if len(data) == 0 || data[0] != bodyStructureFormat {
		return nil, fmt.Errorf("decode bodystructure: %w", errCorrupt)
	}
	d := &decoder{b: data[1:]}
	b := &BodyStructure{}
	d.bodyStructure(b, 0)
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode bodystructure: %w", d.err)
	}
	return b, nil
}
