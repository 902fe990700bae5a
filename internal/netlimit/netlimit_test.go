package netlimit

import "testing"

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.2:5000":             "127.0.0.2",
		"[::ffff:127.0.0.3]:1":       "127.0.0.3",
		"[2001:db8:1:2:3:4:5:6]:993": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:993": "2001:db8:1:2::/64",
		"@unix-socket":               "@unix-socket",
	} {
		if got := ClientKey(addr); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestCounts(t *testing.T) {
	c := NewCounts()
	if !c.Acquire("a", 3, 2) || !c.Acquire("a", 3, 2) {
		t.Fatal("first two for a refused")
	}
	if c.Acquire("a", 3, 2) {
		t.Error("third for a taken over its cap of 2")
	}
	if !c.Acquire("b", 3, 2) {
		t.Error("first for b refused")
	}
	if c.Acquire("c", 3, 2) {
		t.Error("fourth in all taken over the total of 3")
	}
	c.Release("a")
	if !c.Acquire("c", 3, 2) || c.Open() != 3 {
		t.Errorf("after a release: %d open, want c taken and 3", c.Open())
	}
	for _, k := range []string{"a", "b", "c"} {
		c.Release(k)
	}
	if c.Open() != 0 || len(c.byClient) != 0 {
		t.Errorf("after releasing all: %d open, %v", c.Open(), c.byClient)
	}
}

func TestDefaultCap(t *testing.T) {
	n := OpenFileLimit()
	got := DefaultCap(1 << 20)
	if n > 0 && got != max(1, n/4) || n == 0 && got != 1<<20 {
		t.Errorf("DefaultCap(1<<20) = %d with a descriptor limit of %d", got, n)
	}
	if DefaultCap(1) != 1 {
		t.Errorf("DefaultCap(1) = %d", DefaultCap(1))
	}
}
