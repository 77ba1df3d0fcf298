// Package migrations holds Sunpath's forward-only SQL migrations, applied in
// file-name order by tern.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
