package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
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

// withAuth opens the configured database and runs fn with the account service.
func (c *cli) withAuth(ctx context.Context, fn func(*auth.Service) error) error {
	db, cfg, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(auth.NewService(postgres.NewAccounts(db), cfg.Session))
}

// withAudit is withAuth for a change: the command is recorded in the audit
// chain as action on resourceType/resourceID (read after fn, so fn may set
// it), with actor cli:<os user> and its outcome.
func (c *cli) withAudit(ctx context.Context, action, resourceType string, resourceID *string, detail map[string]any, fn func(*auth.Service) error) error {
	db, cfg, err := c.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	err = fn(auth.NewService(postgres.NewAccounts(db), cfg.Session))
	if aerr := auditCLI(ctx, db, action, resourceType, *resourceID, detail, err); aerr != nil && err == nil {
		return fmt.Errorf("%s done, but its audit event was not written: %w", action, aerr)
	}
	return err
}

func newMigrateCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (forward-only) as database.migrate_url's role, else database.url's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			// The schema's owner migrates; the service's login role cannot.
			if cfg.MigrateURL != "" {
				cfg.Database.URL = cfg.MigrateURL
			}
			if cfg.Database.URL == "" {
				return errors.New("config key database.migrate_url or database.url (env SUNPATH_DATABASE_MIGRATE_URL, SUNPATH_DATABASE_URL): required")
			}
			db, err := postgres.Open(cmd.Context(), cfg.Database)
			if err != nil {
				return fmt.Errorf("database: %w", err)
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
			if err := c.withAudit(cmd.Context(), "user.create", "user", &username, map[string]any{"role": string(r), "unit": unit}, func(svc *auth.Service) error {
				_, err := svc.CreateUser(cmd.Context(), username, pw, r, unit)
				return err
			}); err != nil {
				if errors.Is(err, auth.ErrUnknownUnit) {
					return fmt.Errorf("--unit: no unit %q; 'sunpath unit list' shows the units, 'sunpath unit create --code %s --name …' makes one", unit, unit)
				}
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

	// change builds a subcommand that applies one change to --username.
	change := func(use, short string, fn func(ctx context.Context, svc *auth.Service, username string) error, detail ...func() map[string]any) *cobra.Command {
		var name string
		sub := &cobra.Command{
			Use:   use + " --username U",
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				var d map[string]any
				if len(detail) > 0 {
					d = detail[0]()
				}
				if err := c.withAudit(cmd.Context(), "user."+use, "user", &name, d, func(svc *auth.Service) error { return fn(cmd.Context(), svc, name) }); err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "%s: done for %s\n", use, name)
				return nil
			},
		}
		sub.Flags().StringVar(&name, "username", "", "the account (required)")
		_ = sub.MarkFlagRequired("username")
		return sub
	}
	var newRole string
	setRole := change("set-role", "Change a user's role (--role); ends the user's sessions", func(ctx context.Context, svc *auth.Service, u string) error {
		r, err := auth.ParseRole(newRole)
		if err != nil {
			return fmt.Errorf("--role: %w", err)
		}
		return svc.SetRole(ctx, u, r)
	}, func() map[string]any { return map[string]any{"role": newRole} })
	setRole.Flags().StringVar(&newRole, "role", "", "the new role (required)")
	_ = setRole.MarkFlagRequired("role")
	cmd.AddCommand(
		change("reset-password", "Set a new password read from stdin; clears a lockout and ends sessions", func(ctx context.Context, svc *auth.Service, u string) error {
			pw, err := readSecret(c)
			if err != nil {
				return err
			}
			return svc.ResetPassword(ctx, u, pw)
		}),
		change("disable", "Disable a user; ends the user's sessions at once", func(ctx context.Context, svc *auth.Service, u string) error {
			return svc.SetDisabled(ctx, u, true)
		}),
		change("enable", "Re-enable a disabled user", func(ctx context.Context, svc *auth.Service, u string) error {
			return svc.SetDisabled(ctx, u, false)
		}),
		change("unlock", "Clear a lockout after repeated failed logins", func(ctx context.Context, svc *auth.Service, u string) error {
			return svc.Unlock(ctx, u)
		}),
		setRole,
	)
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
	var name, role, unit, agency string
	var expiresIn time.Duration
	create := &cobra.Command{
		Use:   "create --name N --role R [--agency A | --unit U] [--expires-in DURATION]",
		Short: "Create an API key; the key is printed once, alone on the last line",
		Long: `Create an API key. A case_system key sees the people in the units of one
agency (--agency; --unit is accepted as the same scope) and needs one. A
supervisor key needs its unit (--unit), which must exist.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			scope := unit
			switch {
			case agency != "" && unit != "":
				return errors.New("--agency and --unit both name the key's scope: give one")
			case agency != "" && r != auth.RoleCaseSystem:
				return fmt.Errorf("--agency: only a case_system key is scoped to an agency; a %s key takes --unit", r)
			case agency != "":
				scope = agency
			case r == auth.RoleCaseSystem && unit == "":
				return errors.New("--agency: required for a case_system key (the agency whose units it sees; 'sunpath unit list' shows each unit's agency)")
			}
			var expires *time.Time
			if expiresIn > 0 {
				t := time.Now().Add(expiresIn).UTC()
				expires = &t
			}
			var key, rid string
			var id int64
			err = c.withAudit(cmd.Context(), "apikey.create", "api_key", &rid, map[string]any{"role": string(r), "unit": scope}, func(svc *auth.Service) (err error) {
				key, id, err = svc.CreateAPIKey(cmd.Context(), name, r, scope, expires)
				rid = strconv.FormatInt(id, 10)
				return err
			})
			if errors.Is(err, auth.ErrUnknownUnit) {
				return fmt.Errorf("--unit: no unit %q; 'sunpath unit list' shows the units, 'sunpath unit create' makes one", scope)
			}
			if err != nil {
				return err
			}
			if r == auth.RoleCaseSystem {
				db, _, err := c.openDB(cmd.Context())
				if err != nil {
					return err
				}
				defer db.Close()
				units, err := postgres.NewUnits(db).List(cmd.Context())
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(units, func(u postgres.Unit) bool { return u.Agency == scope }) {
					fmt.Fprintf(c.stderr, "sunpath: note: no unit belongs to agency %q yet; the key sees nobody until one does ('sunpath unit create --agency %s …')\n", scope, scope)
				}
			}
			fmt.Fprintf(c.stdout, "created API key %d %q (role %s, scope %q); store it now, it is not shown again:\n", id, name, r, scope)
			fmt.Fprintln(c.stdout, key)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the key is for (required)")
	create.Flags().StringVar(&role, "role", "", "role of the key, usually case_system (required)")
	create.Flags().StringVar(&unit, "unit", "", "the unit of a supervisor (or other) key; for a case_system key, the same as --agency")
	create.Flags().StringVar(&agency, "agency", "", "the agency of a case_system key (required for one)")
	create.Flags().DurationVar(&expiresIn, "expires-in", 0, "lifetime, e.g. 8760h; none by default")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("role")
	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var keys []auth.APIKey
			if err := c.withAuth(cmd.Context(), func(svc *auth.Service) (err error) {
				keys, err = svc.APIKeys(cmd.Context())
				return err
			}); err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tROLE\tUNIT\tPREFIX\tCREATED\tEXPIRES\tSTATUS")
			for _, k := range keys {
				exp, st := "never", "active"
				if k.ExpiresAt != nil {
					exp = k.ExpiresAt.UTC().Format(time.RFC3339)
					if k.ExpiresAt.Before(time.Now()) {
						st = "expired"
					}
				}
				if k.RevokedAt != nil {
					st = "revoked"
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Unit, k.Prefix, k.CreatedAt.UTC().Format(time.RFC3339), exp, st)
			}
			return w.Flush()
		},
	}
	var revokeID int64
	revoke := &cobra.Command{
		Use:   "revoke --id ID",
		Short: "Revoke an API key at once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rid := strconv.FormatInt(revokeID, 10)
			if err := c.withAudit(cmd.Context(), "apikey.revoke", "api_key", &rid, nil, func(svc *auth.Service) error { return svc.RevokeAPIKey(cmd.Context(), revokeID) }); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "revoked API key %d\n", revokeID)
			return nil
		},
	}
	revoke.Flags().Int64Var(&revokeID, "id", 0, "the key's id, from 'sunpath apikey list' (required)")
	_ = revoke.MarkFlagRequired("id")
	cmd.AddCommand(create, list, revoke)
	return cmd
}
