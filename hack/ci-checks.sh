#!/usr/bin/env bash
# The checks CI runs besides hack/test.sh: the race detector over the controllers and the node agent, and
# every fuzz target for a short fixed time (hack/fuzz.sh; FUZZTIME, 10s by default). The goroutine-leak
# check needs no step of its own: it runs in the test packages' TestMain (internal/leakcheck).
# RACE_PACKAGES overrides the race pass's package list. Needs KUBEBUILDER_ASSETS (hack/test.sh sets it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source hack/env.sh
if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
	KUBEBUILDER_ASSETS=$(hack/setup-kube-assets.sh)
	export KUBEBUILDER_ASSETS
fi
t0=$(date +%s)
# machineos (the build service) is left out: its real buildah builds and Job back-offs take several
# minutes without the race detector; run it with RACE_PACKAGES when touching it.
RACE_PACKAGES=${RACE_PACKAGES:-"./render/... ./registry/gc/... ./daemon/..."}
# shellcheck disable=SC2086
go test -race -count=1 -timeout 30m $RACE_PACKAGES
echo "race pass done in $(( $(date +%s) - t0 ))s"
t1=$(date +%s)
hack/fuzz.sh
echo "fuzzing done in $(( $(date +%s) - t1 ))s; ci checks done in $(( $(date +%s) - t0 ))s"
