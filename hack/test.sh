#!/usr/bin/env bash
# The test command (README; .ci/run calls it): installs what the tests need — Debian packages, the
# control-plane binaries built from the Go module proxy (cached per machine) — then checks formatting,
# vets and runs every test on the real parts, with the checks CI needs:
#   - the race detector over the controllers, the node agent and the registry GC (RACE_PACKAGES): those
#     packages run under -race instead of a second plain run, in one `go test`, at the same time as the
#     plain `go test` of the rest (the tests mostly wait on control planes, pods and back-offs);
#   - every native fuzz target for a short fixed time (hack/fuzz.sh; FUZZTIME, 3s each here, one fuzz
#     worker; FUZZTIME=0 skips it), after the tests;
#   - the goroutine-leak checks, which run in the test packages' TestMain (internal/leakcheck).
# Extra arguments go to `go test` (e.g. -short, -run X -v). Package patterns among them (./pkg/...) narrow
# the run to those packages (each still under -race when it is in RACE_PACKAGES), and fuzzing is skipped.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source hack/env.sh
t0=$(date +%s)
hack/install-deps.sh
KUBEBUILDER_ASSETS=$(hack/setup-kube-assets.sh)
export KUBEBUILDER_ASSETS
# The real node runtime (containerd, runc, kubelet, kube-scheduler; hack/setup-node-runtime.sh, cached per
# machine): the kubelet tests (build Jobs, the controller Deployment and the daemon DaemonSet run by real
# kubelets) run with it. IMAGEMODE_KUBELET=0 skips them, and the set-up, on a machine that cannot run a kubelet.
if [ "${IMAGEMODE_KUBELET:-1}" != 0 ]; then
	IMAGEMODE_NODE_RUNTIME=$(hack/setup-node-runtime.sh)
	export IMAGEMODE_NODE_RUNTIME IMAGEMODE_KUBELET=1
else
	unset IMAGEMODE_KUBELET
fi
echo "setup done in $(( $(date +%s) - t0 ))s (control-plane binaries: $KUBEBUILDER_ASSETS)"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './hack/*'))
if [ -n "$unformatted" ]; then echo "gofmt needed on:"; echo "$unformatted"; exit 1; fi
go vet ./...

# The packages under the race detector. machineos (the build service) and the other packages that run real
# buildah builds are left out: buildah's storage and image copies are several times slower under -race
# and they hold the suite's longest waits already (README, "hack/test.sh"). So are the simulated hosts and
# nodes (daemon/simhost, daemon/simnode): their OSTree sysroots and many daemons made simnode take 7 min under
# -race on 2 loaded cores, past its scenarios' deadlines; the agent and the daemon core they run are raced.
RACE_PACKAGES=${RACE_PACKAGES:-"./render/... ./registry/gc/... ./daemon ./daemon/agent"}
FUZZTIME=${FUZZTIME:-3s}

flags=() patterns=()
for a in "$@"; do
	case $a in
	./* | ../* | github.com/imagemode/*) patterns+=("$a") ;;
	*) flags+=("$a") ;;
	esac
done
fuzz=true
if [ ${#patterns[@]} -eq 0 ]; then patterns=(./...); else fuzz=false; fi
[ "$FUZZTIME" = 0 ] && fuzz=false
# shellcheck disable=SC2086
race_all=$(go list $RACE_PACKAGES)
selected=$(go list "${patterns[@]}")
race=$(comm -12 <(sort <<<"$race_all") <(sort <<<"$selected") | tr '\n' ' ')
plain=$(comm -13 <(sort <<<"$race_all") <(sort <<<"$selected") | tr '\n' ' ')

# -ldflags=-w: test binaries without DWARF link in about half the time (stack traces keep file:line).
common=(-count=1 -timeout 60m -ldflags=-w)
pids=() names=()
if [ -n "${race// /}" ]; then
	# shellcheck disable=SC2086
	go test -race "${common[@]}" "${flags[@]}" $race &
	pids+=($!) names+=("go test -race ($RACE_PACKAGES)")
fi
if [ -n "${plain// /}" ]; then
	# shellcheck disable=SC2086
	go test "${common[@]}" "${flags[@]}" $plain &
	pids+=($!) names+=("go test (the other packages)")
fi
failed=()
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || failed+=("${names[$i]}")
done
echo "tests done in $(( $(date +%s) - t0 ))s"
# Fuzzing follows the tests rather than running beside them: on 2 cores it starved the integration tests'
# waits past their deadlines.
if $fuzz; then
	FUZZTIME=$FUZZTIME FUZZ_PARALLEL=${FUZZ_PARALLEL:-1} hack/fuzz.sh 2>&1 | grep -v '^fuzz: elapsed' || failed+=("hack/fuzz.sh")
fi
if [ ${#failed[@]} -gt 0 ]; then
	printf 'failed: %s\n' "${failed[@]}"
	exit 1
fi
echo "test command done in $(( $(date +%s) - t0 ))s"
