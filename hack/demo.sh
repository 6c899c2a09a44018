#!/usr/bin/env bash
# The main command (README): runs the embedded local default — a real control plane, a TLS+auth registry,
# the test base image — and the docs' MachineOSConfig story on it, printing each step and its time.
# Installs what it needs first. Extra arguments go to `imagemode-local demo` (e.g. --keep).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source hack/env.sh
hack/install-deps.sh
KUBEBUILDER_ASSETS=$(hack/setup-kube-assets.sh)
export KUBEBUILDER_ASSETS
mkdir -p bin
go build -o bin/imagemode-local ./cmd/imagemode-local
exec bin/imagemode-local demo "$@"
