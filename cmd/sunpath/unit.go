package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sunpath/sunpath/internal/postgres"
)

// withUnits opens the configured database and runs fn with the unit store.
func (c *cli) withUnits(ctx context.Context, fn func(*postgres.Units) error) error {
	db, _, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(postgres.NewUnits(db))
}

func newUnitCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "unit", Short: "Manage organisational units (people, staff and case-system scopes belong to them)"}
	var code, name, agency string
	create := &cobra.Command{
		Use:   "create --code C --name N [--agency A]",
		Short: "Create a unit; its agency (default \"default\") is what case-system keys are scoped to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			u := postgres.Unit{Code: code, Name: name, Agency: agency}
			if err := c.withUnits(cmd.Context(), func(us *postgres.Units) error { return us.Create(cmd.Context(), u) }); err != nil {
				return err
			}
			if u.Agency == "" {
				u.Agency = "default"
			}
			fmt.Fprintf(c.stdout, "created unit %s %q (agency %s)\n", u.Code, u.Name, u.Agency)
			return nil
		},
	}
	create.Flags().StringVar(&code, "code", "", "the unit's code, as people and accounts refer to it (required)")
	create.Flags().StringVar(&name, "name", "", "display name (required)")
	create.Flags().StringVar(&agency, "agency", "", "the agency the unit belongs to (default \"default\")")
	_ = create.MarkFlagRequired("code")
	_ = create.MarkFlagRequired("name")

	var renameCode, newName string
	rename := &cobra.Command{
		Use:   "rename --code C --name N",
		Short: "Rename a unit; its code and agency stay",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var u postgres.Unit
			if err := c.withUnits(cmd.Context(), func(us *postgres.Units) (err error) {
				u, err = us.Rename(cmd.Context(), renameCode, newName)
				return err
			}); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "renamed unit %s to %q (agency %s)\n", u.Code, u.Name, u.Agency)
			return nil
		},
	}
	rename.Flags().StringVar(&renameCode, "code", "", "the unit (required)")
	rename.Flags().StringVar(&newName, "name", "", "the new display name (required)")
	_ = rename.MarkFlagRequired("code")
	_ = rename.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list",
		Short: "List units with their agencies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var units []postgres.Unit
			if err := c.withUnits(cmd.Context(), func(us *postgres.Units) (err error) {
				units, err = us.List(cmd.Context())
				return err
			}); err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CODE\tNAME\tAGENCY")
			for _, u := range units {
				fmt.Fprintf(w, "%s\t%s\t%s\n", u.Code, u.Name, u.Agency)
			}
			return w.Flush()
		},
	}
	cmd.AddCommand(create, list, rename)
	return cmd
}
