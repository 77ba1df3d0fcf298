// Package audit is Sunpath's tamper-evident audit trail: who did what to
// which resource, when and with what outcome. Events are written in the same
// transaction as the change they record; a sealer then links them into a
// SHA-256 hash chain and signs periodic checkpoints with Ed25519, so that any
// edited, deleted, inserted or reordered event is detected by Verify.
//
// The package depends on the standard library only.
package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Outcome says how a request ended.
type Outcome string

// The outcomes.
const (
	Success  Outcome = "success"
	Denied   Outcome = "denied"   // 401, 403, or 404 for a record out of scope
	Rejected Outcome = "rejected" // other 4xx: invalid input, conflict
	Failed   Outcome = "failed"   // 5xx
)

// Event is one audit record. It never holds answers, names or notes: only
// who, what, which resource, when and how it ended.
type Event struct {
	ID           int64
	At           time.Time // UTC, microsecond precision as stored
	Actor        string    // e.g. "user:alice", "api_key:cms", "kiosk:<session>", "system:escalator"
	Role         string
	Action       string // e.g. "assessment.create", "flag.acknowledge", "auth.login"
	ResourceType string
	ResourceID   string
	Subject      string // the case system's subject id, when the resource belongs to a person
	Outcome      Outcome
	RequestID    string
	Detail       string // canonical JSON object of codes (never free text), "{}" when none
}

// Link is an event's place in the chain.
type Link struct {
	Seq      int64
	EventID  int64
	PrevHash []byte
	Hash     []byte
}

// Checkpoint is a signed statement of the chain's head at a moment.
type Checkpoint struct {
	Seq       int64
	Hash      []byte
	At        time.Time
	KeyID     string
	Signature []byte
}

// Genesis is the previous hash of the first link.
var Genesis = make([]byte, sha256.Size)

// canonical encodes e unambiguously: every field length-prefixed in a fixed
// order, times in UTC with microseconds (what PostgreSQL stores).
func canonical(e Event) []byte {
	fields := []string{
		strconv.FormatInt(e.ID, 10),
		e.At.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z"),
		e.Actor, e.Role, e.Action, e.ResourceType, e.ResourceID, e.Subject,
		string(e.Outcome), e.RequestID, e.Detail,
	}
	var b []byte
	b = append(b, "sunpath-audit-v1"...)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// Hash returns the chain hash of e following prev: SHA-256(prev ‖ canonical(e)).
func Hash(prev []byte, e Event) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical(e))
	return h.Sum(nil)
}

// checkpointMessage is what a checkpoint's signature covers.
func checkpointMessage(seq int64, hash []byte, at time.Time) []byte {
	return fmt.Appendf(nil, "sunpath-audit-checkpoint-v1\n%d\n%s\n%s\n", seq, hex.EncodeToString(hash), at.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano))
}

// Signer signs checkpoints.
type Signer struct {
	key   ed25519.PrivateKey
	KeyID string
}

// NewSigner returns a signer from a 32-byte Ed25519 seed. The key id is the
// first 8 bytes of the SHA-256 of the public key, in hex.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signing key must be %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	k := ed25519.NewKeyFromSeed(seed)
	return &Signer{key: k, KeyID: KeyID(k.Public().(ed25519.PublicKey))}, nil
}

// KeyID names a public key.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Public returns the key that verifies this signer's checkpoints.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns a checkpoint of the chain head (seq, hash) at time at.
func (s *Signer) Sign(seq int64, hash []byte, at time.Time) Checkpoint {
	at = at.UTC().Truncate(time.Microsecond)
	return Checkpoint{Seq: seq, Hash: hash, At: at, KeyID: s.KeyID, Signature: ed25519.Sign(s.key, checkpointMessage(seq, hash, at))}
}

// ErrTampered is wrapped by every verification failure.
var ErrTampered = errors.New("audit trail tampered")

// Problem describes the first inconsistency Verify found.
type Problem struct {
	Seq     int64 // chain position, 0 when not in the chain
	EventID int64 // the first bad event, 0 when unknown
	Reason  string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("audit trail tampered: first bad event %d (chain position %d): %s", p.EventID, p.Seq, p.Reason)
}

func (p *Problem) Unwrap() error { return ErrTampered }

// Report summarises a successful verification.
type Report struct {
	Events      int   // events in the chain
	Pending     int   // events written but not yet sealed
	Checkpoints int   // checkpoints whose signature and hash matched
	HeadSeq     int64 // last chain position
	HeadHash    []byte
}

// Trail is everything Verify needs, as read from storage.
type Trail struct {
	Events      map[int64]Event // every stored event by id
	Links       []Link          // the chain, in seq order as stored
	Pending     map[int64]bool  // event ids waiting to be sealed
	Checkpoints []Checkpoint
	Keys        map[string]ed25519.PublicKey // trusted checkpoint keys by id
}

// Verify recomputes the chain and checks every link, event and checkpoint.
// It returns a *Problem naming the first bad event on any edit, deletion,
// insertion or reordering, and a Report otherwise.
func Verify(t Trail) (Report, error) {
	var r Report
	prev := Genesis
	chained := make(map[int64]bool, len(t.Links))
	hashAt := make(map[int64][]byte, len(t.Links))
	for i, l := range t.Links {
		want := int64(i + 1)
		if l.Seq != want {
			return r, &Problem{Seq: l.Seq, EventID: l.EventID, Reason: fmt.Sprintf("chain position %d where %d was expected (a link was removed or inserted)", l.Seq, want)}
		}
		if !equal(l.PrevHash, prev) {
			return r, &Problem{Seq: l.Seq, EventID: l.EventID, Reason: "previous-hash does not match the chain (links reordered, removed or inserted)"}
		}
		e, ok := t.Events[l.EventID]
		if !ok {
			return r, &Problem{Seq: l.Seq, EventID: l.EventID, Reason: "event is missing (deleted)"}
		}
		if chained[l.EventID] {
			return r, &Problem{Seq: l.Seq, EventID: l.EventID, Reason: "event is chained twice"}
		}
		if got := Hash(prev, e); !equal(got, l.Hash) {
			return r, &Problem{Seq: l.Seq, EventID: l.EventID, Reason: "event content does not match its hash (edited or swapped)"}
		}
		chained[l.EventID] = true
		hashAt[l.Seq] = l.Hash
		prev = l.Hash
	}
	r.Events, r.HeadSeq, r.HeadHash = len(t.Links), int64(len(t.Links)), prev
	// Every stored event is either chained or waiting to be.
	var stray int64
	for id := range t.Events {
		if !chained[id] && !t.Pending[id] && (stray == 0 || id < stray) {
			stray = id
		}
	}
	if stray != 0 {
		return r, &Problem{EventID: stray, Reason: "event is neither chained nor pending (inserted outside the application)"}
	}
	for id := range t.Pending {
		if _, ok := t.Events[id]; ok && !chained[id] {
			r.Pending++
		}
	}
	sort.Slice(t.Checkpoints, func(i, j int) bool { return t.Checkpoints[i].Seq < t.Checkpoints[j].Seq })
	goodSeq := int64(0) // the last position a valid checkpoint vouches for
	for _, cp := range t.Checkpoints {
		pub, ok := t.Keys[cp.KeyID]
		if !ok {
			return r, &Problem{Seq: cp.Seq, Reason: fmt.Sprintf("checkpoint signed with unknown key %s", cp.KeyID)}
		}
		if !ed25519.Verify(pub, checkpointMessage(cp.Seq, cp.Hash, cp.At), cp.Signature) {
			return r, &Problem{Seq: cp.Seq, Reason: "checkpoint signature is invalid"}
		}
		h, ok := hashAt[cp.Seq]
		if !ok {
			var ev int64
			if cp.Seq > 0 && int(cp.Seq) <= len(t.Links) {
				ev = t.Links[cp.Seq-1].EventID
			}
			return r, &Problem{Seq: cp.Seq, EventID: ev, Reason: "chain is shorter than a signed checkpoint (events truncated)"}
		}
		if !equal(h, cp.Hash) {
			// The chain was rewritten and re-hashed: the first changed event
			// lies after the last checkpoint that still matches.
			return r, &Problem{Seq: goodSeq + 1, EventID: t.Links[goodSeq].EventID,
				Reason: fmt.Sprintf("chain was rewritten between positions %d and %d: it differs from the checkpoint signed at %d", goodSeq+1, cp.Seq, cp.Seq)}
		}
		goodSeq = cp.Seq
		r.Checkpoints++
	}
	return r, nil
}

// Mark is a signed checkpoint taken out of the database, with the event at
// its chain position: an auditor keeps it to prove later that the chain
// still reaches that far. A trail cut back to an earlier head, with its
// newer links and checkpoints deleted, still verifies on its own; it no
// longer contains the mark.
type Mark struct {
	Checkpoint
	EventID int64
}

// ErrNoCheckpoint means the trail has no signed checkpoint yet.
var ErrNoCheckpoint = errors.New("no signed checkpoint yet")

// LatestMark returns the newest checkpoint of t and the event it ends at.
// Verify t first: an unverified trail's checkpoint proves nothing.
func LatestMark(t Trail) (Mark, error) {
	var m Mark
	for _, cp := range t.Checkpoints {
		if cp.Seq > m.Seq {
			m.Checkpoint = cp
		}
	}
	if m.Seq == 0 || int(m.Seq) > len(t.Links) {
		return Mark{}, ErrNoCheckpoint
	}
	m.EventID = t.Links[m.Seq-1].EventID
	return m, nil
}

// VerifySince is Verify, and then checks that the chain still contains m:
// m's signature is valid under t.Keys, and the link at m's position is the
// same event with the same hash.
func VerifySince(t Trail, m Mark) (Report, error) {
	r, err := Verify(t)
	if err != nil {
		return r, err
	}
	if m.Seq < 1 {
		return r, &Problem{Seq: m.Seq, EventID: m.EventID, Reason: "the kept checkpoint names no chain position"}
	}
	pub, ok := t.Keys[m.KeyID]
	if !ok {
		return r, &Problem{Seq: m.Seq, EventID: m.EventID, Reason: fmt.Sprintf("the kept checkpoint is signed with key %s, which is not trusted", m.KeyID)}
	}
	if !ed25519.Verify(pub, checkpointMessage(m.Seq, m.Hash, m.At), m.Signature) {
		return r, &Problem{Seq: m.Seq, EventID: m.EventID, Reason: "the kept checkpoint's signature is invalid"}
	}
	if int(m.Seq) > len(t.Links) {
		return r, &Problem{Seq: m.Seq, EventID: m.EventID, Reason: fmt.Sprintf("the chain ends at position %d, before the kept checkpoint: events after %d were deleted", len(t.Links), len(t.Links))}
	}
	l := t.Links[m.Seq-1]
	if l.EventID != m.EventID || !equal(l.Hash, m.Hash) {
		return r, &Problem{Seq: m.Seq, EventID: m.EventID, Reason: "the chain differs from the kept checkpoint at its position (rewritten since)"}
	}
	return r, nil
}

func equal(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Filter narrows an audit listing.
type Filter struct {
	Subject, Actor string
	From, To       time.Time
	BeforeID       int64 // page backwards from here; 0 for the newest
	Limit          int
}
