package controlplane

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/imagemode/imagemode/internal/childproc"
)

// kcmControllers are the kube-controller-manager controllers the project relies on. node-lifecycle is left
// out on purpose: without kubelets it would taint every Node NotReady and evict the pods bound to it (it is
// added for control planes with real kubelets, Options.Kubelets, with daemonset-controller: a DaemonSet's
// pods only make sense where a kubelet runs them).
var kcmControllers = []string{
	"job-controller", "garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
	"serviceaccount-token-controller", "ttl-after-finished-controller", "pod-garbage-collector-controller",
	"replicaset-controller", "deployment-controller", "root-ca-certificate-publisher-controller",
	"cronjob-controller", "disruption-controller",
}

// startControllerManager starts kube-controller-manager and waits until its service-account controller
// has created the default ServiceAccount, which shows its controllers are running.
func (cp *ControlPlane) startControllerManager(ctx context.Context, out io.Writer, kubelets bool) error {
	kubeconfig, err := cp.writeKubeconfig("kube-controller-manager", []string{"system:masters"})
	if err != nil {
		return err
	}
	caPath := filepath.Join(cp.WorkDir, "apiserver-ca.crt")
	if err := os.WriteFile(caPath, cp.Config.CAData, 0o644); err != nil {
		return fmt.Errorf("writing API server CA: %w", err)
	}
	certDir := cp.env.ControlPlane.APIServer.CertDir
	controllers := kcmControllers
	if kubelets {
		controllers = append([]string{"node-lifecycle-controller", "daemonset-controller"}, kcmControllers...)
	}
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
		"--service-account-private-key-file=" + filepath.Join(certDir, "sa-signer.key"),
		"--root-ca-file=" + caPath,
		"--use-service-account-credentials=false",
		"--controllers=" + strings.Join(controllers, ","),
	}
	started := time.Now()
	cp.kcm, err = childproc.Start(filepath.Join(cp.assets, "kube-controller-manager"), args,
		filepath.Join(cp.WorkDir, "kube-controller-manager.log"), out)
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-cp.kcm.Exited():
			return false, fmt.Errorf("kube-controller-manager exited: %v (log: %s)", cp.kcm.ExitErr(),
				filepath.Join(cp.WorkDir, "kube-controller-manager.log"))
		default:
		}
		_, err := cp.Kube.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("waiting for kube-controller-manager (started %s ago): %w", time.Since(started).Round(time.Millisecond), err)
	}
	return nil
}
