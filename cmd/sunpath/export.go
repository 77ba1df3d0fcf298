package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/sealed"
)

// newModelExportCmd writes a labelled training file from the recommendations
// a model made and the outcomes recorded since.
func newModelExportCmd(c *cli) *cobra.Command {
	var model, kinds, out string
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "export-training --model NAME --outcome KIND[,KIND] --window 8760h --out FILE",
		Short: "Write a labelled CSV of a model's recommendations and the outcomes recorded within a window after each",
		Long: `export-training writes one row per person: the first recommendation the model
made for them, with the model inputs as they were then (sealed with the
recommendation, so nothing recorded later leaks in), the label 1 when an
outcome of the given kinds (` + strings.Join(casework.OutcomeKinds, ", ") + `)
happened within the window after it, else 0, and the recorded sex for the
error rates by group. People whose window has not passed are left out and
counted. Rows are named by the recommendation's id, never the person's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks := strings.Split(kinds, ",")
			for _, k := range ks {
				if !slices.Contains(casework.OutcomeKinds, k) {
					return fmt.Errorf("--outcome: %q is not one of %s", k, strings.Join(casework.OutcomeKinds, ", "))
				}
			}
			if window <= 0 {
				return errors.New("--window: required, e.g. 8760h for 12 months")
			}
			db, cfg, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			keys, err := sealed.ParseKeyring(cfg.Crypto.Keys, cfg.Crypto.ActiveKey)
			if err != nil {
				return fmt.Errorf("config key crypto.keys: %w", err)
			}
			f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			n, pending, err := exportTraining(cmd, postgres.NewCases(db, postgres.CasesConfig{Keys: keys}),
				postgres.TrainingOptions{Model: model, Kinds: ks, Window: window, Now: time.Now()}, f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if aerr := auditCLI(cmd.Context(), db, "model.export_training", "model", model, map[string]any{"rows": n, "pending": pending,
				"outcomes": ks, "window_hours": window.Hours()}, err); aerr != nil && err == nil {
				err = fmt.Errorf("exported, but the audit event was not written: %w", aerr)
			}
			if err != nil {
				os.Remove(out)
				return err
			}
			fmt.Fprintf(c.stdout, "wrote %d rows to %s (%d people left out: their window has not passed)\n", n, out, pending)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "the model whose recommendations are exported (required)")
	f.StringVar(&kinds, "outcome", "revocation,new_offence", "outcome kinds that make the label 1, comma-separated")
	f.DurationVar(&window, "window", 8760*time.Hour, "follow-up window after each recommendation")
	f.StringVar(&out, "out", "", "the CSV file to create (required; never overwritten)")
	for _, n := range []string{"model", "out"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

// exportTraining writes the rows as CSV: id, label, sex, then every input.
func exportTraining(cmd *cobra.Command, cases *postgres.Cases, opt postgres.TrainingOptions, f *os.File) (n, pending int, err error) {
	var rows []postgres.TrainingRow
	pending, err = cases.ExportTraining(cmd.Context(), opt, func(r postgres.TrainingRow) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		return 0, pending, err
	}
	n, err = casework.WriteTrainingCSV(f, rows)
	return n, pending, err
}
