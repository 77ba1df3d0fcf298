package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/sealed"
)

func newInstrumentsCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "instruments", Short: "List and show the questionnaires"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List instruments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := c.catalog()
			if err != nil {
				return err
			}
			return instrument.WriteList(cat, c.stdout, asJSON)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "JSON instead of a table")
	show := &cobra.Command{
		Use:   "show ID --json",
		Short: "Print an instrument's definition: items in order with their text and option values",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := c.catalog()
			if err != nil {
				return err
			}
			return instrument.WriteShow(cat, args[0], c.stdout)
		},
	}
	show.Flags().Bool("json", true, "JSON (the only format)")
	cmd.AddCommand(list, show)
	return cmd
}

func (c *cli) catalog() (*instrument.Catalog, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	return loadCatalog(cfg)
}

func newScoreCmd(c *cli) *cobra.Command {
	var id, lang string
	cmd := &cobra.Command{
		Use:   "score --instrument ID [--lang L]",
		Short: `Score JSON Lines {"answers": {...}} from stdin; one result (or error) per line on stdout`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := c.catalog()
			if err != nil {
				return err
			}
			return instrument.ScoreLines(cat, id, lang, c.stdin, c.stdout)
		},
	}
	cmd.Flags().StringVar(&id, "instrument", "", "instrument id (required)")
	cmd.Flags().StringVar(&lang, "lang", "", "language of administration: zh-CN or en")
	_ = cmd.MarkFlagRequired("instrument")
	return cmd
}

func newKeysCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Encryption and signing keys"}
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Print a new random 32-byte key, base64 (for crypto.keys or audit.signing_key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintln(c.stdout, sealed.NewKey())
			return err
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every sealed value with crypto.active_key (old keys must stay configured until this finishes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, cfg, err := c.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if cfg.Crypto.Keys == "" {
				return errors.New("config key crypto.keys: required")
			}
			keys, err := sealed.ParseKeyring(cfg.Crypto.Keys, cfg.Crypto.ActiveKey)
			if err != nil {
				return fmt.Errorf("config key crypto.keys: %w", err)
			}
			n, err := postgres.RotateKeys(cmd.Context(), db, keys)
			if aerr := auditCLI(cmd.Context(), db, "keys.rotate", "crypto_key", keys.Active(), map[string]any{"resealed": n}, err); aerr != nil && err == nil {
				return fmt.Errorf("keys rotated, but the audit event was not written: %w", aerr)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "re-encrypted %d values with key %s\n", n, keys.Active())
			return nil
		},
	}
	cmd.AddCommand(gen, rotate)
	return cmd
}

func newAuditCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The tamper-evident audit trail"}
	var trustDB bool
	var pubKeys []string
	var since, out string
	verify := &cobra.Command{
		Use:   "verify [--key PUBKEY]... [--trust-database-keys] [--since FILE]",
		Short: "Recompute the hash chain and check every checkpoint; exit non-zero naming the first bad event",
		Long: "Recompute the hash chain and check every checkpoint; exit non-zero naming the first bad event.\n" +
			"With --since FILE (written by 'audit checkpoint --out'), also fail unless the chain still contains that checkpoint:\n" +
			"a trail cut back to an older head, newest events deleted with their links and checkpoints, verifies without it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var mark audit.Mark
			if since != "" {
				var err error
				if mark, err = readMark(since); err != nil {
					return err
				}
			}
			tr, err := c.auditTrail(cmd, pubKeys, trustDB)
			if err != nil {
				return err
			}
			var rep audit.Report
			if since != "" {
				if rep, err = audit.VerifySince(tr, mark); err != nil {
					return fmt.Errorf("checkpoint %s (position %d, event %d): %w", since, mark.Seq, mark.EventID, err)
				}
			} else if rep, err = audit.Verify(tr); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "audit trail intact: %d events chained, %d pending, %d checkpoints verified, head %d %x\n",
				rep.Events, rep.Pending, rep.Checkpoints, rep.HeadSeq, rep.HeadHash)
			if since != "" {
				fmt.Fprintf(c.stdout, "contains the checkpoint in %s: position %d, event %d\n", since, mark.Seq, mark.EventID)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&since, "since", "", "a checkpoint file from 'audit checkpoint --out' the chain must still contain")
	checkpoint := &cobra.Command{
		Use:   "checkpoint --out FILE [--key PUBKEY]... [--trust-database-keys]",
		Short: "Verify the trail, then write its newest signed checkpoint to FILE (JSON) for an auditor to keep outside the database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tr, err := c.auditTrail(cmd, pubKeys, trustDB)
			if err != nil {
				return err
			}
			if _, err := audit.Verify(tr); err != nil {
				return fmt.Errorf("no checkpoint written: %w", err)
			}
			m, err := audit.LatestMark(tr)
			if err != nil {
				return err
			}
			if err := writeMark(out, m); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "checkpoint at position %d (event %d, %s) written to %s\n", m.Seq, m.EventID, m.At.UTC().Format(time.RFC3339), out)
			return nil
		},
	}
	checkpoint.Flags().StringVar(&out, "out", "", "file to write (required)")
	_ = checkpoint.MarkFlagRequired("out")
	for _, sub := range []*cobra.Command{verify, checkpoint} {
		sub.Flags().StringArrayVar(&pubKeys, "key", nil, "a trusted checkpoint public key (base64), repeatable")
		sub.Flags().BoolVar(&trustDB, "trust-database-keys", false, "also accept the public keys recorded in the database")
	}
	pub := &cobra.Command{
		Use:   "public-key",
		Short: "Print the public key of audit.signing_key, for independent verification",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := c.config()
			if err != nil {
				return err
			}
			if cfg.Audit.SigningKey == "" {
				return errors.New("config key audit.signing_key: not set")
			}
			s, err := auditSigner(cfg, c.logger(cfg))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.stdout, base64.StdEncoding.EncodeToString(s.Public()))
			return err
		},
	}
	cmd.AddCommand(verify, checkpoint, pub)
	return cmd
}

// auditTrail loads the audit trail with the trusted checkpoint keys: the
// configured signer's, each --key, and the database's only when asked or
// when no other is given (with a warning).
func (c *cli) auditTrail(cmd *cobra.Command, pubKeys []string, trustDB bool) (audit.Trail, error) {
	db, cfg, err := c.openDB(cmd.Context())
	if err != nil {
		return audit.Trail{}, err
	}
	defer db.Close()
	tr, err := postgres.NewAuditStore(db).Load(cmd.Context())
	if err != nil {
		return tr, err
	}
	stored := tr.Keys
	tr.Keys = map[string]ed25519.PublicKey{}
	if cfg.Audit.SigningKey != "" {
		s, err := auditSigner(cfg, c.logger(cfg))
		if err != nil {
			return tr, err
		}
		tr.Keys[s.KeyID] = s.Public()
	}
	for _, k := range pubKeys {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return tr, fmt.Errorf("--key: must be a base64 Ed25519 public key")
		}
		tr.Keys[audit.KeyID(b)] = b
	}
	if trustDB || len(tr.Keys) == 0 {
		for id, k := range stored {
			tr.Keys[id] = k
		}
		if !trustDB {
			fmt.Fprintln(c.stderr, "warning: no trusted key given (audit.signing_key or --key): checkpoints are checked against the public keys stored in the database, which an attacker with write access could replace")
		}
	}
	return tr, nil
}

// markFile is the JSON an auditor keeps: one signed checkpoint and the
// event at its chain position.
type markFile struct {
	Format    string    `json:"format"`
	Seq       int64     `json:"seq"`
	EventID   int64     `json:"event_id"`
	Hash      string    `json:"hash"` // hex
	At        time.Time `json:"at"`
	KeyID     string    `json:"key_id"`
	Signature string    `json:"signature"` // base64
}

const markFormat = "sunpath-audit-checkpoint-v1"

func writeMark(path string, m audit.Mark) error {
	b, err := json.MarshalIndent(markFile{Format: markFormat, Seq: m.Seq, EventID: m.EventID, Hash: hex.EncodeToString(m.Hash),
		At: m.At.UTC(), KeyID: m.KeyID, Signature: base64.StdEncoding.EncodeToString(m.Signature)}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

func readMark(path string) (audit.Mark, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return audit.Mark{}, fmt.Errorf("--since: %w", err)
	}
	var f markFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || f.Format != markFormat {
		return audit.Mark{}, fmt.Errorf("--since %s: not a checkpoint file from 'sunpath audit checkpoint'", path)
	}
	h, herr := hex.DecodeString(f.Hash)
	sig, serr := base64.StdEncoding.DecodeString(f.Signature)
	if herr != nil || serr != nil || f.Seq < 1 || f.EventID < 1 || f.KeyID == "" {
		return audit.Mark{}, fmt.Errorf("--since %s: malformed checkpoint file", path)
	}
	return audit.Mark{Checkpoint: audit.Checkpoint{Seq: f.Seq, Hash: h, At: f.At, KeyID: f.KeyID, Signature: sig}, EventID: f.EventID}, nil
}
