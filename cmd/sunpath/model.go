package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sunpath/sunpath/internal/risk"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// newModelCmd groups the offline risk-model commands: train (golearn, cgo)
// and eval (pure Go).
func newModelCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Train and evaluate risk models",
	}
	cmd.AddCommand(newModelTrainCmd(c), newModelEvalCmd(c))
	return cmd
}

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

func newModelEvalCmd(c *cli) *cobra.Command {
	var dir, data string
	var asJSON bool
	var bootstrap int
	cmd := &cobra.Command{
		Use:   "eval --model DIR --data CSV [--json]",
		Short: "Evaluate a trained risk model on labelled data",
		Long: `Eval loads a model directory (checking every sha256 of its manifest), scores
every row of the CSV in pure Go and reports n, base rate, AUC (DeLong 95%
interval), Brier score, log-loss and ECE (bootstrap intervals), a calibration
table, the tier populations and, for each group column of the spec, error
rates at every tier boundary. Rows the model cannot encode are counted by
field and reason, never dropped silently.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := riskmodel.Load(dir)
			if err != nil {
				return err
			}
			t, err := riskmodel.ReadTable(data)
			if err != nil {
				return err
			}
			rep, err := riskmodel.Evaluate(m, t, riskmodel.EvalOptions{Bootstrap: bootstrap})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(c.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return riskmodel.WriteReport(c.stdout, rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "model", "", "model directory (with model.json)")
	f.StringVar(&data, "data", "", "labelled CSV file")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.IntVar(&bootstrap, "bootstrap", 0, "bootstrap resamples for the intervals (default: the model's training setting)")
	for _, n := range []string{"model", "data"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}
