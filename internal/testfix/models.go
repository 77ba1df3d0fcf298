package testfix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

// ModelDirFiles reads a model directory: model.json and every artifact.
func ModelDirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	mb, err := os.ReadFile(filepath.Join(dir, riskmodel.ManifestFileName))
	if err != nil {
		t.Fatal(err)
	}
	var man riskmodel.Manifest
	if err := json.Unmarshal(mb, &man); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{riskmodel.ManifestFileName: mb}
	for _, a := range man.Artifacts {
		if files[a.Path], err = os.ReadFile(filepath.Join(dir, a.Path)); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// Relabel makes files a new version of the same model (same weights): the
// version in spec.yaml, scorer.json and model.json, and the manifest's
// digests of what changed.
func Relabel(t *testing.T, files map[string][]byte, version string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for k, v := range files {
		out[k] = v
	}
	out[riskmodel.SpecFileName] = regexp.MustCompile(`(?m)^version: .*$`).ReplaceAll(files[riskmodel.SpecFileName], []byte("version: "+version))
	var scorer map[string]any
	if err := json.Unmarshal(files[riskmodel.ModelFileName], &scorer); err != nil {
		t.Fatal(err)
	}
	scorer["version"] = version
	out[riskmodel.ModelFileName], _ = json.Marshal(scorer)
	var man map[string]any
	if err := json.Unmarshal(files[riskmodel.ManifestFileName], &man); err != nil {
		t.Fatal(err)
	}
	man["version"] = version
	for _, a := range man["artifacts"].([]any) {
		a := a.(map[string]any)
		b := out[a["path"].(string)]
		a["sha256"], a["bytes"] = riskmodel.SHA256(b), len(b)
	}
	out[riskmodel.ManifestFileName], _ = json.Marshal(man)
	return out
}
