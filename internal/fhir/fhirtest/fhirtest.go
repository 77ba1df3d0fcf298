// Package fhirtest validates FHIR R4 JSON against HL7's R4 JSON Schema, for
// tests of every package that produces FHIR resources.
package fhirtest

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed fhir.schema.json.gz
var schemaGz []byte

var (
	once     sync.Once
	compiler *jsonschema.Compiler
	loadErr  error
	mu       sync.Mutex
	compiled = map[string]*jsonschema.Schema{}
)

func load() {
	zr, err := gzip.NewReader(bytes.NewReader(schemaGz))
	if err != nil {
		loadErr = err
		return
	}
	doc, err := jsonschema.UnmarshalJSON(zr)
	if err != nil {
		loadErr = err
		return
	}
	compiler = jsonschema.NewCompiler()
	loadErr = compiler.AddResource("fhir.schema.json", doc)
}

// Validate checks a FHIR resource (JSON) against the R4 schema of its
// resourceType; it returns nil when the resource is valid.
func Validate(resource []byte) error {
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(resource, &head); err != nil || head.ResourceType == "" {
		return fmt.Errorf("not a FHIR resource: no resourceType")
	}
	once.Do(load)
	if loadErr != nil {
		return fmt.Errorf("load the R4 schema: %w", loadErr)
	}
	mu.Lock()
	sch, ok := compiled[head.ResourceType]
	if !ok {
		var err error
		sch, err = compiler.Compile("fhir.schema.json#/definitions/" + head.ResourceType)
		if err != nil {
			mu.Unlock()
			return fmt.Errorf("resourceType %s: %w", head.ResourceType, err)
		}
		compiled[head.ResourceType] = sch
	}
	mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(resource))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}
