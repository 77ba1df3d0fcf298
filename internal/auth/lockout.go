package auth

import (
	"sync"
	"sync/atomic"
	"time"
)

// Lockout defaults: MaxFailedLogins wrong passwords in a row from one
// address lock that (name, address) pair for LockoutBase, doubling with each
// further lock up to LockoutMax. A success from the address resets it.
const (
	LockoutBase = time.Minute
	LockoutMax  = 15 * time.Minute
)

// lockouts are time-boxed, backing-off sign-in locks per (login name, client
// address), kept in memory like the rate limits: an attacker elsewhere can
// no longer lock a person out, and no lock outlives its time box. With N
// replicas an attacker gets up to N times the attempts.
type lockouts struct {
	mu        sync.Mutex
	m         map[lockKey]*lockState
	base, max time.Duration
	total     atomic.Int64 // locks imposed, for sunpath_login_lockouts_total
	calls     int
}

type lockKey struct{ name, addr string }

type lockState struct {
	failures int
	level    int // locks imposed in a row
	until    time.Time
	seen     time.Time
}

func newLockouts() *lockouts {
	return &lockouts{m: map[lockKey]*lockState{}, base: LockoutBase, max: LockoutMax}
}

// lockedFor returns how long (name, addr) stays locked, 0 when it is not.
func (l *lockouts) lockedFor(name, addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, ok := l.m[lockKey{name, addr}]; ok && now.Before(st.until) {
		return st.until.Sub(now)
	}
	return 0
}

// fail records a wrong password and returns how long the pair is now
// locked (0 when it is not).
func (l *lockouts) fail(name, addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls++; l.calls%1024 == 0 {
		for k, st := range l.m {
			if now.Sub(st.seen) > 24*time.Hour && now.After(st.until) {
				delete(l.m, k)
			}
		}
	}
	k := lockKey{name, addr}
	st, ok := l.m[k]
	if !ok {
		st = &lockState{}
		l.m[k] = st
	}
	st.seen = now
	st.failures++
	if st.failures < MaxFailedLogins {
		return 0
	}
	d := l.base << min(st.level, 30)
	if d > l.max || d <= 0 {
		d = l.max
	}
	st.level++
	st.until = now.Add(d)
	l.total.Add(1)
	return d
}

// succeed clears the pair's failures and lock.
func (l *lockouts) succeed(name, addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, lockKey{name, addr})
}

// clearName ends every lock of name (an administrator unlocked it).
func (l *lockouts) clearName(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.m {
		if k.name == name {
			delete(l.m, k)
		}
	}
}

// SetLockout sets the first lock's duration and the cap of the doubling
// (defaults LockoutBase and LockoutMax).
func (s *Service) SetLockout(base, max time.Duration) {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	s.locks.base, s.locks.max = base, max
}

// Lockouts returns how many (name, address) locks this process imposed.
func (s *Service) Lockouts() int64 { return s.locks.total.Load() }
