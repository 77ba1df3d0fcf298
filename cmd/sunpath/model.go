package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

// newModelCmd groups the offline risk-model commands: train (golearn, cgo)
// and eval (pure Go).
func newModelCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Train and evaluate risk models",
	}
	cmd.AddCommand(newModelTrainCmd(c), newModelEvalCmd(c), newModelExportCmd(c))
	return cmd
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
