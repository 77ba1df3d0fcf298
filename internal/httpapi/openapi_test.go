package httpapi

import (
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var dumpOpenAPI = flag.String("dump-openapi", "", "write the OpenAPI document to this file")

// docServer is a Server with only what the document needs: the route table.
func docServer(t *testing.T) *Server {
	t.Helper()
	s := &Server{cfg: Config{Version: "test"}}
	s.routes = s.table()
	return s
}

func openAPIDoc(t *testing.T) map[string]any {
	t.Helper()
	b, err := docServer(t).OpenAPI()
	if err != nil {
		t.Fatalf("OpenAPI: %v", err)
	}
	if *dumpOpenAPI != "" {
		if err := os.WriteFile(*dumpOpenAPI, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	openAPIDoc(t)
}
