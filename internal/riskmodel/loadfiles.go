package riskmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
)

// LoadFiles is Load for a model directory held in memory (a version stored
// in the database), keyed by file name: it verifies the sha256 of every
// artifact listed in model.json, refuses a file the manifest does not list,
// and decodes the model file and the spec. Errors name the file.
func LoadFiles(files map[string][]byte) (*Model, error) {
	mb, ok := files[ManifestFileName]
	if !ok {
		return nil, fmt.Errorf("%s: missing: %w", ManifestFileName, ErrInvalid)
	}
	var man Manifest
	if err := json.Unmarshal(mb, &man); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", ManifestFileName, err, ErrInvalid)
	}
	if man.Format != ManifestFormat {
		return nil, fmt.Errorf("%s: format %q, want %q: %w", ManifestFileName, man.Format, ManifestFormat, ErrInvalid)
	}
	listed := []string{ManifestFileName}
	for _, a := range man.Artifacts {
		if a.Path != path.Clean(a.Path) || path.IsAbs(a.Path) || a.Path == ".." || len(a.Path) > 2 && a.Path[:3] == "../" {
			return nil, fmt.Errorf("%s: artifact path %q leaves the directory: %w", ManifestFileName, a.Path, ErrInvalid)
		}
		b, ok := files[a.Path]
		if !ok {
			return nil, fmt.Errorf("%s: listed in %s but missing: %w", a.Path, ManifestFileName, ErrInvalid)
		}
		if got := SHA256(b); got != a.SHA256 {
			return nil, fmt.Errorf("%s: sha256 %s does not match manifest %s: %w", a.Path, got, a.SHA256, ErrTampered)
		}
		listed = append(listed, a.Path)
	}
	for name := range files {
		if !slices.Contains(listed, name) {
			return nil, fmt.Errorf("%s: not listed in %s: %w", name, ManifestFileName, ErrInvalid)
		}
	}
	fb, ok := files[man.ModelFile]
	if !ok || man.ModelFile == ManifestFileName {
		return nil, fmt.Errorf("%s: model file %q not among the artifacts: %w", ManifestFileName, man.ModelFile, ErrInvalid)
	}
	sb, ok := files[SpecFileName]
	if !ok || !slices.Contains(listed[1:], SpecFileName) {
		return nil, fmt.Errorf("%s: not among the artifacts: %w", SpecFileName, ErrInvalid)
	}
	spec, err := ParseSpec(sb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", SpecFileName, err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(fb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", man.ModelFile, err, ErrInvalid)
	}
	if f.Name != man.Name || f.Version != man.Version || spec.Name != f.Name || spec.Version != f.Version {
		return nil, fmt.Errorf("%s: name or version differ between %s, %s and %s: %w",
			ManifestFileName, ManifestFileName, man.ModelFile, SpecFileName, ErrInvalid)
	}
	m, err := NewModel(&f, spec, SHA256(fb))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", man.ModelFile, err)
	}
	m.manifest = &man
	return m, nil
}
