package smtpin

import (
	"context"
	"log/slog"
	"runtime"
	"testing"

	"github.com/emersion/go-smtp"
)

type nopDeliverer struct{}

func (nopDeliverer) Deliver(context.Context, string, []byte) error { return nil }

// BenchmarkSMTPDeliver: 16 concurrent clients, each on its own connection,
// sending small messages to an instant Deliverer.
func BenchmarkSMTPDeliver(b *testing.B) {
	_, addr := start(b, nopDeliverer{}, &Options{Logger: slog.New(slog.DiscardHandler)})
	msg := []byte(plainMsg)
	b.SetBytes(int64(len(msg)))
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // RunParallel multiplies by GOMAXPROCS
	b.RunParallel(func(pb *testing.PB) {
		c, err := smtp.Dial(addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		for pb.Next() {
			if err := c.Mail("a@example.org", nil); err != nil {
				b.Error(err)
				return
			}
			if err := c.Rcpt("demo@localhost", nil); err != nil {
				b.Error(err)
				return
			}
			w, err := c.Data()
			if err != nil {
				b.Error(err)
				return
			}
			w.Write(msg)
			if err := w.Close(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
