package buildah_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/testimages"
)

func TestMain(m *testing.M) {
	if buildah.Reexec() {
		return
	}
	os.Exit(m.Run())
}

// TestTwoStageBuildPushAndInspect builds a two-stage Containerfile with RUN steps in both stages on the local
// test base, pushes it over TLS with basic auth, and reads the digest back with containers/image.
func TestTwoStageBuildPushAndInspect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := localregistry.StartForTest(t)
	sys := reg.SystemContext()

	base, err := testimages.Push(ctx, sys, testimages.Options{}, reg.Ref("testimages/base", ":latest"))
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	containerfile := "FROM " + base + " AS configs\n" +
		"RUN mkdir -p /etc/machine-config-daemon && echo rendered-worker-1 > /etc/machine-config-daemon/currentconfig && ostree container commit\n" +
		"\n" +
		"FROM configs AS final\n" +
		"RUN dnf install -y cowsay && dnf clean all && ostree container commit\n" +
		"RUN test \"$(cat /etc/machine-config-daemon/currentconfig)\" = rendered-worker-1 && cowsay > /usr/share/cowsay.out\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
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
	id, err := buildah.Build(ctx, store, buildah.BuildOptions{
		ContextDir: ctxDir, Containerfile: "Containerfile", Tag: "localhost/layered:test",
		SystemContext: sys, Labels: []string{"io.imagemode.test=two-stage"}, Layers: true, Output: &log,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "Installed: cowsay") {
		t.Errorf("build output does not show the RUN step installing cowsay:\n%s", log.String())
	}

	dest := reg.Ref("os/layered", ":v1")
	pushed, err := buildah.Push(ctx, store, id, dest, sys, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := registry.Inspect(ctx, sys, dest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != pushed {
		t.Errorf("registry digest %s, push reported %s", info.Digest, pushed)
	}
	if got := info.Labels["io.imagemode.test"]; got != "two-stage" {
		t.Errorf("label io.imagemode.test = %q, want two-stage", got)
	}
	if got := info.Labels[testimages.LabelVersion]; got != testimages.DefaultVersion {
		t.Errorf("base label %s = %q not inherited, want %s", testimages.LabelVersion, got, testimages.DefaultVersion)
	}
	byDigest, err := registry.Inspect(ctx, sys, reg.Ref("os/layered", "@"+pushed.String()))
	if err != nil || byDigest.Digest != pushed {
		t.Errorf("inspect by digest: %v, %v", byDigest, err)
	}

	// The registry really enforces auth: the same inspect without credentials is refused.
	anon := *sys
	anon.AuthFilePath = filepath.Join(t.TempDir(), "none.json")
	if _, err := registry.Inspect(ctx, &anon, dest); err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Errorf("anonymous inspect: got %v, want an authentication error", err)
	}
}

// TestDocsContainerfileStepsAndFailures runs Containerfile steps from the docs on the test base — the
// rpm-ostree install + systemctl enable example must work — and checks that a RUN that fails (unknown
// package) fails the build with dnf's own message and leaves no container behind.
func TestDocsContainerfileStepsAndFailures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := localregistry.StartForTest(t)
	sys := reg.SystemContext()
	base, err := testimages.Push(ctx, sys, testimages.Options{}, reg.Ref("testimages/base", ":latest"))
	if err != nil {
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
	build := func(t *testing.T, body string) (string, error) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("FROM "+base+"\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		_, err := buildah.Build(ctx, store, buildah.BuildOptions{ContextDir: dir, Containerfile: "Containerfile",
			Tag: "localhost/steps:test", SystemContext: sys, Output: &log})
		return log.String(), err
	}

	t.Run("rpm-ostree install and systemctl enable", func(t *testing.T) {
		log, err := build(t, "RUN rpm-ostree install rng-tools && systemctl enable rngd && rpm-ostree cleanup -m && ostree container commit\n"+
			"RUN test -L /etc/systemd/system/multi-user.target.wants/rngd.service && test -x /usr/sbin/rngd\n")
		if err != nil {
			t.Fatalf("build: %v\n%s", err, log)
		}
	})
	t.Run("unknown package fails the build", func(t *testing.T) {
		log, err := build(t, "RUN dnf install -y no-such-package && ostree container commit\n")
		if err == nil {
			t.Fatalf("build with an unknown package succeeded:\n%s", log)
		}
		if !strings.Contains(log, "No match for argument: no-such-package") {
			t.Errorf("build log lacks dnf's message:\n%s", log)
		}
		ctrs, err := store.Containers()
		if err != nil {
			t.Fatal(err)
		}
		if len(ctrs) != 0 {
			t.Errorf("%d working containers left after a failed build", len(ctrs))
		}
	})
	t.Run("a package from an unreachable URL fails like an offline dnf", func(t *testing.T) {
		log, err := build(t, "RUN dnf update -y https://example.com/files/systemd-252-46.el9_4.x86_64.rpm\n")
		if err == nil || !strings.Contains(log, "Curl error (6)") {
			t.Fatalf("want an offline failure, got %v:\n%s", err, log)
		}
	})
}
