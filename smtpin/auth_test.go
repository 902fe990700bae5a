package smtpin

import "testing"

func TestDummyHashIsBcrypt(t *testing.T) {
	if !isBcrypt(dummyHash) {
		t.Fatalf("dummyHash %q is not a bcrypt hash", dummyHash)
	}
}
