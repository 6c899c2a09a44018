package local

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/render/disruption"
	"github.com/imagemode/imagemode/render/renderer"
)

// RoleLabel selects MachineConfigs into pools.
const RoleLabel = "machineconfiguration.openshift.io/role"

// NodeRoleLabelPrefix + pool name is the node label a pool's nodeSelector matches.
const NodeRoleLabelPrefix = "node-role.kubernetes.io/"

// Pool returns a MachineConfigPool as an installer or the docs create it: configs with any of roles, nodes
// labelled node-role.kubernetes.io/<name>.
func Pool(name string, roles ...string) *mcfgv1.MachineConfigPool {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{RoleLabel: name}}
	if len(roles) > 0 {
		sel = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: RoleLabel, Operator: metav1.LabelSelectorOpIn, Values: roles},
		}}
	}
	return &mcfgv1.MachineConfigPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: mcfgv1.MachineConfigPoolSpec{
			MachineConfigSelector: sel,
			NodeSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{NodeRoleLabelPrefix + name: ""}},
		},
	}
}

// ClusterObjects returns what a cluster has before a user applies the docs' MachineOSConfig: the
// machine-config namespace, the global pull secret copy (dockerconfigjson), the builder's push secret (a
// legacy dockercfg, as OpenShift's builder service-account secrets are), the master and worker pools and
// the docs' custom pool layered-image (configs of roles worker and layered-image), the ControllerConfig
// naming the test base image as the base OS image, base configs for master and worker, and
// MachineConfiguration/cluster. The base image must have been pushed.
func (e *Env) ClusterObjects() []client.Object {
	host := e.Registry.Host
	auth := base64.StdEncoding.EncodeToString([]byte(e.Registry.Username + ":" + e.Registry.Password))
	dockercfg, _ := json.Marshal(map[string]any{host: map[string]string{"auth": auth}})
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: BasePullSecretName, Namespace: Namespace},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: e.Registry.DockerConfigJSON()},
		},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: PushSecretName, Namespace: Namespace},
			Type:       corev1.SecretTypeDockercfg,
			Data:       map[string][]byte{corev1.DockerConfigKey: dockercfg},
		},
		builtIn(Pool("master")),
		builtIn(Pool("worker")),
		Pool("layered-image", "worker", "layered-image"),
		e.controllerConfig(),
		baseConfig("00-master", "master"),
		baseConfig("00-worker", "worker"),
		disruption.NewClusterMachineConfiguration(),
	}
}

// ReleaseVersion is the release version the local cluster's ControllerConfig announces.
const ReleaseVersion = "4.19.0-imagemode-local"

// builtIn marks a pool as one of the cluster's built-in pools (master, worker), which receive the generated
// registries config.
func builtIn(p *mcfgv1.MachineConfigPool) *mcfgv1.MachineConfigPool {
	p.Labels = map[string]string{"machineconfiguration.openshift.io/mco-built-in": ""}
	return p
}

// baseConfig is the base MachineConfig of a role, as an installer creates one: it records the role on the
// node, so every pool has at least one config to render.
func baseConfig(name, role string) *mcfgv1.MachineConfig {
	ign := fmt.Sprintf(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/imagemode/role","mode":420,"contents":{"source":"data:,%s%%0A"}}]}}`, role)
	return &mcfgv1.MachineConfig{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{RoleLabel: role}},
		Spec:       mcfgv1.MachineConfigSpec{Config: runtime.RawExtension{Raw: []byte(ign)}},
	}
}

// CreateClusterObjects creates ClusterObjects; objects that already exist are left as they are.
func (e *Env) CreateClusterObjects(ctx context.Context) error {
	c := e.ControlPlane.Client
	for _, obj := range e.ClusterObjects() {
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", obj, client.ObjectKeyFromObject(obj), err)
		}
	}
	return nil
}

// controllerConfig names the test base image as the base OS image and carries the registry's CA, as a
// cluster's image.config additionalTrustedCA does.
func (e *Env) controllerConfig() *mcfgv1.ControllerConfig {
	cc := renderer.NewControllerConfig(e.BaseImage, "", ReleaseVersion)
	if ca, err := os.ReadFile(filepath.Join(e.Registry.CertDir, "ca.crt")); err == nil {
		cc.Spec.ImageRegistryBundleUserData = []mcfgv1.ImageRegistryBundle{
			{File: strings.Replace(e.Registry.Host, ":", "..", 1), Data: ca}}
	}
	return cc
}
