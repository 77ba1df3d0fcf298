package main

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// cli holds what every subcommand shares: the process's streams and the
// configuration, read once from defaults, file, environment and flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	v              *viper.Viper
	configFile     string
	// devDir is where `make run` keeps its local PostgreSQL and development
	// keys (.data); the configuration falls back to them (see localDev).
	devDir string
	// devNoted is set once the fallback has been reported on stderr.
	devNoted bool
}

// config reads and validates the effective configuration.
func (c *cli) config() (Config, error) { return loadConfig(c, c.v, c.configFile) }

// logger returns the JSON logger all commands log with.
func (c *cli) logger(cfg Config) *slog.Logger {
	return slog.New(slog.NewJSONHandler(c.stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
}

func newRootCmd(c *cli) *cobra.Command {
	c.v = newViper()
	root := &cobra.Command{
		Use:           "sunpath",
		Short:         "Psychological screening and risk scoring for community corrections",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&c.configFile, "config", "", "configuration file (default: sunpath.yaml in the working directory, if present)")
	pf.String("database-url", "", "PostgreSQL URL (SUNPATH_DATABASE_URL)")
	pf.String("database-migrate-url", "", "PostgreSQL URL of the schema owner, for migrate (SUNPATH_DATABASE_MIGRATE_URL; default --database-url)")
	pf.String("http-addr", "", "address to serve HTTP on (SUNPATH_HTTP_ADDR)")
	pf.String("log-level", "", "debug, info, warn or error (SUNPATH_LOG_LEVEL)")
	for flag, key := range map[string]string{"database-url": "database.url", "database-migrate-url": "database.migrate_url", "http-addr": "http.addr", "log-level": "log.level"} {
		if err := c.v.BindPFlag(key, pf.Lookup(flag)); err != nil {
			panic(err) // a programming error: the flag is defined just above
		}
	}
	root.AddCommand(
		newServeCmd(c),
		newMigrateCmd(c),
		newConfigCmd(c),
		newVersionCmd(c),
		newUnitCmd(c),
		newUserCmd(c),
		newAPIKeyCmd(c),
		newInstrumentsCmd(c),
		newScoreCmd(c),
		newKeysCmd(c),
		newAuditCmd(c),
		newModelCmd(c),
	)
	return root
}

func newVersionCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(c.stdout, "sunpath %s (%s)\n", version, runtime.Version())
			return err
		},
	}
}
