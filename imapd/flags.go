package imapd

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailswarm/archive"
)

// Flags are per user and per article, kept in the list's user state
// (archive.UserState), never in git and never touched by reindex.

// flagsIn returns the user's flags on the UIDs of spans that have any.
func (ss *session) flagsIn(spans []span) (map[uint32]archive.Flags, error) {
	out := map[uint32]archive.Flags{}
	if ss.anonymous || len(spans) == 0 {
		return out, nil
	}
	lo, hi := spans[0].lo, spans[len(spans)-1].hi
	err := ss.st.users.Get(ss.ctx, ss.user, int64(lo), int64(hi), func(num int64, f archive.Flags) {
		out[uint32(num)] = f
	})
	return out, err
}

// markSeen sets \Seen on the messages of spans that lack it, updating
// flags to match.
func (ss *session) markSeen(spans []span, flags map[uint32]archive.Flags) error {
	var nums []int64
	for _, sp := range spans {
		ss.v.spans(sp.lo, sp.hi, func(first, last, _ uint32) error {
			for u := first; ; u++ {
				if flags[u].Bits&archive.FlagSeen == 0 {
					nums = append(nums, int64(u))
				}
				if u == last {
					break
				}
			}
			return nil
		})
	}
	if len(nums) == 0 {
		return nil
	}
	// \Seen adds no keyword: no limit applies.
	return ss.st.users.Update(ss.ctx, ss.user, nums, archive.FlagsAdd, archive.Flags{Bits: archive.FlagSeen}, archive.FlagLimits{},
		func(num int64, f archive.Flags) { flags[uint32(num)] = f })
}

// countFlag counts the messages of v on which the user has bit.
func (ss *session) countFlag(st *listState, v *view, bit uint8) (uint32, error) {
	if v.n == 0 {
		return 0, nil
	}
	var n uint32
	err := st.users.Get(ss.ctx, ss.user, int64(v.runs[0].first), int64(v.maxUID()), func(num int64, f archive.Flags) {
		if f.Bits&bit != 0 {
			if _, ok := v.seq(uint32(num)); ok {
				n++
			}
		}
	})
	return n, err
}

// firstUnseen is the sequence number of the first message without \Seen.
// It reads the user's flag rows in order only until the first message
// they skip or that lacks \Seen.
func (ss *session) firstUnseen() (uint32, bool) {
	v := ss.v
	if v.n == 0 || ss.anonymous {
		return 1, v.n > 0
	}
	seq := uint32(1) // candidate: the first message not yet known to be seen
	err := ss.st.users.Scan(ss.ctx, ss.user, int64(v.runs[0].first), int64(v.maxUID()), func(num int64, f archive.Flags) bool {
		s, ok := v.seq(uint32(num))
		if !ok || s < seq {
			return true // not in this mailbox, or before the candidate
		}
		if s > seq || f.Bits&archive.FlagSeen == 0 {
			return false // the candidate has no row, or no \Seen: unseen
		}
		seq++ // the candidate is seen: try the next one
		return true
	})
	if err != nil || seq > v.n {
		return 0, false
	}
	return seq, true
}

var systemFlags = map[imap.Flag]uint8{
	imap.FlagSeen:     archive.FlagSeen,
	imap.FlagAnswered: archive.FlagAnswered,
	imap.FlagFlagged:  archive.FlagFlagged,
	imap.FlagDraft:    archive.FlagDraft,
}

var errNoDelete = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
	Text: `Messages of a mailing-list archive cannot be \Deleted`}

// toFlags maps IMAP flags onto archive flags.
func toFlags(list []imap.Flag) (archive.Flags, error) {
	var f archive.Flags
	for _, fl := range list {
		if bit, ok := systemFlags[imap.Flag(canonicalFlag(string(fl)))]; ok {
			f.Bits |= bit
			continue
		}
		switch {
		case strings.EqualFold(string(fl), `\Deleted`):
			return f, errNoDelete
		case strings.EqualFold(string(fl), `\Recent`):
			// not a flag clients may set (RFC 3501 section 2.3.2)
		case strings.HasPrefix(string(fl), `\`):
			return f, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown system flag " + string(fl)}
		case len(fl) > maxKeywordLen:
			return f, errKeywordLen
		default:
			f.Keywords = append(f.Keywords, string(fl))
		}
	}
	// Once each, case-insensitively (RFC 9051 section 2.3.2): a 50 KiB
	// command can hold 25,000 keywords, and archive compares each
	// article's keywords pairwise.
	seen := make(map[string]bool, len(f.Keywords))
	f.Keywords = slices.DeleteFunc(f.Keywords, func(k string) bool {
		l := strings.ToLower(k)
		dup := seen[l]
		seen[l] = true
		return dup
	})
	return f, nil
}

// canonicalFlag spells system flags as RFC 3501 does (\seen -> \Seen).
func canonicalFlag(s string) string {
	for fl := range systemFlags {
		if strings.EqualFold(string(fl), s) {
			return string(fl)
		}
	}
	return s
}

func imapFlags(f archive.Flags) []imap.Flag {
	var out []imap.Flag
	for _, fl := range []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft} {
		if f.Bits&systemFlags[fl] != 0 {
			out = append(out, fl)
		}
	}
	for _, k := range f.Keywords {
		out = append(out, imap.Flag(k))
	}
	return out
}

func (ss *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, store *imap.StoreFlags, options *imap.StoreOptions) error {
	if ss.readOnly {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Mailbox is read-only"}
	}
	f, err := toFlags(store.Flags)
	if err != nil {
		return err
	}
	op := archive.FlagsSet
	switch store.Op {
	case imap.StoreFlagsAdd:
		op = archive.FlagsAdd
	case imap.StoreFlagsDel:
		op = archive.FlagsRemove
	}
	var nums []int64
	for _, sp := range ss.spans(numSet) {
		for u := sp.lo; ; u++ {
			if _, ok := ss.v.seq(u); ok {
				nums = append(nums, int64(u))
			}
			if u == sp.hi {
				break
			}
		}
	}
	if len(nums) == 0 {
		return nil
	}
	_, uidStore := numSet.(imap.UIDSet)
	var werr error
	all, _, _ := ss.st.current("")
	err = ss.st.users.Update(ss.ctx, ss.user, nums, op, f, flagLimits(all.maxUID()), func(num int64, nf archive.Flags) {
		if store.Silent || werr != nil {
			return
		}
		seq, _ := ss.v.seq(uint32(num))
		m := w.CreateMessage(seq)
		if uidStore {
			m.WriteUID(imap.UID(num))
		}
		m.WriteFlags(imapFlags(nf))
		werr = m.Close()
	})
	if lerr := limitError(err); lerr != nil {
		ss.s.log.Info("imapd: flag limit", "user", ss.user, "list", ss.st.l.Name(), "err", err)
		return lerr
	}
	if err != nil {
		return ss.internalError(err)
	}
	return werr
}
