package buildah_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/testimages"
)

// TestVolumesSeenByRunNotCommitted: a bind volume (how entitlements reach RUN steps) is readable by RUN,
// read-only, and none of its files end up in the image.
func TestVolumesSeenByRunNotCommitted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg := localregistry.StartForTest(t)
	sys := reg.SystemContext()
	base, err := testimages.Push(ctx, sys, testimages.Options{}, reg.Ref("testimages/base", ":latest"))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("-----BEGIN ENTITLEMENT-----\nnot really\n")
	sum := sha256.Sum256(secret)
	ent := t.TempDir()
	if err := os.WriteFile(filepath.Join(ent, "entitlement.pem"), secret, 0o644); err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	containerfile := "FROM " + base + "\n" +
		"RUN mkdir -p /usr/share/test && sha256sum /etc/pki/entitlement/entitlement.pem | cut -d' ' -f1 > /usr/share/test/entitlement.sha256\n" +
		"RUN ! touch /etc/pki/entitlement/written 2>/dev/null\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := buildah.OpenStore(buildah.StoreOptions{Root: filepath.Join(t.TempDir(), "storage")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = buildah.CloseStore(store) })
	var log bytes.Buffer
	id, err := buildah.Build(ctx, store, buildah.BuildOptions{ContextDir: ctxDir, Containerfile: "Containerfile",
		Tag: "localhost/entitled:test", SystemContext: sys, Output: &log, Volumes: []string{ent + ":/etc/pki/entitlement:ro"}})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	root, err := store.MountImage(id, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = store.UnmountImage(id, true) }()
	got, err := os.ReadFile(filepath.Join(root, "usr/share/test/entitlement.sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != hex.EncodeToString(sum[:]) {
		t.Errorf("checksum in the image %q, want %x", got, sum)
	}
	for _, p := range []string{"etc/pki/entitlement/entitlement.pem", "etc/pki/entitlement/written"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("/%s is in the image (%v)", p, err)
		}
	}
}
