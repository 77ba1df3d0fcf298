//go:build cgo

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sunpath/sunpath/internal/risk"
)

func newModelTrainCmd(c *cli) *cobra.Command {
	var data, spec, out string
	cmd := &cobra.Command{
		Use:   "train --data CSV --spec FILE --out DIR",
		Short: "Train, cross-validate and calibrate a risk model; write its directory",
		Long: `Train fits the model described by spec.yaml on a CSV file with golearn's
liblinear, chooses the penalty by cross-validation, calibrates on out-of-fold
scores and writes scorer.json, calibration.svg, MODEL_CARD.md and the model.json
manifest to DIR. The same data and spec give byte-identical files.

golearn's liblinear needs GODEBUG=cgocheck=0 on Go 1.26; when it is not set,
the command re-executes itself with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !risk.CgoCheckOff() {
				return reexecWithCgoCheckOff(cmd, c, []string{"model", "train", "--data", data, "--spec", spec, "--out", out})
			}
			_, err := risk.Train(cmd.Context(), risk.Options{DataPath: data, SpecPath: spec, OutDir: out, Log: c.stderr})
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "training CSV file")
	f.StringVar(&spec, "spec", "", "model specification (spec.yaml)")
	f.StringVar(&out, "out", "", "model directory to write")
	for _, n := range []string{"data", "spec", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// reexecWithCgoCheckOff runs this program again with GODEBUG=cgocheck=0:
// Go reads GODEBUG's cgocheck at start-up only, so neither os.Setenv nor a
// //go:debug directive can turn it off for golearn's liblinear calls.
func reexecWithCgoCheckOff(cmd *cobra.Command, c *cli, args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("re-execute with GODEBUG=cgocheck=0: %w", err)
	}
	child := exec.CommandContext(cmd.Context(), exe, args...)
	child.Env = risk.WithCgoCheckOff(os.Environ())
	child.Stdin, child.Stdout, child.Stderr = c.stdin, c.stdout, c.stderr
	if err := child.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s exited with status %d", strings.Join(args[:2], " "), ee.ExitCode())
		}
		return fmt.Errorf("re-execute with GODEBUG=cgocheck=0: %w", err)
	}
	return nil
}
