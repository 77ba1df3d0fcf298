// Package auth is Sunpath's access domain: roles, the principal behind a
// request, password hashing and credential tokens. It depends on the standard
// library and on argon2id for password hashing only.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"
)

// Role is what a principal may do; scope (caseload, unit, agency) narrows it.
type Role string

// The roles. Deny by default: a route lists the roles it admits.
const (
	RoleAdmin      Role = "admin"
	RoleSupervisor Role = "supervisor"
	RoleCounselor  Role = "counselor"
	RoleCaseSystem Role = "case_system"
	RoleAuditor    Role = "auditor"
	// RoleKiosk is held only by a kiosk token: it reaches one screening
	// session and nothing else. No account or API key can have it.
	RoleKiosk Role = "kiosk"
)

// Roles lists every role, in a stable order.
var Roles = []Role{RoleAdmin, RoleSupervisor, RoleCounselor, RoleCaseSystem, RoleAuditor}

// ParseRole returns the role named s, or ErrInvalid.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("role %q is not one of admin, supervisor, counselor, case_system, auditor: %w", s, ErrInvalid)
}

// Errors returned by the auth service and its store.
var (
	ErrInvalid      = errors.New("invalid")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrUnauthorized = errors.New("unauthorized")
	ErrLocked       = errors.New("account locked")
	// ErrUnknownUnit is returned for an account or key placed in a unit
	// that does not exist; it is an ErrInvalid.
	ErrUnknownUnit = fmt.Errorf("no such unit: %w", ErrInvalid)
)

// Kind says how a principal authenticated.
type Kind string

// The kinds of principal.
const (
	KindUser   Kind = "user"
	KindAPIKey Kind = "api_key"
	KindKiosk  Kind = "kiosk"
	// KindSystem is the service itself at work nobody asked for (the
	// dashboard rollups); it never authenticates a request.
	KindSystem Kind = "system"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	Kind Kind
	ID   int64
	Name string // username or API key name
	Role Role
	Unit string // organisational scope; empty means none
}

// Actor renders the principal for audit records and logs, e.g. "user:alice".
func (p Principal) Actor() string { return string(p.Kind) + ":" + p.Name }

// IsPerson reports whether a signed-in person acts (not an API key or a
// kiosk): only people decide supervision levels and read answers.
func (p Principal) IsPerson() bool { return p.Kind == KindUser }

// LogValue keeps principals compact in logs.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(slog.String("actor", p.Actor()), slog.String("role", string(p.Role)))
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,62}$`)

// ValidUsername reports whether s is an acceptable username: 2–63 lower-case
// letters, digits, '.', '_' or '-', starting with a letter or digit.
func ValidUsername(s string) bool { return usernameRE.MatchString(s) }

// MinPasswordLength is the shortest password accepted (ASVS 5 V6.2.1).
const MinPasswordLength = 12

// MaxPasswordLength bounds the work an attacker can ask of the hasher.
const MaxPasswordLength = 256

// passwordParams are the OWASP Password Storage Cheat Sheet's Argon2id
// parameters: 19 MiB of memory, 2 iterations, 1 degree of parallelism.
var passwordParams = &argon2id.Params{
	Memory:      19 * 1024,
	Iterations:  2,
	Parallelism: 1,
	SaltLength:  16,
	KeyLength:   32,
}

// ErrPasswordLength is returned for a password shorter than
// MinPasswordLength characters or longer than MaxPasswordLength bytes; it is
// an ErrInvalid.
var ErrPasswordLength = fmt.Errorf("password must be %d to %d characters: %w", MinPasswordLength, MaxPasswordLength, ErrInvalid)

// HashPassword returns the Argon2id PHC string of password, or
// ErrPasswordLength when the password is too short or too long.
func HashPassword(password string) (string, error) {
	if n := len([]rune(password)); n < MinPasswordLength || len(password) > MaxPasswordLength {
		return "", ErrPasswordLength
	}
	return argon2id.CreateHash(password, passwordParams)
}

// dummyHash is verified against when a username is unknown, so that the
// answer takes as long as for a known one.
var dummyHash, _ = argon2id.CreateHash("not a password of anyone", passwordParams)

// VerifyPassword reports whether password matches the PHC string hash. An
// empty hash is compared against a dummy so that timing does not reveal
// whether an account exists.
func VerifyPassword(password, hash string) bool {
	if len(password) > MaxPasswordLength {
		return false
	}
	if hash == "" {
		_, _ = argon2id.ComparePasswordAndHash(password, dummyHash)
		return false
	}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	return err == nil && ok
}

// Token prefixes make leaked credentials recognisable by secret scanners.
const (
	APIKeyPrefix  = "spk_"
	SessionPrefix = "sps_"
	KioskPrefix   = "spq_"
)

// NewToken returns a new random credential with the given prefix (256 bits of
// entropy) and the SHA-256 hash under which it is stored.
func NewToken(prefix string) (token string, hash []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken returns the SHA-256 of a credential. Tokens carry 256 bits of
// entropy, so a fast hash is enough; only the hash is ever stored.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// WellFormed reports whether token has the prefix and length NewToken gives,
// so that garbage is refused without a database round trip.
func WellFormed(token, prefix string) bool {
	if !strings.HasPrefix(token, prefix) || len(token) != len(prefix)+43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token[len(prefix):])
	return err == nil
}

// RandomPassword returns a printable random password of 24 characters.
func RandomPassword() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// SessionPolicy bounds how long a session lives.
type SessionPolicy struct {
	Idle     time.Duration // ends after this long without a request
	Absolute time.Duration // ends this long after login, whatever happens
}

// DefaultSessionPolicy is ASVS's level-2 guidance: 30 minutes idle, 12 hours
// absolute.
var DefaultSessionPolicy = SessionPolicy{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}

// MaxFailedLogins is how many wrong passwords in a row from one client
// address lock that (name, address) pair for a while (lockout.go).
const MaxFailedLogins = 5

// User is a person's account as stored.
type User struct {
	ID           int64
	Username     string
	PasswordHash string
	Role         Role
	Unit         string
	Language     string
	Disabled     bool
	FailedLogins int
	Locked       bool
}

// APIKey is a machine client's credential, without its secret.
type APIKey struct {
	ID        int64
	Name      string
	Role      Role
	Unit      string
	Prefix    string
	CreatedAt time.Time
	ExpiresAt *time.Time
	RevokedAt *time.Time
}

// Store persists accounts and credentials; postgres.Store implements it.
type Store interface {
	CreateUser(ctx context.Context, u User) (int64, error)
	// UnitExists reports whether an organisational unit with code exists.
	UnitExists(ctx context.Context, code string) (bool, error)
	UserByName(ctx context.Context, username string) (User, error)
	// RecordLogin records the outcome of a password check: on success it
	// resets the failure count; on failure it increments it and locks the
	// account at max failures (never when max is 0). It returns whether the
	// account is now locked.
	RecordLogin(ctx context.Context, userID int64, ok bool, max int) (locked bool, err error)
	CreateSession(ctx context.Context, tokenHash []byte, userID int64, expires time.Time) error
	// SessionPrincipal returns the principal of a live session and touches
	// it; ErrUnauthorized when it is unknown, expired, idle or revoked, or
	// its user is disabled or locked.
	SessionPrincipal(ctx context.Context, tokenHash []byte, idle time.Duration) (Principal, error)
	RevokeSession(ctx context.Context, tokenHash []byte) error
	// ChangePassword sets a user's password hash, clears failed sign-ins and
	// revokes every session of the user except the one hashed keep.
	ChangePassword(ctx context.Context, userID int64, hash string, keep []byte) error
	CreateAPIKey(ctx context.Context, k APIKey, hash []byte) (int64, error)
	// APIKeyPrincipal returns the principal of a live key, or ErrUnauthorized.
	APIKeyPrincipal(ctx context.Context, hash []byte) (Principal, error)
	ListUsers(ctx context.Context) ([]User, error)
	UpdateUser(ctx context.Context, username string, ch UserChange) error
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, id int64) error
	// PeekSessionPrincipal is SessionPrincipal without touching the
	// session: for background requests that must not keep it alive.
	PeekSessionPrincipal(ctx context.Context, tokenHash []byte, idle time.Duration) (Principal, error)
}

// UserChange is one administrative change to an account; exactly one field
// is set.
type UserChange struct {
	PasswordHash string // also clears a lockout
	Disabled     *bool
	Unlock       bool
	Role         Role
}
