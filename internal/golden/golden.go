// Package golden compares test output with golden files under a package's testdata/ folder; `go test
// ./pkg/ -update` rewrites them. For tests only.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Update is the -update flag: rewrite golden files (and other snapshots a test keeps) instead of failing.
var Update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Check fails t unless got equals testdata/name; with -update it writes got there first.
func Check[T string | []byte](t testing.TB, name string, got T) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update creates it)", err, t.Name())
	}
	if string(want) != string(got) {
		t.Errorf("%s differs (go test -run %s -update rewrites it)\n--- want\n%s\n--- got\n%s", path, t.Name(), want, got)
	}
}
