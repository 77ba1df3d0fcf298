# Sunpath. `make run` and `make test` work on a fresh machine: when
# SUNPATH_DATABASE_URL is unset, scripts/localpg.sh starts a local PostgreSQL.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build run test lint vuln fmt bench bench-scale migrate models

build:
	CGO_ENABLED=1 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/sunpath ./cmd/sunpath

run: build
	./scripts/run.sh

migrate: build
	./scripts/run.sh migrate-only

test:
	./scripts/test.sh

# Pinned: newer releases need modules this proxy does not serve.
lint:
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...

# govulncheck needs its database (vuln.go.dev, or GOVULNDB=<mirror>).
vuln:
	go run golang.org/x/vuln/cmd/govulncheck@v1.1.4 ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	./scripts/bench.sh

# Oversight cost at 2,000 and 20,000 people (SUNPATH_SCALE_PEOPLE=...).
bench-scale:
	./scripts/bench-scale.sh

# Retrain the shipped models from data/ (cgo: golearn's liblinear and CART);
# the same data and specs reproduce models/ byte for byte. nij-review boosts
# 100 golearn trees per fold: about 10 minutes on 2 cores.
DATA ?= data
models: build
	bin/sunpath model train --data $(DATA)/nij/nij-dev.csv --spec models/nij-intake/spec.yaml --out models/nij-intake
	bin/sunpath model train --data $(DATA)/nij/nij-dev.csv --spec models/nij-review/spec.yaml --out models/nij-review
	bin/sunpath model train --data $(DATA)/compas/compas-two-years.csv --spec models/compas-general/spec.yaml --out models/compas-general
