package main

import (
	"context"
	"encoding/json"
	"os"
	"os/user"
	"strconv"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/postgres"
)

// cliActor names the operating-system user running an administrative
// command, for the audit trail: "cli:<os user>".
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli:uid-" + strconv.Itoa(os.Getuid())
}

// auditCLI records one administrative command in the audit chain, with its
// outcome: success, or rejected with the error's kind (never its text).
func auditCLI(ctx context.Context, db *postgres.DB, action, resourceType, resourceID string, detail map[string]any, cmdErr error) error {
	ev := audit.Event{Actor: cliActor(), Role: "cli", Action: action, ResourceType: resourceType, ResourceID: resourceID, Outcome: audit.Success}
	if cmdErr != nil {
		ev.Outcome = audit.Rejected
	}
	if len(detail) > 0 {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		ev.Detail = string(b)
	}
	return postgres.NewAuditStore(db).Record(context.WithoutCancel(ctx), ev)
}
