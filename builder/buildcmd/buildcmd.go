// Package buildcmd is the program a build pod runs (`imagemode-builder build`): it reads the Containerfile
// and the build context archive the build service composed (package layering) and mounted, writes the
// context out, builds in-process with the buildah library into a store that may persist between builds (the
// layer cache), pushes to the build's tag with the push credentials, and records the pushed manifest digest
// in the ConfigMap digest-<build>, which the build service reads. Registry CAs come as a certs.d tree (one
// directory per host) built from the ControllerConfig's image registry bundles. It tees its output into the
// ConfigMap build-log-<build> (LogWriter), owned by the build, so the last attempt's log outlives the pod.
package buildcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/spf13/cobra"
	imagetypes "go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/imagemode/imagemode/builder/buildah"
	"github.com/imagemode/imagemode/builder/jobs"
	"github.com/imagemode/imagemode/layering"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry"
)

// Options are the build command's inputs.
type Options struct {
	Containerfile, ContextArchive    string // mounted ConfigMap files
	RenderedConfig, BaseImage        string // what is built, for the log and the local tag
	BasePullAuthFile, PushAuthFile   string // mounted dockerconfigjson files
	Tag                              string // where to push
	StorageRoot                      string // image store (the layer cache when it persists)
	RegistryCertsDir                 string // mounted registry-certs ConfigMap (host..port keys), optional
	DigestConfigMap, DigestNamespace string
	DigestLabels                     string
	WorkDir                          string // scratch space; a temporary directory when empty
	// RunMounts are "dir:path" pairs: the files of dir (a mounted ConfigMap or Secret) are seen by every
	// RUN step at path, and never committed to the image (the entitlement objects).
	RunMounts []string
	// BuildLogConfigMap, when set, is the ConfigMap (in DigestNamespace, with DigestLabels) the output is
	// teed into, owned by the MachineOSBuild MachineOSBuild/MachineOSBuildUID, for attempt (pod) PodName.
	BuildLogConfigMap, MachineOSBuild, MachineOSBuildUID, PodName string
}

// NewCommand returns `build`.
func NewCommand() *cobra.Command {
	var o Options
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build a layered OS image in-process, push it and record its digest (the build pod's program)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Containerfile, "containerfile", "", "the composed Containerfile")
	f.StringVar(&o.ContextArchive, "context-archive", "", "the composed build context (gzipped tar, without the Containerfile)")
	f.StringVar(&o.RenderedConfig, "rendered-config", "", "name of the rendered MachineConfig built (for the log)")
	f.StringVar(&o.BaseImage, "base-image", "", "the base OS image (for the log)")
	f.StringVar(&o.BasePullAuthFile, "base-pull-authfile", "", "credentials for pulling the base image")
	f.StringVar(&o.PushAuthFile, "push-authfile", "", "credentials for pushing the built image")
	f.StringVar(&o.Tag, "tag", "", "image reference to push to")
	f.StringVar(&o.StorageRoot, "storage-root", "", "image store directory")
	f.StringVar(&o.RegistryCertsDir, "registry-certs", "", "directory of registry CA bundles named host..port")
	f.StringVar(&o.DigestConfigMap, "digest-configmap", "", "ConfigMap to record the pushed digest in")
	f.StringVar(&o.DigestNamespace, "digest-configmap-namespace", "", "namespace of the digest ConfigMap")
	f.StringVar(&o.DigestLabels, "digest-configmap-labels", "", "labels of the digest ConfigMap (k=v,...)")
	f.StringArrayVar(&o.RunMounts, "run-mount", nil, "dir:path: the files of dir are seen by RUN steps at path, not committed (repeatable)")
	f.StringVar(&o.BuildLogConfigMap, "build-log-configmap", "", "ConfigMap to keep the build's log in (in the digest ConfigMap's namespace)")
	f.StringVar(&o.MachineOSBuild, "machineosbuild", "", "the MachineOSBuild being built (owner of the build-log ConfigMap)")
	f.StringVar(&o.MachineOSBuildUID, "machineosbuild-uid", "", "the MachineOSBuild's UID")
	f.StringVar(&o.PodName, "pod-name", os.Getenv("HOSTNAME"), "this attempt's pod name, recorded with the log")
	for _, req := range []string{"containerfile", "context-archive", "base-pull-authfile", "push-authfile", "tag", "storage-root", "digest-configmap", "digest-configmap-namespace"} {
		_ = cmd.MarkFlagRequired(req)
	}
	return cmd
}

// Run builds, pushes and records the digest. With o.BuildLogConfigMap, its output (and its error, if any) is
// also kept in that ConfigMap.
func Run(ctx context.Context, o Options, out io.Writer) (err error) {
	if o.BuildLogConfigMap == "" {
		return run(ctx, o, out)
	}
	lw, err := newBuildLog(o, out)
	if err != nil {
		fmt.Fprintf(out, "warning: the build log will not be kept: %v\n", err)
		return run(ctx, o, out)
	}
	lw.Start(ctx)
	defer func() {
		if err != nil {
			fmt.Fprintf(lw, "error: %v\n", err)
		}
		_ = lw.Close() // a failure was already reported by the writer
	}()
	return run(ctx, o, io.MultiWriter(out, lw))
}

// newBuildLog returns the writer of the build-log ConfigMap named by o.
func newBuildLog(o Options, warnings io.Writer) (*LogWriter, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("loading the API server configuration: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	lbls, err := jobs.ParseLabels(o.DigestLabels)
	if err != nil {
		return nil, err
	}
	var owner *metav1.OwnerReference
	if o.MachineOSBuild != "" && o.MachineOSBuildUID != "" {
		owner = &metav1.OwnerReference{APIVersion: mcfgv1.GroupVersion.String(), Kind: "MachineOSBuild",
			Name: o.MachineOSBuild, UID: types.UID(o.MachineOSBuildUID)}
	}
	return NewLogWriter(kube.CoreV1().ConfigMaps(o.DigestNamespace), LogOptions{Namespace: o.DigestNamespace,
		Name: o.BuildLogConfigMap, Pod: o.PodName, Owner: owner, Labels: lbls, Warnings: warnings}), nil
}

func run(ctx context.Context, o Options, out io.Writer) error {
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(out, "%s %s\n", time.Since(start).Round(time.Millisecond), fmt.Sprintf(format, args...))
	}
	containerfile, err := os.ReadFile(o.Containerfile)
	if err != nil {
		return fmt.Errorf("reading Containerfile: %w", err)
	}
	archive, err := os.ReadFile(o.ContextArchive)
	if err != nil {
		return fmt.Errorf("reading the build context: %w", err)
	}
	files, err := layering.ReadArchive(archive)
	if err != nil {
		return err
	}
	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "imagemode-build-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	ctxDir := filepath.Join(work, "context")
	if err := (&layering.BuildContext{Containerfile: containerfile, Files: files}).WriteDir(ctxDir); err != nil {
		return err
	}
	certsD, err := certsDir(o.RegistryCertsDir, filepath.Join(work, "certs.d"))
	if err != nil {
		return err
	}
	volumes, err := runMountVolumes(o.RunMounts, filepath.Join(work, "run-mounts"))
	if err != nil {
		return err
	}
	logf("building %s from rendered config %s (base %s)", o.Tag, o.RenderedConfig, o.BaseImage)

	// The blob info cache (which registry blobs are which local layers, compressed) persists with the layer
	// cache, so a push skips the layers the registry already has instead of compressing them again.
	blobCache := filepath.Join(o.StorageRoot, "imagemode-blob-info-cache")
	// One build at a time uses the layer cache: builds running at the same time on the node (each with its own
	// run root) would otherwise unmount and remove each other's layers. A build that finds the cache busy
	// builds without it; the lock goes with the process, even when it is killed.
	unlock, err := lockCache(o.StorageRoot)
	var store storage.Store
	if err == nil {
		defer unlock()
		store, err = buildah.OpenStore(buildah.StoreOptions{Root: o.StorageRoot, RunRoot: filepath.Join(work, "run")})
	}
	if err == nil {
		if err := os.MkdirAll(blobCache, 0o700); err != nil {
			blobCache = work
		}
	} else {
		blobCache = work
		// The layer cache is an optimization: a cache left unusable (e.g. by a build killed mid-way) must not
		// fail the build. Build with a private store instead, just without the cached layers.
		logf("warning: the layer cache at %s cannot be used (%v); building without it", o.StorageRoot, err)
		if store, err = buildah.OpenStore(buildah.StoreOptions{Root: filepath.Join(work, "store"), RunRoot: filepath.Join(work, "run-private")}); err != nil {
			return err
		}
	}
	defer func() {
		if err := buildah.CloseStore(store); err != nil {
			logf("closing image store: %v", err)
		}
	}()
	logf("opened the image store")
	pull := &imagetypes.SystemContext{AuthFilePath: o.BasePullAuthFile, DockerPerHostCertDirPath: certsD, BlobInfoCacheDir: blobCache}
	id, err := buildah.Build(ctx, store, buildah.BuildOptions{
		ContextDir: ctxDir, Containerfile: "Containerfile", Tag: "localhost/imagemode-build:" + localTag(o),
		SystemContext: pull, Layers: true, Output: out, WorkDir: work, Volumes: volumes,
	})
	if err != nil {
		return err
	}
	logf("built image %s; pushing", id[:12])
	push := &imagetypes.SystemContext{AuthFilePath: o.PushAuthFile, DockerPerHostCertDirPath: certsD, BlobInfoCacheDir: blobCache}
	digest, err := buildah.Push(ctx, store, id, o.Tag, push, out)
	if err != nil {
		return err
	}
	logf("pushed %s@%s", o.Tag, digest)
	if err := recordDigest(ctx, o, digest.String()); err != nil {
		return err
	}
	logf("recorded the digest in configmap %s/%s", o.DigestNamespace, o.DigestConfigMap)
	return nil
}

// localTag names the built image in the local store: the rendered config's name (a valid tag), or "latest".
func localTag(o Options) string {
	if o.RenderedConfig == "" {
		return "latest"
	}
	return o.RenderedConfig
}

// certsDir turns a mounted registry-certs ConfigMap (keys host..port, the ControllerConfig convention) into
// a certs.d tree. It returns "" when there is none.
func certsDir(src, dst string) (string, error) {
	if src == "" {
		return "", nil
	}
	entries, err := os.ReadDir(src)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading registry certificates: %w", err)
	}
	cas := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue // the kubelet's projection keeps its own ..data entries here
		}
		if cas[e.Name()], err = os.ReadFile(filepath.Join(src, e.Name())); err != nil {
			return "", fmt.Errorf("reading registry certificate %s: %w", e.Name(), err)
		}
	}
	if err := registry.CertsDir(dst, cas); err != nil {
		return "", err
	}
	return dst, nil
}

// recordDigest creates or updates the digest ConfigMap.
func recordDigest(ctx context.Context, o Options, digest string) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the API server configuration: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	lbls, err := jobs.ParseLabels(o.DigestLabels)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: o.DigestConfigMap, Namespace: o.DigestNamespace, Labels: lbls},
		Data: map[string]string{osbuild.DigestKey: digest}}
	cms := kube.CoreV1().ConfigMaps(o.DigestNamespace)
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("recording the digest in configmap %s/%s: %w", o.DigestNamespace, o.DigestConfigMap, err)
		}
		existing, err := cms.Get(ctx, o.DigestConfigMap, metav1.GetOptions{})
		if err != nil {
			return err
		}
		existing.Data, existing.Labels = cm.Data, cm.Labels
		if _, err := cms.Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating the digest in configmap %s/%s: %w", o.DigestNamespace, o.DigestConfigMap, err)
		}
	}
	return nil
}

// errCacheBusy reports a layer cache another build is using.
var errCacheBusy = errors.New("another build is using it")

// lockCache takes the layer cache at root for this process (an exclusive flock on a file in it, released
// when the process ends however it ends), or returns errCacheBusy at once.
func lockCache(root string) (func(), error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(root, ".imagemode-build.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errCacheBusy
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
