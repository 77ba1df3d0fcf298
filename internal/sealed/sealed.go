// Package sealed encrypts personal free text and answers at rest with
// AES-256-GCM (Go's standard crypto/aes and crypto/cipher, FIPS 140-3
// validated in Go 1.24+). Each value carries the id of the key that sealed
// it, and associated data binds it to its table, column and row, so that a
// ciphertext copied to another row or column does not open.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// format is the first byte of every sealed value.
const format = 1

// Errors.
var (
	ErrNoKey   = errors.New("sealed: unknown key id")
	ErrCorrupt = errors.New("sealed: value does not open (wrong row, column or key, or tampered)")
)

// Keyring holds the keys that open values and the one that seals new ones.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
}

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ParseKeyring reads "id:base64key,id2:base64key2" (32-byte keys); active
// names the sealing key and must be among them.
func ParseKeyring(spec, active string) (*Keyring, error) {
	kr := &Keyring{active: active, aeads: map[string]cipher.AEAD{}}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok || !keyIDRE.MatchString(id) {
			return nil, fmt.Errorf("key entry must be id:base64, id of 1-32 letters, digits, '_' or '-'")
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("key %s must be 32 bytes, base64-encoded", id)
		}
		if err := kr.add(id, key); err != nil {
			return nil, err
		}
	}
	if len(kr.aeads) == 0 {
		return nil, errors.New("no encryption key configured")
	}
	if _, ok := kr.aeads[active]; !ok {
		return nil, fmt.Errorf("active key %q is not among the configured keys", active)
	}
	return kr, nil
}

// NewKey returns a random 32-byte key, base64-encoded, for configuration.
func NewKey() string {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("sealed: crypto/rand failed: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(k)
}

func (kr *Keyring) add(id string, key []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	kr.aeads[id] = aead
	return nil
}

// Active returns the id of the sealing key.
func (kr *Keyring) Active() string { return kr.active }

// IDs lists the key ids, sorted.
func (kr *Keyring) IDs() []string {
	ids := make([]string, 0, len(kr.aeads))
	for id := range kr.aeads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// AD returns the associated data for a value of table.column in row id.
func AD(table, column, rowID string) []byte {
	return []byte("sunpath:" + table + "." + column + ":" + rowID)
}

// Seal encrypts plaintext with the active key, bound to ad.
func (kr *Keyring) Seal(plaintext, ad []byte) []byte {
	aead := kr.aeads[kr.active]
	out := make([]byte, 0, 2+len(kr.active)+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out = append(out, format, byte(len(kr.active)))
	out = append(out, kr.active...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("sealed: crypto/rand failed: " + err.Error())
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plaintext, ad)
}

// Open decrypts a value sealed for ad.
func (kr *Keyring) Open(value, ad []byte) ([]byte, error) {
	id, rest, err := split(value)
	if err != nil {
		return nil, err
	}
	aead, ok := kr.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrNoKey, id)
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrCorrupt
	}
	pt, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], ad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// KeyID returns the id of the key that sealed value.
func KeyID(value []byte) (string, error) {
	id, _, err := split(value)
	return id, err
}

func split(value []byte) (id string, rest []byte, err error) {
	if len(value) < 2 || value[0] != format || len(value) < 2+int(value[1]) {
		return "", nil, ErrCorrupt
	}
	n := int(value[1])
	return string(value[2 : 2+n]), value[2+n:], nil
}

// Rotate re-seals value with the active key when another key sealed it; it
// reports whether it changed anything.
func (kr *Keyring) Rotate(value, ad []byte) ([]byte, bool, error) {
	id, err := KeyID(value)
	if err != nil {
		return nil, false, err
	}
	if id == kr.active {
		return value, false, nil
	}
	pt, err := kr.Open(value, ad)
	if err != nil {
		return nil, false, err
	}
	return kr.Seal(pt, ad), true, nil
}
