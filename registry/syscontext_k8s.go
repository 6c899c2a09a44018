package registry

import (
	"context"
	"fmt"
	"net/url"
	"os"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"go.podman.io/image/v5/types"
	"golang.org/x/net/http/httpproxy"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/registry/pullsecret"
)

// RegistryCAs returns a ControllerConfig's registry CA bundles (imageRegistryBundleData, then
// imageRegistryBundleUserData) by file name, host..port; nil cc gives none.
func RegistryCAs(cc *mcfgv1.ControllerConfig) map[string][]byte {
	out := map[string][]byte{}
	if cc == nil {
		return out
	}
	for _, b := range append(append([]mcfgv1.ImageRegistryBundle{}, cc.Spec.ImageRegistryBundleData...), cc.Spec.ImageRegistryBundleUserData...) {
		out[b.File] = append(out[b.File], b.Data...)
	}
	return out
}

// ProxyFunc returns the cluster proxy of a ControllerConfig (spec.proxy: httpsProxy, httpProxy, noProxy) as
// a SystemContext.DockerProxy function, nil when cc sets no proxy.
func ProxyFunc(cc *mcfgv1.ControllerConfig) func(*url.URL) (*url.URL, error) {
	if cc == nil || cc.Spec.Proxy == nil || (cc.Spec.Proxy.HTTPSProxy == "" && cc.Spec.Proxy.HTTPProxy == "") {
		return nil
	}
	cfg := httpproxy.Config{HTTPProxy: cc.Spec.Proxy.HTTPProxy, HTTPSProxy: cc.Spec.Proxy.HTTPSProxy, NoProxy: cc.Spec.Proxy.NoProxy}
	return cfg.ProxyFunc()
}

// ClusterAuth names where a SystemContext's credentials and trust come from in the cluster.
type ClusterAuth struct {
	// Namespace holds the secret.
	Namespace string
	// SecretName is a dockercfg or dockerconfigjson Secret (a MachineOSConfig's push secret).
	SecretName string
	// ControllerConfigName names the ControllerConfig whose registry CAs and proxy are used; a missing
	// ControllerConfig (or an empty name) means the system's CAs and no proxy.
	ControllerConfigName string
}

// NewClusterSystemContext reads the secret and the ControllerConfig named by a, writes the credentials and
// CAs into a new temporary directory and returns a SystemContext using them (with the cluster proxy) and a
// function removing the directory. Errors name the secret, never its content.
func NewClusterSystemContext(ctx context.Context, r client.Reader, a ClusterAuth) (*types.SystemContext, func(), error) {
	if a.SecretName == "" {
		return nil, nil, fmt.Errorf("no registry secret named (namespace %s)", a.Namespace)
	}
	secret := &corev1.Secret{}
	if err := r.Get(ctx, ktypes.NamespacedName{Namespace: a.Namespace, Name: a.SecretName}, secret); err != nil {
		return nil, nil, fmt.Errorf("reading registry secret %s/%s: %w", a.Namespace, a.SecretName, err)
	}
	creds, err := pullsecret.FromSecret(secret)
	if err != nil {
		return nil, nil, err
	}
	var cc *mcfgv1.ControllerConfig
	if a.ControllerConfigName != "" {
		cc = &mcfgv1.ControllerConfig{}
		if err := r.Get(ctx, ktypes.NamespacedName{Name: a.ControllerConfigName}, cc); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, nil, fmt.Errorf("reading controllerconfig %s: %w", a.ControllerConfigName, err)
			}
			cc = nil
		}
	}
	dir, err := os.MkdirTemp("", "imagemode-registry-")
	if err != nil {
		return nil, nil, fmt.Errorf("creating registry credentials directory: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	sys, err := NewSystemContext(dir, creds.JSON(), RegistryCAs(cc))
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	sys.DockerProxy = ProxyFunc(cc)
	return sys, cleanup, nil
}
