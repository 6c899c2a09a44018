package machineconfig

import (
	"slices"
	"testing"
)

func TestSupportedExtensionsAllHavePackages(t *testing.T) {
	t.Parallel()
	names := SupportedExtensions()
	if len(names) == 0 || !slices.IsSorted(names) {
		t.Fatalf("SupportedExtensions() = %q, want a non-empty sorted list", names)
	}
	for _, n := range names {
		if pkgs, ok := ExtensionPackages(n); !ok || len(pkgs) == 0 {
			t.Errorf("extension %q: ExtensionPackages = %q, %v; want packages", n, pkgs, ok)
		}
	}
	if _, ok := ExtensionPackages("no-such-extension"); ok {
		t.Error("ExtensionPackages(no-such-extension) reports supported")
	}
}
