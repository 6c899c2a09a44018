#!/usr/bin/env bash
# The main command (README): runs the embedded local default — a real control plane, a TLS+auth registry,
# the test base image — and the docs' MachineOSConfig story on it, printing each step and its time.
# Installs what it needs first. Extra arguments go to `imagemode-local demo` (e.g. --keep).
#   hack/demo.sh --kubelet [go test flags]   the system as a cluster runs it, on two real kubelets with
#     containerd and runc (hack/setup-node-runtime.sh installs them): manifests/deploy applied with kubectl, the
#     controller as its Deployment's pod, the docs' build as a Job's pod from the service image built here,
#     the daemon as the DaemonSet's pod on a simulated host directory (TestDeployOnKubelets, machineos/).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source hack/env.sh
hack/install-deps.sh
# The docs' MachineOSConfig pushes to image-registry.openshift-image-registry.svc:5000: the local registry
# serves that name on 127.0.0.1:5000, which needs this one /etc/hosts line (added once, marked).
if ! grep -q 'image-registry.openshift-image-registry.svc' /etc/hosts 2>/dev/null; then
  if [ -w /etc/hosts ]; then
    echo '127.0.0.1 image-registry.openshift-image-registry.svc # imagemode demo (hack/demo.sh)' >>/etc/hosts
  else
    echo "note: cannot add image-registry.openshift-image-registry.svc to /etc/hosts; the demo will use a free port" >&2
  fi
fi
KUBEBUILDER_ASSETS=$(hack/setup-kube-assets.sh)
export KUBEBUILDER_ASSETS
if [ "${1:-}" = "--kubelet" ]; then
  shift
  IMAGEMODE_NODE_RUNTIME=$(hack/setup-node-runtime.sh)
  export IMAGEMODE_NODE_RUNTIME IMAGEMODE_KUBELET=1
  exec go test -count=1 -run '^TestDeployOnKubelets$' -v "$@" ./machineos/
fi
mkdir -p bin
# Stripped: build pods run this binary, and each RUN step copies the running binary once.
go build -ldflags "-s -w" -o bin/imagemode-local ./cmd/imagemode-local
exec bin/imagemode-local demo "$@"
