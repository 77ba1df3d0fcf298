// Package instruments holds Sunpath's instrument definitions as data: one
// <id>.json per questionnaire, schema.json describing the format, and
// overlay.schema.json describing an operator's text overlay. Load them with
// instrument.Load(instruments.FS, overlay).
package instruments

import "embed"

// FS holds every definition and both schemas.
//
//go:embed *.json
var FS embed.FS
