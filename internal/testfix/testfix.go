// Package testfix holds the fixtures the HTTP and web tests share: the
// shipped instruments and models, a throwaway encryption keyring, a
// goroutine-safe log buffer and a real NIJ profile. It is imported only by
// tests; paths are relative to a package two levels below the repository
// root (internal/<pkg>), where go test runs them.
package testfix

import (
	"bytes"
	"encoding/csv"
	"os"
	"sync"
	"testing"

	"github.com/sunpath/sunpath/instruments"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/sealed"
)

var (
	catalogOnce sync.Once
	catalog     *instrument.Catalog
	catalogErr  error
	modelsOnce  sync.Once
	models      map[string]*riskmodel.Model
	modelsErr   error
)

// Catalog returns the shipped instruments, loaded once per test binary.
func Catalog(t testing.TB) *instrument.Catalog {
	t.Helper()
	catalogOnce.Do(func() { catalog, catalogErr = instrument.Load(instruments.FS, nil) })
	if catalogErr != nil {
		t.Fatalf("instruments: %v", catalogErr)
	}
	return catalog
}

// Models returns the shipped models (../../models), loaded once.
func Models(t testing.TB) map[string]*riskmodel.Model {
	t.Helper()
	modelsOnce.Do(func() { models, modelsErr = riskmodel.LoadDir("../../models") })
	if modelsErr != nil {
		t.Fatalf("models: %v", modelsErr)
	}
	return models
}

// Keyring returns a keyring with one fresh random key.
func Keyring(t testing.TB) *sealed.Keyring {
	t.Helper()
	kr, err := sealed.ParseKeyring("t1:"+sealed.NewKey(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// NIJProfile returns the model inputs of the first person in
// data/nij/nij-dev.csv (in the repository): every column but the id, the
// label and the protected attributes, empty cells as null.
func NIJProfile(t testing.TB) map[string]any {
	t.Helper()
	f, err := os.Open("../../data/nij/nij-dev.csv")
	if err != nil {
		t.Fatalf("NIJ data: %v", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	row, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]any{}
	for i, h := range head {
		switch h {
		case "ID", "Race", "Gender", "Recidivism_Within_3years":
			continue
		}
		if row[i] == "" {
			p[h] = nil
		} else {
			p[h] = row[i]
		}
	}
	return p
}

// Buffer is a bytes.Buffer safe for a logger and a test reading at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
