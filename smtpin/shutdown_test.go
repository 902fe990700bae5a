package smtpin

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// TestShutdownIdle: an idle client is told 421 and disconnected; Shutdown
// then returns promptly.
func TestShutdownIdle(t *testing.T) {
	s, addr := start(t, &fakeDeliverer{}, nil)
	c := dialRaw(t, addr)
	c.hello()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	c.expect("421 4.3.2")
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after 421: %v, want EOF", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
}

// TestShutdownWaitsForData: a message in DATA is delivered and answered 250
// before the 421; Shutdown waits for it.
func TestShutdownWaitsForData(t *testing.T) {
	d := &fakeDeliverer{block: make(chan struct{}), started: make(chan struct{}, 1)}
	s, addr := start(t, d, nil)
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: late\r\n\r\nbody\r\n.\r\n")
	<-d.started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v during DATA", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(d.block)
	c.expect("250 ")
	c.expect("421 4.3.2")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
	if n := len(d.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

// TestShutdownDeadline: when ctx ends with a delivery stuck, Shutdown closes
// the connection and reports ctx's error; the client never gets a 250.
func TestShutdownDeadline(t *testing.T) {
	d := &fakeDeliverer{block: make(chan struct{}), started: make(chan struct{}, 1)}
	s, addr := start(t, d, nil)
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: stuck\r\n\r\nbody\r\n.\r\n")
	<-d.started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	line, err := c.r.ReadString('\n')
	if err == nil && line[0] == '2' {
		t.Fatalf("got %q after a failed delivery", line)
	}
	if n := len(d.deliveries()); n != 0 {
		t.Fatalf("%d deliveries, want 0", n)
	}
}

// TestShutdownMidTransaction: a client between MAIL and DATA gets 421.
func TestShutdownMidTransaction(t *testing.T) {
	s, addr := start(t, &fakeDeliverer{}, nil)
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	c.expect("421 4.3.2")
}
