package sealed

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSealOpenBindsRowAndRotates(t *testing.T) {
	k1, k2 := NewKey(), NewKey()
	old, err := ParseKeyring("k1:"+k1, "k1")
	if err != nil {
		t.Fatal(err)
	}
	ad := AD("assessments", "answers", "row-1")
	v := old.Seal([]byte(`{"q9":2}`), ad)
	if bytes.Contains(v, []byte(`"q9"`)) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := old.Open(v, ad)
	if err != nil || string(got) != `{"q9":2}` {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := old.Open(v, AD("assessments", "answers", "row-2")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("value opened for another row: %v", err)
	}
	if _, err := old.Open(v, AD("flags", "note", "row-1")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("value opened for another column: %v", err)
	}
	v2 := append([]byte(nil), v...)
	v2[len(v2)-1] ^= 1
	if _, err := old.Open(v2, ad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("tampered value opened: %v", err)
	}

	both, err := ParseKeyring("k1:"+k1+",k2:"+k2, "k2")
	if err != nil {
		t.Fatal(err)
	}
	r, changed, err := both.Rotate(v, ad)
	if err != nil || !changed {
		t.Fatalf("Rotate = %v, %v", changed, err)
	}
	if id, _ := KeyID(r); id != "k2" {
		t.Errorf("rotated key id = %s, want k2", id)
	}
	if _, changed, _ := both.Rotate(r, ad); changed {
		t.Error("second rotation changed the value")
	}
	newOnly, _ := ParseKeyring("k2:"+k2, "k2")
	if got, err := newOnly.Open(r, ad); err != nil || string(got) != `{"q9":2}` {
		t.Errorf("rotated value does not open with the new key alone: %q %v", got, err)
	}
	if _, err := newOnly.Open(v, ad); !errors.Is(err, ErrNoKey) {
		t.Errorf("old value with a retired key: %v, want ErrNoKey", err)
	}
}

func TestParseKeyringErrors(t *testing.T) {
	for _, tt := range []struct{ spec, active, want string }{
		{"", "k1", "no encryption key"},
		{"k1:short", "k1", "32 bytes"},
		{"k1:" + NewKey(), "k2", "active key"},
		{"bad id!:" + NewKey(), "x", "id:base64"},
	} {
		_, err := ParseKeyring(tt.spec, tt.active)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseKeyring(%q, %q) = %v, want error containing %q", tt.spec, tt.active, err, tt.want)
		}
	}
}

func FuzzOpen(f *testing.F) {
	kr, _ := ParseKeyring("k1:"+NewKey(), "k1")
	f.Add(kr.Seal([]byte("x"), []byte("ad")))
	f.Add([]byte{1, 200})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		kr.Open(v, []byte("ad")) // must not panic
	})
}
