package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestRotateSealsLegacyExplanations: an explanation written in the clear
// before explanations were sealed is sealed by 'keys rotate' and still reads
// the same. Broken once: RotateKeys without the legacy pass (the plaintext
// column stays filled).
func TestRotateSealsLegacyExplanations(t *testing.T) {
	t.Parallel()
	_, conn := groupEnv(t)
	ctx := context.Background()
	var sid uuid.UUID
	if err := conn.QueryRow(ctx, `SELECT id FROM subjects WHERE external_id = 'S-1'`).Scan(&sid); err != nil {
		t.Fatal(err)
	}
	rid := uuid.New()
	const expl = `[{"feature": "Prior_Arrest_Episodes_Felony", "value": "10 or more", "contribution": 0.4}]`
	if _, err := conn.Exec(ctx, `INSERT INTO recommendations (id, subject_id, model_name, model_version, model_sha256, probability, tier,
		explanation, inputs_digest, created_by) VALUES ($1, $2, 'm', '1', 'h', 0.5, 'ordinary', $3, 'd', 'test')`, rid, sid, expl); err != nil {
		t.Fatal(err)
	}
	cfg := postgres.DefaultConfig()
	cfg.URL = conn.Config().ConnString()
	db, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys := testfix.Keyring(t)
	cases := postgres.NewCases(db, postgres.CasesConfig{Keys: keys, Flags: casework.DefaultFlagPolicy})
	if _, err := postgres.RotateKeys(ctx, db, keys); err != nil {
		t.Fatal(err)
	}
	var plain *string
	if err := conn.QueryRow(ctx, `SELECT explanation::text FROM recommendations WHERE id = $1`, rid).Scan(&plain); err != nil || plain != nil {
		t.Fatalf("explanation after rotate = %v %v, want sealed (NULL)", plain, err)
	}
	var got casework.Recommendation
	_, _, err = cases.Write(ctx, postgres.Op{Principal: admin}, func(tx casework.Tx) (postgres.Reply, error) {
		got, err = tx.Recommendation(ctx, rid.String())
		return postgres.Reply{}, err
	})
	var c []struct {
		Feature, Value string
		Contribution   float64
	}
	if err != nil || json.Unmarshal(got.Explanation, &c) != nil || len(c) != 1 || c[0].Feature != "Prior_Arrest_Episodes_Felony" || c[0].Value != "10 or more" {
		t.Errorf("explanation read back = %s %v", got.Explanation, err)
	}
}
