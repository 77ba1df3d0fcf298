package auth

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/sunpath/sunpath/internal/ratelimit"
)

// PasswordHashMemory is the memory one Argon2id hash or verification takes
// (passwordParams.Memory KiB).
const PasswordHashMemory = int64(19 * 1024 * 1024)

// hashSlots bounds concurrent Argon2id work: each hash holds 19 MiB until
// the garbage collector frees it, so 50 concurrent sign-ins would otherwise
// take the process near a gigabyte.
type hashSlots struct {
	sem  *semaphore.Weighted
	wait time.Duration
}

// BoundPasswordHashing lets at most budget bytes of Argon2id work run at
// once (at least one hash); a sign-in or password change that finds no slot
// within wait fails with a *ratelimit.Error (429 with Retry-After). A zero
// budget removes the bound.
func (s *Service) BoundPasswordHashing(budget int64, wait time.Duration) {
	if budget <= 0 {
		s.hashing = nil
		return
	}
	s.hashing = &hashSlots{sem: semaphore.NewWeighted(max(1, budget/PasswordHashMemory)), wait: wait}
}

// withHashSlot runs fn holding one slot of the Argon2id budget.
func (s *Service) withHashSlot(ctx context.Context, fn func()) error {
	h := s.hashing
	if h == nil {
		fn()
		return nil
	}
	if !h.sem.TryAcquire(1) {
		wctx, cancel := context.WithTimeout(ctx, h.wait)
		err := h.sem.Acquire(wctx, 1)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("password hashing at capacity: %w", &ratelimit.Error{Retry: time.Second})
		}
	}
	defer h.sem.Release(1)
	fn()
	return nil
}

// verify is VerifyPassword within the hashing budget.
func (s *Service) verify(ctx context.Context, password, hash string) (ok bool, err error) {
	err = s.withHashSlot(ctx, func() { ok = VerifyPassword(password, hash) })
	return ok, err
}

// hash is HashPassword within the hashing budget.
func (s *Service) hash(ctx context.Context, password string) (h string, err error) {
	if serr := s.withHashSlot(ctx, func() { h, err = HashPassword(password) }); serr != nil {
		return "", serr
	}
	return h, err
}
