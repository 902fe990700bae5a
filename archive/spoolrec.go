package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// A spool segment is a sequence of records, each
//
//	magic   4 bytes  "MSp1"
//	seq     uint64   the list's spool sequence number (never reused once acknowledged)
//	arrived int64    arrival time, unix nanoseconds
//	length  uint32   length of data
//	crc     uint32   CRC-32C (Castagnoli) over magic, seq, arrived, length and data
//	data    length bytes: the raw message
//
// all integers little endian. A segment file is named by the first sequence
// number it holds, zero-padded to 20 digits.
const (
	spoolMagic     = "MSp1"
	spoolHeaderLen = 4 + 8 + 8 + 4 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errSpoolCorrupt reports a bad record followed by good ones: not a torn
// append, so it is not repaired silently.
var errSpoolCorrupt = errors.New("archive: spool segment corrupt: bad record followed by valid ones")

// spoolRecord is one decoded record.
type spoolRecord struct {
	seq     uint64
	arrived int64
	data    []byte // aliases the segment bytes
	end     int    // offset just past the record in the parsed bytes
}

// appendRecord appends the encoding of a record to b.
func appendRecord(b []byte, seq uint64, arrived int64, data []byte) []byte {
	start := len(b)
	b = append(b, spoolMagic...)
	b = binary.LittleEndian.AppendUint64(b, seq)
	b = binary.LittleEndian.AppendUint64(b, uint64(arrived))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	crc := crc32.Update(0, castagnoli, b[start:])
	crc = crc32.Update(crc, castagnoli, data)
	b = binary.LittleEndian.AppendUint32(b, crc)
	return append(b, data...)
}

// decodeRecord decodes the record at b[off:], reporting false when there is
// no complete, CRC-valid record there.
func decodeRecord(b []byte, off int) (spoolRecord, bool) {
	h := b[off:]
	if len(h) < spoolHeaderLen || string(h[:4]) != spoolMagic {
		return spoolRecord{}, false
	}
	n := binary.LittleEndian.Uint32(h[20:24])
	if uint64(n) > uint64(len(h)-spoolHeaderLen) {
		return spoolRecord{}, false
	}
	data := h[spoolHeaderLen : spoolHeaderLen+int(n)]
	crc := crc32.Update(0, castagnoli, h[:24])
	crc = crc32.Update(crc, castagnoli, data)
	if crc != binary.LittleEndian.Uint32(h[24:28]) {
		return spoolRecord{}, false
	}
	return spoolRecord{
		seq:     binary.LittleEndian.Uint64(h[4:12]),
		arrived: int64(binary.LittleEndian.Uint64(h[12:20])),
		data:    data,
		end:     off + spoolHeaderLen + int(n),
	}, true
}

// parseSegment decodes the records of b in order. valid is the length of
// the prefix made of whole valid records; bytes after it are a torn tail
// (an append that was never acknowledged) unless a valid record follows
// them, in which case err is errSpoolCorrupt.
func parseSegment(b []byte) (recs []spoolRecord, valid int, err error) {
	off := 0
	for off < len(b) {
		r, ok := decodeRecord(b, off)
		if !ok {
			break
		}
		recs = append(recs, r)
		off = r.end
	}
	if off < len(b) {
		for i := off + 1; i < len(b); {
			j := bytes.Index(b[i:], []byte(spoolMagic))
			if j < 0 {
				break
			}
			if _, ok := decodeRecord(b, i+j); ok {
				return recs, off, errSpoolCorrupt
			}
			i += j + 1
		}
	}
	return recs, off, nil
}
