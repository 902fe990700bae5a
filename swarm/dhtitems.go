package swarm

import (
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
)

// dhtMaxItems caps the BEP 44 items other DHT nodes may store on this
// node (with the DHT on): anacrolix/dht keeps them in a map without a cap
// and drops an expired one (2 hours) only when it is read, so strangers'
// puts grew memory without bound. An item is at most about 1.2 KB (a
// value of 1,000 bytes, key, signature, salt): some 5 MB in all. A
// variable for tests.
var dhtMaxItems = 4096

// dhtItemLife is how long an item put here is served (BEP 44: stored
// items expire after 2 hours unless put again).
const dhtItemLife = 2 * time.Hour

// dhtItems is the DHT's store of BEP 44 items (a bep44.Store): at most
// max items; a new target over it evicts the one stored longest ago.
// bep44.Wrapper, over it, checks items and their expiry.
type dhtItems struct {
	mu    sync.Mutex
	max   int
	items map[bep44.Target]*bep44.Item
	order []bep44.Target // in the order first stored; may hold deleted targets
}

func newDHTItems(max int) *dhtItems {
	return &dhtItems{max: max, items: map[bep44.Target]*bep44.Item{}}
}

func (s *dhtItems) Put(i *bep44.Item) error {
	t := i.Target()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[t]; !ok {
		for len(s.items) >= s.max && len(s.order) > 0 {
			delete(s.items, s.order[0])
			s.order = s.order[1:]
		}
		s.order = append(s.order, t)
		if len(s.order) > 2*s.max { // drop the deleted targets' places
			s.order = compactTargets(s.order, s.items)
		}
	}
	s.items[t] = i
	return nil
}

// compactTargets keeps the targets of order still in items, in order.
func compactTargets(order []bep44.Target, items map[bep44.Target]*bep44.Item) []bep44.Target {
	out := make([]bep44.Target, 0, len(items))
	for _, t := range order {
		if _, ok := items[t]; ok {
			out = append(out, t)
		}
	}
	return out
}

func (s *dhtItems) Get(t bep44.Target) (*bep44.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.items[t]
	if !ok {
		return nil, bep44.ErrItemNotFound
	}
	return i, nil
}

func (s *dhtItems) Del(t bep44.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, t)
	return nil
}
