package riskmodel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// WriteDir writes a model directory: spec.yaml (unless specPath already is
// that file), the model file, the calibration plot, the model card and,
// last, model.json with the digest of every other file. The output depends
// only on the arguments.
func WriteDir(dir, specPath string, specBytes []byte, file *File, man *Manifest) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fileBytes, err := marshal(file)
	if err != nil {
		return err
	}
	card, svg := ModelCard(man, file)
	arts := []struct {
		name string
		b    []byte
	}{
		{SpecFileName, specBytes},
		{ModelFileName, fileBytes},
		{CalibrationSVGName, svg},
		{CardFileName, card},
	}
	man.Artifacts = nil
	for _, a := range arts {
		p := filepath.Join(dir, a.name)
		if !(a.name == SpecFileName && sameFile(specPath, p)) {
			if err := os.WriteFile(p, a.b, 0o644); err != nil {
				return err
			}
		}
		man.Artifacts = append(man.Artifacts, Artifact{Path: a.name, SHA256: SHA256(a.b), Bytes: len(a.b)})
	}
	slices.SortFunc(man.Artifacts, func(a, b Artifact) int { return strings.Compare(a.Path, b.Path) })
	mb, err := marshal(man)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ManifestFileName), mb, 0o644)
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(fa, fb)
}

func marshal(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
