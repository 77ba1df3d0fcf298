package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// build returns a sealed trail of n events with a checkpoint at every
// checkpointEvery-th link and at the head, as the sealer makes it.
func build(t testing.TB, n, checkpointEvery int, r *rand.Rand) (Trail, *Signer) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(r.IntN(256))
	}
	s, err := NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	tr := Trail{Events: map[int64]Event{}, Pending: map[int64]bool{}, Keys: map[string]ed25519.PublicKey{s.KeyID: s.Public()}}
	prev := Genesis
	base := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	actions := []string{"assessment.create", "flag.acknowledge", "subject.put", "auth.login", "assessment.read"}
	for i := 1; i <= n; i++ {
		e := Event{
			ID: int64(i * 3), At: base.Add(time.Duration(i) * 1500 * time.Microsecond),
			Actor: fmt.Sprintf("user:u%d", r.IntN(5)), Role: "counselor",
			Action: actions[r.IntN(len(actions))], ResourceType: "assessment", ResourceID: fmt.Sprint(r.IntN(1000)),
			Subject: fmt.Sprintf("S-%d", r.IntN(50)), Outcome: Success, RequestID: fmt.Sprintf("req-%d", i), Detail: "{}",
		}
		tr.Events[e.ID] = e
		h := Hash(prev, e)
		tr.Links = append(tr.Links, Link{Seq: int64(i), EventID: e.ID, PrevHash: prev, Hash: h})
		prev = h
		if i%checkpointEvery == 0 || i == n {
			tr.Checkpoints = append(tr.Checkpoints, s.Sign(int64(i), h, e.At))
		}
	}
	return tr, s
}

func clone(t Trail) Trail {
	c := Trail{Events: map[int64]Event{}, Pending: map[int64]bool{}, Keys: t.Keys}
	for k, v := range t.Events {
		c.Events[k] = v
	}
	for k, v := range t.Pending {
		c.Pending[k] = v
	}
	c.Links = append([]Link(nil), t.Links...)
	c.Checkpoints = append([]Checkpoint(nil), t.Checkpoints...)
	return c
}

func TestVerifyIntact(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		tr, _ := build(t, 1+r.IntN(60), 1+r.IntN(10), r)
		// Pending events that are not yet sealed are fine.
		tr.Events[9999] = Event{ID: 9999, At: time.Now().UTC(), Actor: "user:x", Outcome: Success, Detail: "{}"}
		tr.Pending[9999] = true
		rep, err := Verify(tr)
		if err != nil {
			t.Fatalf("trial %d: intact trail: %v", trial, err)
		}
		if rep.Events != len(tr.Links) || rep.Pending != 1 || rep.Checkpoints != len(tr.Checkpoints) {
			t.Fatalf("trial %d: report %+v", trial, rep)
		}
	}
}

// TestVerifyDetectsRandomTampering applies one random edit, deletion,
// insertion or reordering to thousands of trails: every one must be caught
// and the first bad event named.
func TestVerifyDetectsRandomTampering(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 7))
	kinds := map[string]int{}
	const trials = 5000
	for trial := 0; trial < trials; trial++ {
		tr, _ := build(t, 2+r.IntN(40), 1+r.IntN(8), r)
		bad := clone(tr)
		kind, victim := tamper(bad, r)
		kinds[kind]++
		_, err := Verify(bad)
		var p *Problem
		if !errors.As(err, &p) || !errors.Is(err, ErrTampered) {
			t.Fatalf("trial %d: %s of event %d not detected (err = %v)", trial, kind, victim, err)
		}
		if kind == "rewrite and rehash" {
			// Only the stretch between two checkpoints can be named.
			if p.Seq > victimSeq(tr, victim) {
				t.Fatalf("trial %d: rewrite of event %d placed after it: %v", trial, victim, p)
			}
			continue
		}
		if victim != 0 && p.EventID != victim && kind != "swap links" && kind != "truncate" {
			t.Fatalf("trial %d: %s of event %d reported as event %d: %v", trial, kind, victim, p.EventID, p)
		}
	}
	t.Logf("%d trials, all detected: %v", trials, kinds)
}

func victimSeq(t Trail, id int64) int64 {
	for _, l := range t.Links {
		if l.EventID == id {
			return l.Seq
		}
	}
	return 0
}

// tamper applies one random change and returns its kind and the id of the
// first event a correct verifier should name (0 when it cannot be named).
func tamper(t Trail, r *rand.Rand) (string, int64) {
	n := len(t.Links)
	i := r.IntN(n)
	l := t.Links[i]
	switch r.IntN(7) {
	case 0: // edit one field of one event
		e := t.Events[l.EventID]
		switch r.IntN(5) {
		case 0:
			e.Actor += "x"
		case 1:
			e.Outcome = Denied
		case 2:
			e.At = e.At.Add(time.Microsecond)
		case 3:
			e.Subject = "S-other"
		default:
			e.Detail = `{"x":1}`
		}
		t.Events[l.EventID] = e
		return "edit", l.EventID
	case 1: // delete an event
		delete(t.Events, l.EventID)
		return "delete event", l.EventID
	case 2: // insert an event the application never wrote
		id := l.EventID + 1 // ids are multiples of 3, so this one is free
		t.Events[id] = Event{ID: id, At: t.Events[l.EventID].At, Actor: "user:mallory", Role: "admin", Action: "subject.put", Outcome: Success, Detail: "{}"}
		return "insert event", id
	case 3: // swap the contents of two events, keeping their ids
		j := (i + 1 + r.IntN(n-1)) % n
		a, b := t.Events[t.Links[i].EventID], t.Events[t.Links[j].EventID]
		a.ID, b.ID = b.ID, a.ID
		if a.Actor == b.Actor && a.Action == b.Action && a.ResourceID == b.ResourceID && a.Subject == b.Subject && a.RequestID == b.RequestID {
			b.RequestID += "!" // identical apart from id and time: still a change
		}
		t.Events[a.ID], t.Events[b.ID] = a, b
		first := t.Links[min(i, j)].EventID
		return "swap events", first
	case 4: // swap two links (reorder the chain)
		j := (i + 1 + r.IntN(n-1)) % n
		t.Links[i], t.Links[j] = t.Links[j], t.Links[i]
		return "swap links", 0
	case 5: // remove a link and its event, renumbering the rest and
		// recomputing every later hash: only the signed checkpoints can tell
		delete(t.Events, l.EventID)
		links := append(append([]Link(nil), t.Links[:i]...), t.Links[i+1:]...)
		prev := Genesis
		if i > 0 {
			prev = links[i-1].Hash
		}
		for k := i; k < len(links); k++ {
			links[k].Seq = int64(k + 1)
			links[k].PrevHash = prev
			links[k].Hash = Hash(prev, t.Events[links[k].EventID])
			prev = links[k].Hash
		}
		t.Links = links
		return "truncate", 0
	default: // rewrite an event and re-hash the chain from there on
		e := t.Events[l.EventID]
		e.Outcome = Rejected
		if e.Outcome == t.Events[l.EventID].Outcome {
			e.Actor += "!"
		}
		t.Events[l.EventID] = e
		prev := l.PrevHash
		for k := i; k < n; k++ {
			t.Links[k].PrevHash = prev
			t.Links[k].Hash = Hash(prev, t.Events[t.Links[k].EventID])
			prev = t.Links[k].Hash
		}
		return "rewrite and rehash", l.EventID
	}
}

func TestVerifyRejectsForgedCheckpoint(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tr, _ := build(t, 10, 5, r)
	other, _ := NewSigner(make([]byte, 32))
	tr.Checkpoints = append(tr.Checkpoints, other.Sign(10, tr.Links[9].Hash, time.Now()))
	if _, err := Verify(tr); !errors.Is(err, ErrTampered) {
		t.Fatalf("checkpoint from an untrusted key accepted: %v", err)
	}
	tr, _ = build(t, 10, 5, r)
	tr.Checkpoints[0].Signature[0] ^= 1
	if _, err := Verify(tr); !errors.Is(err, ErrTampered) {
		t.Fatalf("corrupted signature accepted: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	tr, _ := build(b, 10000, 100, r)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(tr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/event")
}

// TestVerifySince: a trail cut back to an older head verifies on its own
// but not against a mark kept from before the cut; neither does a trail
// re-chained past the mark, nor a mark whose signature or key is not good.
func TestVerifySince(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	tr, s := build(t, 40, 10, r)
	m, err := LatestMark(tr)
	if err != nil || m.Seq != 40 || m.EventID != tr.Links[39].EventID {
		t.Fatalf("LatestMark = %+v, %v; want position 40, event %d", m, err, tr.Links[39].EventID)
	}
	if _, err := VerifySince(tr, m); err != nil {
		t.Fatalf("VerifySince on the intact trail: %v", err)
	}
	mid := tr.Checkpoints[2] // position 30
	m30 := Mark{Checkpoint: mid, EventID: tr.Links[29].EventID}

	cut := clone(tr)
	for _, l := range cut.Links[25:] {
		delete(cut.Events, l.EventID)
	}
	cut.Links = cut.Links[:25]
	cut.Checkpoints = cut.Checkpoints[:2]
	if _, err := Verify(cut); err != nil {
		t.Fatalf("Verify of a consistently cut trail: %v (the test assumes it passes)", err)
	}
	var p *Problem
	if _, err := VerifySince(cut, m30); !errors.As(err, &p) || p.Seq != 30 || !errors.Is(err, ErrTampered) {
		t.Errorf("VerifySince of a trail cut before the mark = %v, want a Problem at position 30", err)
	}

	rechained := clone(tr)
	e := rechained.Events[rechained.Links[29].EventID]
	e.Actor = "user:mallory"
	rechained.Events[e.ID] = e
	prev := rechained.Links[28].Hash
	for k := 29; k < len(rechained.Links); k++ {
		rechained.Links[k].PrevHash = prev
		rechained.Links[k].Hash = Hash(prev, rechained.Events[rechained.Links[k].EventID])
		prev = rechained.Links[k].Hash
	}
	rechained.Checkpoints = rechained.Checkpoints[:2] // the later ones no longer match and were dropped
	if _, err := Verify(rechained); err != nil {
		t.Fatalf("Verify of a re-chained trail without its later checkpoints: %v (the test assumes it passes)", err)
	}
	if _, err := VerifySince(rechained, m30); err == nil {
		t.Error("VerifySince of a trail re-chained at the mark's position passed")
	}

	forged := m30
	forged.Signature = tr.Checkpoints[1].Signature // another checkpoint's
	if _, err := VerifySince(tr, forged); err == nil {
		t.Error("VerifySince with a mark whose signature does not cover it passed")
	}
	other, _ := NewSigner(make([]byte, 32))
	foreign := Mark{Checkpoint: other.Sign(30, mid.Hash, mid.At), EventID: m30.EventID}
	if _, err := VerifySince(tr, foreign); err == nil {
		t.Error("VerifySince with a mark signed by an untrusted key passed")
	}
	if _, err := VerifySince(tr, Mark{}); err == nil {
		t.Error("VerifySince with an empty mark passed")
	}
	if _, err := VerifySince(tr, Mark{Checkpoint: s.Sign(30, mid.Hash, mid.At), EventID: m30.EventID}); err != nil {
		t.Errorf("VerifySince with a fresh signature of position 30: %v", err)
	}
}
