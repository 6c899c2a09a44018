#!/usr/bin/env bash
# The test command (README; .ci/run calls it): installs what the tests need — Debian packages, the
# control-plane binaries built from the Go module proxy (cached per machine) — then checks formatting,
# vets and runs every test on the real parts. Extra arguments go to `go test` (e.g. -run, -v).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source hack/env.sh
t0=$(date +%s)
hack/install-deps.sh
KUBEBUILDER_ASSETS=$(hack/setup-kube-assets.sh)
export KUBEBUILDER_ASSETS
echo "setup done in $(( $(date +%s) - t0 ))s (control-plane binaries: $KUBEBUILDER_ASSETS)"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './hack/*'))
if [ -n "$unformatted" ]; then echo "gofmt needed on:"; echo "$unformatted"; exit 1; fi
go vet ./...
go test -count=1 -timeout 60m "$@" ./...
echo "test command done in $(( $(date +%s) - t0 ))s"
