// Package deploy holds Sunpath's deployment artifacts: the container image,
// Docker Compose, Kubernetes manifests, Prometheus rules, the Grafana
// dashboard and the runbook. It has no code; its tests check that the
// artifacts are consistent with each other and with the service.
package deploy
