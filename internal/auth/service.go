package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sunpath/sunpath/internal/ratelimit"
)

// Service authenticates people and machines.
type Service struct {
	store  Store
	policy SessionPolicy
	now    func() time.Time

	// keyTTL bounds how long a verified API key is trusted without asking
	// the database again, and so how long a revocation takes to reach every
	// replica. Zero asks every time.
	keyTTL time.Duration
	mu     sync.Mutex
	keys   map[string]cachedKey

	// Sign-in attempts are limited per login name and, five times looser
	// (offices share an address), per client address, for every front end.
	byName, byAddr *ratelimit.Limiter

	hashing *hashSlots // bounds concurrent Argon2id work (hashing.go); nil: unbounded
	locks   *lockouts  // time-boxed locks per (name, address) (lockout.go)
}

// LimitLogins allows perMinute sign-in attempts per login name and five
// times that per client address; 0 disables the limits.
func (s *Service) LimitLogins(perMinute int) {
	if perMinute <= 0 {
		s.SetLoginLimiters(nil, nil)
		return
	}
	s.SetLoginLimiters(ratelimit.PerMinute(perMinute), ratelimit.PerMinute(5*perMinute))
}

// SetLoginLimiters sets the sign-in limiters per login name and per client
// address; nil disables one.
func (s *Service) SetLoginLimiters(byName, byAddr *ratelimit.Limiter) {
	s.byName, s.byAddr = byName, byAddr
}

type cachedKey struct {
	p       Principal
	expires time.Time
}

// NewService returns a Service over store.
func NewService(store Store, policy SessionPolicy) *Service {
	return &Service{store: store, policy: policy, now: time.Now, keys: map[string]cachedKey{}, locks: newLockouts()}
}

// CacheAPIKeys makes verified API keys trusted for ttl before they are
// checked again (revocation then takes up to ttl to apply everywhere).
func (s *Service) CacheAPIKeys(ttl time.Duration) { s.keyTTL = ttl }

// Policy returns the session policy in force.
func (s *Service) Policy() SessionPolicy { return s.policy }

// Login checks a username and password and opens a session. It returns
// ErrUnauthorized for a wrong name or password, a disabled account, one an
// administrator locked, or a (name, client address) pair locked for a while
// after MaxFailedLogins wrong passwords in a row (ErrLocked wraps
// ErrUnauthorized so callers may tell; no password is checked), and
// a *ratelimit.Error, before any password is checked, when the name or the
// client address (addr) made too many attempts. The principal is returned
// for auditing, also on failure when the account exists.
func (s *Service) Login(ctx context.Context, username, password, addr string) (token string, p Principal, err error) {
	if err := s.byName.Allow(strings.ToLower(username)); err != nil {
		return "", Principal{}, err
	}
	if err := s.byAddr.Allow(addr); err != nil {
		return "", Principal{}, err
	}
	name := strings.ToLower(username)
	if s.locks.lockedFor(name, addr, s.now()) > 0 {
		return "", Principal{}, fmt.Errorf("too many wrong passwords from this address, %w: %w", ErrLocked, ErrUnauthorized)
	}
	u, err := s.store.UserByName(ctx, name)
	if errors.Is(err, ErrNotFound) {
		if _, err := s.verify(ctx, password, ""); err != nil { // same cost as a real check
			return "", Principal{}, err
		}
		return "", Principal{}, fmt.Errorf("unknown user: %w", ErrUnauthorized)
	}
	if err != nil {
		return "", Principal{}, err
	}
	p = Principal{Kind: KindUser, ID: u.ID, Name: u.Username, Role: u.Role, Unit: u.Unit}
	if u.Locked {
		if _, err := s.verify(ctx, password, ""); err != nil {
			return "", p, err
		}
		return "", p, fmt.Errorf("%w: %w", ErrLocked, ErrUnauthorized)
	}
	ok, err := s.verify(ctx, password, u.PasswordHash)
	if err != nil {
		return "", p, err
	}
	// The stored count is for administrators to see; it no longer locks
	// the account (max 0), the time-boxed lock per address does.
	if _, err := s.store.RecordLogin(ctx, u.ID, ok && !u.Disabled, 0); err != nil {
		return "", p, err
	}
	locked := false
	if ok && !u.Disabled {
		s.locks.succeed(name, addr)
	} else if !ok {
		locked = s.locks.fail(name, addr, s.now()) > 0
	}
	switch {
	case u.Disabled:
		return "", p, fmt.Errorf("account disabled: %w", ErrUnauthorized)
	case !ok && locked:
		return "", p, fmt.Errorf("wrong password, now %w: %w", ErrLocked, ErrUnauthorized)
	case !ok:
		return "", p, fmt.Errorf("wrong password: %w", ErrUnauthorized)
	}
	token, hash := NewToken(SessionPrefix)
	if err := s.store.CreateSession(ctx, hash, u.ID, s.now().Add(s.policy.Absolute)); err != nil {
		return "", p, err
	}
	return token, p, nil
}

// Errors of ChangePassword; both are ErrInvalid.
var (
	ErrWrongPassword     = fmt.Errorf("not the current password: %w", ErrInvalid)
	ErrPasswordUnchanged = fmt.Errorf("the new password is the current one: %w", ErrInvalid)
)

// ChangePassword lets a signed-in person (p, from the session whose token is
// session) replace their password. The new one must meet the policy of
// every password (ErrPasswordLength) and differ from the current one
// (ErrPasswordUnchanged); the current one is checked with Argon2id
// (ErrWrongPassword) and a wrong one counts as a failed sign-in, towards
// the lockout, within the same per-name limit as Login (a
// *ratelimit.Error). On success every other session of the person ends;
// this one stays. Only people change passwords: ErrUnauthorized for any
// other principal.
func (s *Service) ChangePassword(ctx context.Context, p Principal, session, current, next string) error {
	if p.Kind != KindUser || !WellFormed(session, SessionPrefix) {
		return fmt.Errorf("only a signed-in person changes a password: %w", ErrUnauthorized)
	}
	if n := len([]rune(next)); n < MinPasswordLength || len(next) > MaxPasswordLength {
		return ErrPasswordLength
	}
	if err := s.byName.Allow(strings.ToLower(p.Name)); err != nil {
		return err
	}
	u, err := s.store.UserByName(ctx, p.Name)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("user %s: %w", p.Name, ErrUnauthorized)
	}
	if err != nil {
		return err
	}
	if u.ID != p.ID || u.Disabled || u.Locked {
		return fmt.Errorf("account changed since sign-in: %w", ErrUnauthorized)
	}
	if !VerifyPassword(current, u.PasswordHash) {
		if _, err := s.store.RecordLogin(ctx, u.ID, false, MaxFailedLogins); err != nil {
			return err
		}
		return ErrWrongPassword
	}
	if current == next {
		return ErrPasswordUnchanged
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	return s.store.ChangePassword(ctx, u.ID, hash, HashToken(session))
}

// Session returns the principal of a session cookie's token.
func (s *Service) Session(ctx context.Context, token string) (Principal, error) {
	if !WellFormed(token, SessionPrefix) {
		return Principal{}, fmt.Errorf("malformed session token: %w", ErrUnauthorized)
	}
	return s.store.SessionPrincipal(ctx, HashToken(token), s.policy.Idle)
}

// Logout revokes a session; an unknown token is not an error.
func (s *Service) Logout(ctx context.Context, token string) error {
	if !WellFormed(token, SessionPrefix) {
		return nil
	}
	return s.store.RevokeSession(ctx, HashToken(token))
}

// APIKey returns the principal of a bearer API key.
func (s *Service) APIKey(ctx context.Context, key string) (Principal, error) {
	if !WellFormed(key, APIKeyPrefix) {
		return Principal{}, fmt.Errorf("malformed api key: %w", ErrUnauthorized)
	}
	hash := HashToken(key)
	if s.keyTTL > 0 {
		s.mu.Lock()
		c, ok := s.keys[string(hash)]
		s.mu.Unlock()
		if ok && s.now().Before(c.expires) {
			return c.p, nil
		}
	}
	p, err := s.store.APIKeyPrincipal(ctx, hash)
	if err == nil && s.keyTTL > 0 {
		s.mu.Lock()
		if len(s.keys) > 10000 {
			clear(s.keys) // a bound, not an eviction policy: keys are few
		}
		s.keys[string(hash)] = cachedKey{p: p, expires: s.now().Add(s.keyTTL)}
		s.mu.Unlock()
	}
	return p, err
}

// CreateUser hashes password and stores a new user. Counselors and
// supervisors need a unit; a unit, when given, must exist (ErrUnknownUnit).
func (s *Service) CreateUser(ctx context.Context, username, password string, role Role, unit string) (int64, error) {
	if !ValidUsername(username) {
		return 0, fmt.Errorf("username must be 2-63 lower-case letters, digits, '.', '_' or '-': %w", ErrInvalid)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return 0, err
	}
	if role == RoleCounselor || role == RoleSupervisor {
		if unit == "" {
			return 0, fmt.Errorf("a %s needs a unit: %w", role, ErrInvalid)
		}
	}
	if err := s.checkUnit(ctx, unit); err != nil {
		return 0, err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return 0, err
	}
	return s.store.CreateUser(ctx, User{Username: username, PasswordHash: hash, Role: role, Unit: unit, Language: "zh-CN"})
}

// checkUnit returns ErrUnknownUnit unless unit is empty or exists.
func (s *Service) checkUnit(ctx context.Context, unit string) error {
	if unit == "" {
		return nil
	}
	ok, err := s.store.UnitExists(ctx, unit)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("unit %q: %w", unit, ErrUnknownUnit)
	}
	return nil
}

// CreateAPIKey stores a new key and returns its secret, which is shown once.
// The key's scope is unit: for a case_system key the agency whose units it
// sees, which is required (a case system without one would see nothing);
// for any other role a unit, which must exist, and which supervisor keys
// need.
func (s *Service) CreateAPIKey(ctx context.Context, name string, role Role, unit string, expires *time.Time) (string, int64, error) {
	if strings.TrimSpace(name) == "" || len(name) > 100 {
		return "", 0, fmt.Errorf("api key name must be 1-100 characters: %w", ErrInvalid)
	}
	if _, err := ParseRole(string(role)); err != nil {
		return "", 0, err
	}
	switch {
	case role == RoleCaseSystem && unit == "":
		return "", 0, fmt.Errorf("a case_system key needs the agency whose units it sees: %w", ErrInvalid)
	case role == RoleSupervisor && unit == "":
		return "", 0, fmt.Errorf("a supervisor key needs a unit: %w", ErrInvalid)
	case role != RoleCaseSystem:
		if err := s.checkUnit(ctx, unit); err != nil {
			return "", 0, err
		}
	}
	token, hash := NewToken(APIKeyPrefix)
	id, err := s.store.CreateAPIKey(ctx, APIKey{Name: name, Role: role, Unit: unit, Prefix: token[:len(APIKeyPrefix)+6], ExpiresAt: expires}, hash)
	if err != nil {
		return "", 0, err
	}
	return token, id, nil
}

// Users lists every account, without password hashes.
func (s *Service) Users(ctx context.Context) ([]User, error) { return s.store.ListUsers(ctx) }

// ResetPassword sets a new password, clears any lockout and ends the user's
// sessions.
func (s *Service) ResetPassword(ctx context.Context, username, password string) error {
	hash, err := s.hash(ctx, password)
	if err != nil {
		return err
	}
	return s.store.UpdateUser(ctx, username, UserChange{PasswordHash: hash})
}

// SetDisabled disables (ending every session at once) or re-enables a user.
func (s *Service) SetDisabled(ctx context.Context, username string, disabled bool) error {
	return s.store.UpdateUser(ctx, username, UserChange{Disabled: &disabled})
}

// Unlock clears a lockout after repeated failed logins, the stored one and
// this process's time-boxed ones.
func (s *Service) Unlock(ctx context.Context, username string) error {
	s.locks.clearName(strings.ToLower(username))
	return s.store.UpdateUser(ctx, username, UserChange{Unlock: true})
}

// SetRole changes a user's role and ends the user's sessions.
func (s *Service) SetRole(ctx context.Context, username string, role Role) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	return s.store.UpdateUser(ctx, username, UserChange{Role: role})
}

// APIKeys lists every key without its secret.
func (s *Service) APIKeys(ctx context.Context) ([]APIKey, error) { return s.store.ListAPIKeys(ctx) }

// RevokeAPIKey revokes a key at once.
func (s *Service) RevokeAPIKey(ctx context.Context, id int64) error {
	return s.store.RevokeAPIKey(ctx, id)
}
