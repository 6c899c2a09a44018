#!/usr/bin/env bash
# Runs every native Go fuzz target for a short fixed time (FUZZTIME, 10s each by default; hack/test.sh
# runs it with 3s, alongside the tests). Go fuzzes one target per run, so each package's instrumented test
# binary is built once (`go test -c -fuzz`) and run once per target, in the package's directory as
# `go test -fuzz` does.
# Targets are found by grepping the test files for `func Fuzz`, so a new target is picked up without
# editing this script. A crasher fails the run; it is written under the package's
# testdata/fuzz/<FuzzName>/, where it stays as a corpus entry once the bug is fixed. FUZZ_FILTER (a grep -E
# pattern on "<package dir> <target>") runs a subset. The seed corpora also run in the ordinary `go test`,
# without -fuzz.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source hack/env.sh
FUZZTIME=${FUZZTIME:-10s}
FUZZ_FILTER=${FUZZ_FILTER:-.}
t0=$(date +%s)
targets=$(grep -rHo --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+' . |
	sed -E 's#^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)$#\1 \2#' | sort -u | grep -E -- "$FUZZ_FILTER" || true)
if [ -z "$targets" ]; then echo "no fuzz targets match $FUZZ_FILTER"; exit 1; fi
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
fuzzcache="$(go env GOCACHE)/fuzz"
module=$(go list -m)
failed=()
built=""
while read -r dir target; do
	bin="$bins/${dir//\//_}.test"
	if [[ " $built " != *" $dir "* ]]; then
		built+=" $dir"
		if ! go test -c -ldflags=-w -fuzz "^${target}\$" -o "$bin" "./$dir"; then
			failed+=("./$dir (build)")
			continue
		fi
	fi
	[ -x "$bin" ] || continue
	echo "=== fuzz ./$dir $target ($FUZZTIME)"
	# -test.parallel bounds the fuzz workers (FUZZ_PARALLEL, 2 by default: CI machines have 2 cores; hack/test.sh
	# uses 1, the tests running alongside). The corpus cache is go test's own.
	if ! (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${target}\$" -test.fuzztime "$FUZZTIME" \
		-test.parallel "${FUZZ_PARALLEL:-2}" -test.fuzzcachedir "$fuzzcache/$module/$dir" -test.timeout 10m); then
		failed+=("./$dir $target")
	fi
done <<<"$targets"
echo "fuzzing done in $(( $(date +%s) - t0 ))s"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz target failed: %s\n' "${failed[@]}"
	exit 1
fi
