package ratelimit

import (
	"errors"
	"testing"
)

func TestLimiter(t *testing.T) {
	l := New(1, 3)
	for i := 0; i < 3; i++ {
		if err := l.Allow("a"); err != nil {
			t.Fatalf("call %d within burst: %v", i, err)
		}
	}
	err := l.Allow("a")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrLimited) || e.RetryAfter() != "1" {
		t.Fatalf("over the burst: %v", err)
	}
	if err := l.Allow("b"); err != nil {
		t.Fatalf("another key: %v", err)
	}
	var off *Limiter
	if err := off.Allow("a"); err != nil || New(0, 1).Allow("a") != nil {
		t.Fatal("a nil or zero-rate limiter limits")
	}
}
