package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/postgres"
)

// openDB opens the configured database for an administrative command.
func (c *cli) openDB(ctx context.Context) (*postgres.DB, Config, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, cfg, err
	}
	if cfg.Database.URL == "" {
		return nil, cfg, errors.New("config key database.url (env SUNPATH_DATABASE_URL): required")
	}
	db, err := postgres.Open(ctx, cfg.Database)
	if err != nil {
		return nil, cfg, fmt.Errorf("database: %w", err)
	}
	return db, cfg, nil
}

func newMigrateCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (forward-only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.SelfCheck(cmd.Context()); err != nil {
				return err
			}
			v, err := db.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "database schema at version %d\n", v)
			return nil
		},
	}
}

func newUserCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage user accounts"}
	var username, role, unit string
	create := &cobra.Command{
		Use:   "create --username U --role R [--unit UNIT]",
		Short: "Create a user; the password is read from the first line of stdin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			pw, err := readSecret(c)
			if err != nil {
				return err
			}
			db, cfg, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			svc := auth.NewService(postgres.NewAccounts(db), cfg.Session)
			if _, err := svc.CreateUser(cmd.Context(), username, pw, r, unit); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "created user %s (role %s, unit %q)\n", username, r, unit)
			return nil
		},
	}
	create.Flags().StringVar(&username, "username", "", "login name (required)")
	create.Flags().StringVar(&role, "role", "", "admin, supervisor, counselor, case_system or auditor (required)")
	create.Flags().StringVar(&unit, "unit", "", "organisational unit (required for counselors and supervisors)")
	_ = create.MarkFlagRequired("username")
	_ = create.MarkFlagRequired("role")
	cmd.AddCommand(create)
	return cmd
}

// readSecret reads the first line of stdin, so that a password never appears
// in a process listing or shell history.
func readSecret(c *cli) (string, error) {
	sc := bufio.NewScanner(c.stdin)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		return "", errors.New("read password from stdin: no input")
	}
	return strings.TrimRight(sc.Text(), "\r"), nil
}

func newAPIKeyCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "apikey", Short: "Manage API keys for machine clients"}
	var name, role, unit string
	var expiresIn time.Duration
	create := &cobra.Command{
		Use:   "create --name N --role R [--unit U] [--expires-in DURATION]",
		Short: "Create an API key; the key is printed once, alone on the last line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			db, cfg, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			var expires *time.Time
			if expiresIn > 0 {
				t := time.Now().Add(expiresIn).UTC()
				expires = &t
			}
			svc := auth.NewService(postgres.NewAccounts(db), cfg.Session)
			key, id, err := svc.CreateAPIKey(cmd.Context(), name, r, unit, expires)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "created API key %d %q (role %s); store it now, it is not shown again:\n", id, name, r)
			fmt.Fprintln(c.stdout, key)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the key is for (required)")
	create.Flags().StringVar(&role, "role", "", "role of the key, usually case_system (required)")
	create.Flags().StringVar(&unit, "unit", "", "scope of the key (agency or unit)")
	create.Flags().DurationVar(&expiresIn, "expires-in", 0, "lifetime, e.g. 8760h; none by default")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("role")
	cmd.AddCommand(create)
	return cmd
}
