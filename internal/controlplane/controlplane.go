package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/textlogger"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/imagemode/imagemode/internal/childproc"
	"github.com/imagemode/imagemode/internal/scheme"
	"github.com/imagemode/imagemode/manifests"
)

// Options configures a control plane.
type Options struct {
	// ControllerManager also starts a real kube-controller-manager (Jobs, garbage collection, namespaces,
	// service accounts). It is started after the CRDs are installed so its garbage collector sees them at once.
	ControllerManager bool
	// WorkDir holds logs and kubeconfigs; a temporary directory when empty.
	WorkDir string
	// Output receives the control-plane processes' logs in addition to the log files; nil keeps them quiet.
	Output io.Writer
	// Kubelets prepares the control plane for real kubelets (StartNode): the API server reaches a kubelet at
	// its node's InternalIP with a client certificate whose CA is KubeletClientCAFile (for logs, exec), and
	// kube-controller-manager (if started) also runs node-lifecycle-controller, which lifts the not-ready
	// taint a kubelet registers its node with, and daemonset-controller. Leave it off with simulated nodes: that controller would
	// taint them (no kubelet renews their leases) and evict their pods. Pods on those kubelets get service
	// account tokens (the ServiceAccount admission plugin is on) and reach the API server with client-go's
	// in-cluster configuration from the host network: it listens on port 443 of a loopback address that is
	// the "kubernetes" Service's ClusterIP (see serveInCluster).
	Kubelets bool
}

// ControlPlane is a running etcd + kube-apiserver (+ kube-controller-manager) with this project's CRDs.
type ControlPlane struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Scheme knows every type this project serves (see NewScheme).
	Scheme *runtime.Scheme
	// Client is a controller-runtime client using Scheme, talking straight to the API server (no cache).
	Client client.Client
	// Kube is a typed client-go clientset.
	Kube kubernetes.Interface
	// KubeconfigPath is an admin kubeconfig file, for kubectl and for child processes.
	KubeconfigPath string
	// WorkDir holds kubeconfigs and logs.
	WorkDir string
	// KubeletClientCAFile is the CA of the API server's kubelet client certificate (Options.Kubelets only):
	// kubelets authenticate the API server with it (NodeOptions.KubeletClientCAFile).
	KubeletClientCAFile string

	env        *envtest.Environment
	assets     string
	kcm        *childproc.Process
	ownWorkDir bool
}

// setLoggerOnce guards the one SetLogger call of New.
var setLoggerOnce sync.Once

// New starts etcd and kube-apiserver, installs the embedded CRDs and waits until they are established,
// then starts kube-controller-manager if asked. Call Stop when done.
func New(ctx context.Context, opts Options) (*ControlPlane, error) {
	// envtest and the controllers log through controller-runtime's global logger, which keeps the first sink
	// it is given: quiet by default, to stderr with IMAGEMODE_TEST_LOGS=1 (for debugging a test), kept for
	// CapturedLogs when CaptureLogs was called first. It is set once per process: SetLogger is not safe to
	// call concurrently (tests start control planes in parallel).
	setLoggerOnce.Do(func() {
		capture := captured.enabled()
		switch {
		case capture && os.Getenv("IMAGEMODE_TEST_LOGS") != "":
			ctrllog.SetLogger(textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(io.MultiWriter(os.Stderr, &captured)))))
		case capture:
			ctrllog.SetLogger(textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(&captured))))
		case os.Getenv("IMAGEMODE_TEST_LOGS") != "":
			ctrllog.SetLogger(textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(os.Stderr))))
		default:
			ctrllog.SetLogger(logr.Discard())
		}
	})

	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	crds, err := manifests.CRDs()
	if err != nil {
		return nil, err
	}
	cp := &ControlPlane{Scheme: scheme.New(), assets: assets, WorkDir: opts.WorkDir}
	if cp.WorkDir == "" {
		if cp.WorkDir, err = os.MkdirTemp("", "imagemode-controlplane-"); err != nil {
			return nil, fmt.Errorf("creating work directory: %w", err)
		}
		cp.ownWorkDir = true
	}
	cp.env = &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		Scheme:                   cp.Scheme,
		CRDs:                     crds,
		CRDInstallOptions:        envtest.CRDInstallOptions{MaxTime: time.Minute},
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	// The API server's certificates live in a directory of ours, so that a restart (RestartAPIServer) keeps
	// its serving CA and service-account keys: clients and kube-controller-manager reconnect as they would to
	// a real one.
	apiCertDir := filepath.Join(cp.WorkDir, "kube-apiserver")
	if err := os.MkdirAll(apiCertDir, 0o700); err != nil {
		cp.cleanupAfterFailedStart()
		return nil, err
	}
	cp.env.ControlPlane.APIServer = &envtest.APIServer{CertDir: apiCertDir}
	// etcd's data directory is ours too, so that RestartEtcd keeps the cluster's state.
	cp.env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(cp.WorkDir, "etcd")}
	if err := os.MkdirAll(cp.env.ControlPlane.Etcd.DataDir, 0o700); err != nil {
		cp.cleanupAfterFailedStart()
		return nil, err
	}
	if opts.Output != nil {
		cp.env.ControlPlane.Etcd.Out, cp.env.ControlPlane.Etcd.Err = opts.Output, opts.Output
		cp.env.ControlPlane.APIServer.Out, cp.env.ControlPlane.APIServer.Err = opts.Output, opts.Output
	}
	if opts.Kubelets {
		if err := cp.configureForKubelets(); err != nil {
			cp.cleanupAfterFailedStart()
			return nil, err
		}
	}
	if cp.Config, err = cp.env.Start(); err != nil {
		cp.cleanupAfterFailedStart()
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	if err := cp.buildClients(); err != nil {
		cp.cleanupAfterFailedStart()
		return nil, err
	}
	if cp.KubeconfigPath, err = cp.writeKubeconfig("admin", []string{"system:masters"}); err != nil {
		cp.cleanupAfterFailedStart()
		return nil, err
	}
	if opts.ControllerManager {
		if err := cp.startControllerManager(ctx, opts.Output, opts.Kubelets); err != nil {
			cp.cleanupAfterFailedStart()
			return nil, err
		}
	}
	return cp, nil
}

func (cp *ControlPlane) cleanupAfterFailedStart() {
	_ = cp.Stop()
}

func (cp *ControlPlane) buildClients() error {
	var err error
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: cp.Scheme}); err != nil {
		return fmt.Errorf("creating controller-runtime client: %w", err)
	}
	if cp.Kube, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return fmt.Errorf("creating clientset: %w", err)
	}
	return nil
}

// writeKubeconfig provisions a user with the given groups and writes a kubeconfig for it under WorkDir.
func (cp *ControlPlane) writeKubeconfig(name string, groups []string) (string, error) {
	user, err := cp.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return "", fmt.Errorf("provisioning user %q: %w", name, err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("rendering kubeconfig for %q: %w", name, err)
	}
	path := filepath.Join(cp.WorkDir, name+".kubeconfig")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return "", fmt.Errorf("writing kubeconfig: %w", err)
	}
	return path, nil
}

// UserConfig provisions a client-certificate user (name, groups) and returns its client configuration,
// for tests that check what a component's identity may and may not do under RBAC.
func (cp *ControlPlane) UserConfig(name string, groups ...string) (*rest.Config, error) {
	user, err := cp.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("provisioning user %q: %w", name, err)
	}
	return user.Config(), nil
}

// StopAPIServer kills kube-apiserver alone (etcd and kube-controller-manager keep running), as a crash or
// outage of the API server: a graceful stop with clients connected takes over a minute. StartAPIServer
// starts it again on the same etcd, port and certificates.
func (cp *ControlPlane) StopAPIServer() error {
	api := cp.env.ControlPlane.APIServer
	pid, err := childWithArg("--secure-port=" + api.SecureServing.Port)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing kube-apiserver (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for { // reaped by envtest's waiter
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver (pid %d) did not go away", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The process is gone: Stop only clears envtest's state, once its waiter saw the exit (before that it
	// signals the dead process and fails).
	for {
		err := api.Stop()
		if err == nil || !errors.Is(err, os.ErrProcessDone) && !strings.Contains(err.Error(), "no such process") {
			return err
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childWithArg returns the pid of this process's child whose command line holds arg.
func childWithArg(arg string) (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	me := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != me {
			continue
		}
		cmdline, err := os.ReadFile(d + "/cmdline")
		if err == nil && slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
			return strconv.Atoi(filepath.Base(d))
		}
	}
	return 0, fmt.Errorf("no child process with %s", arg)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer and waits until it is healthy.
func (cp *ControlPlane) StartAPIServer() error {
	return cp.env.ControlPlane.APIServer.Start()
}

// RestartEtcd stops etcd under the running API server and starts it again on the same address and data,
// after down (the outage).
func (cp *ControlPlane) RestartEtcd(down time.Duration) error {
	etcd := cp.env.ControlPlane.Etcd
	if err := etcd.Stop(); err != nil {
		return fmt.Errorf("stopping etcd: %w", err)
	}
	time.Sleep(down)
	if err := etcd.Start(); err != nil {
		return fmt.Errorf("starting etcd again: %w", err)
	}
	return nil
}

// Stop stops kube-controller-manager, then kube-apiserver, then etcd (in that order, so the API server does
// not spend its shutdown retrying a dead etcd), and removes the work directory if New created it.
func (cp *ControlPlane) Stop() error {
	var errs []error
	if cp.kcm != nil {
		errs = append(errs, cp.kcm.Stop(10*time.Second))
		cp.kcm = nil
	}
	if cp.env != nil {
		errs = append(errs, cp.env.Stop())
		cp.env = nil
	}
	if cp.ownWorkDir {
		errs = append(errs, os.RemoveAll(cp.WorkDir))
		cp.ownWorkDir = false
	}
	return errors.Join(errs...)
}
