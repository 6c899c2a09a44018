// Package buildahtest builds and pushes images with the buildah library in tests: a Containerfile built in
// a private store that is closed when the test ends, pushed to a registry and returned by digest. The test
// binary's TestMain must call buildah.Reexec first.
package buildahtest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/types"

	"github.com/imagemode/imagemode/builder/buildah"
)

// BuildAndPush builds containerfile (its context is an empty directory) and pushes the image to dest
// (repository:tag), returning repository@digest. It fails the test on error, with the build's output.
func BuildAndPush(ctx context.Context, t testing.TB, sys *types.SystemContext, containerfile, dest string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := buildah.OpenStore(buildah.StoreOptions{Root: filepath.Join(t.TempDir(), "storage")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := buildah.CloseStore(store); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	var log bytes.Buffer
	id, err := buildah.Build(ctx, store, buildah.BuildOptions{ContextDir: dir, Containerfile: "Containerfile",
		Tag: "localhost/buildahtest:latest", SystemContext: sys, Output: &log})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	dgst, err := buildah.Push(ctx, store, id, dest, sys, nil)
	if err != nil {
		t.Fatal(err)
	}
	repo := dest
	if i := strings.LastIndex(dest, ":"); i > strings.LastIndex(dest, "/") {
		repo = dest[:i]
	}
	return repo + "@" + dgst.String()
}
