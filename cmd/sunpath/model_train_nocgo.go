//go:build !cgo

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newModelTrainCmd, in a binary built without cgo (the static container
// image), explains that training needs golearn's cgo liblinear: models are
// trained offline with 'make models' and shipped as data.
func newModelTrainCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:                "train --data CSV --spec FILE --out DIR",
		Short:              "Train a risk model (needs a binary built with cgo)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("this binary was built without cgo; training uses golearn's liblinear through cgo: run 'make models' from a source checkout")
		},
	}
}
