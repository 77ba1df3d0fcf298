// Package risk is Sunpath's golearn adapter and the only package that
// imports golearn. It trains risk models offline for `sunpath model train`:
// logistic regression through golearn's vendored liblinear (low-level API),
// optionally with gradient-boosted trees whose splits golearn's CART
// regressor chooses (boost.go), chosen by cross-validation and calibrated on
// out-of-fold scores, written as riskmodel files. Nothing here runs on the
// request path.
//
// liblinear's cgo calls pass Go pointers that Go 1.26's cgocheck rejects, so
// the training process must run with GODEBUG=cgocheck=0 in its environment
// (see CgoCheckOff); Train refuses to start otherwise instead of panicking.
package risk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/linear_models"
)

// golearnModule is the module whose version the manifest records.
const golearnModule = "github.com/sjwhitworth/golearn"

// ErrCgoCheck reports a training process started without GODEBUG=cgocheck=0.
var ErrCgoCheck = errors.New("training needs GODEBUG=cgocheck=0 in the process environment (golearn's liblinear passes Go pointers to C)")

// CgoCheckOff reports whether this process runs with GODEBUG=cgocheck=0,
// which golearn's liblinear training needs. Setting the variable from inside
// the process has no effect: re-execute the program with it instead.
func CgoCheckOff() bool {
	for _, kv := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if strings.TrimSpace(kv) == "cgocheck=0" {
			return true
		}
	}
	return false
}

// WithCgoCheckOff returns env with cgocheck=0 added to GODEBUG.
func WithCgoCheckOff(env []string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			found = true
			if v != "" {
				v += ","
			}
			kv = "GODEBUG=" + v + "cgocheck=0"
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG=cgocheck=0")
	}
	return out
}

// GolearnVersion is the golearn module version linked into this binary.
func GolearnVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == golearnModule {
				return d.Version
			}
		}
	}
	return "unknown"
}

var silence sync.Once

// fitLogistic trains an L2-regularised logistic regression with golearn's
// liblinear (solver L2R_LR, primal trust-region Newton, deterministic) and
// returns log-odds weights for the positive class (y = 1), one per column
// of x. liblinear fits no intercept: x must carry a constant column.
func fitLogistic(x [][]float64, y []float64, c, eps float64) ([]float64, error) {
	if !CgoCheckOff() {
		return nil, ErrCgoCheck
	}
	if len(x) == 0 {
		return nil, errors.New("fit logistic: no rows")
	}
	silence.Do(base.Silent)
	prob := linear_models.NewProblem(x, y, -1)
	param := linear_models.NewParameter(linear_models.L2R_LR, c, eps)
	model := linear_models.Train(prob, param)
	dir, err := os.MkdirTemp("", "sunpath-liblinear-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "model.txt")
	if err := linear_models.Export(model, path); err != nil {
		return nil, fmt.Errorf("fit logistic: export: %w", err)
	}
	w, err := readLiblinear(path, len(x[0]))
	if err != nil {
		return nil, fmt.Errorf("fit logistic: %w", err)
	}
	return w, nil
}

// readLiblinear parses a liblinear text model of a two-class problem with
// labels 0 and 1. liblinear's weights are the log-odds of the first label
// it met; they are negated when that label is 0.
func readLiblinear(path string, width int) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sign := 0.0
	var w []float64
	inW := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if inW {
			if line == "" {
				continue
			}
			v, err := strconv.ParseFloat(strings.Fields(line)[0], 64)
			if err != nil {
				return nil, fmt.Errorf("liblinear model: weight %q: %w", line, err)
			}
			w = append(w, v)
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "solver_type":
			if len(fields) != 2 || fields[1] != "L2R_LR" {
				return nil, fmt.Errorf("liblinear model: solver %v, want L2R_LR", fields[1:])
			}
		case "nr_class":
			if len(fields) != 2 || fields[1] != "2" {
				return nil, fmt.Errorf("liblinear model: %d classes, want 2", len(fields)-1)
			}
		case "label":
			if len(fields) != 3 {
				return nil, fmt.Errorf("liblinear model: label line %q", line)
			}
			switch fields[1] {
			case "1":
				sign = 1
			case "0":
				sign = -1
			default:
				return nil, fmt.Errorf("liblinear model: labels %v, want 0 and 1", fields[1:])
			}
		case "bias":
			if b, err := strconv.ParseFloat(fields[1], 64); err != nil || b >= 0 {
				return nil, fmt.Errorf("liblinear model: unexpected bias %q", fields[1])
			}
		case "w":
			inW = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if sign == 0 {
		return nil, errors.New("liblinear model: no label line")
	}
	// NewProblem declares one column more than x has; its weight is unused.
	if len(w) < width {
		return nil, fmt.Errorf("liblinear model: %d weights for %d columns", len(w), width)
	}
	w = w[:width]
	for i := range w {
		w[i] *= sign
	}
	return w, nil
}
