package archive

import "sync"

// Event tells subscribers that articles First..Last of List were archived.
type Event struct {
	List        string
	First, Last int64
	// Overflow is set when the subscriber fell behind and events were
	// dropped: re-read the list's state instead of trusting the range.
	Overflow bool
}

const subscriberBuffer = 256

type subscriber struct {
	ch       chan Event
	overflow bool
}

// broadcaster fans events out to subscribers without ever blocking the
// publisher (the committer).
type broadcaster struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

func newBroadcaster() *broadcaster { return &broadcaster{subs: map[*subscriber]struct{}{}} }

func (b *broadcaster) subscribe() (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, subscriberBuffer)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.ch)
		})
	}
}

func (b *broadcaster) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.overflow {
			// Keep one slot for the overflow notice; resume when drained.
			select {
			case s.ch <- Event{List: ev.List, Overflow: true}:
				s.overflow = false
			default:
			}
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.overflow = true
		}
	}
}
