package localenv

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
// the docs' custom pool layered-image (configs of roles worker and layered-image).
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
		Pool("master"),
		Pool("worker"),
		Pool("layered-image", "worker", "layered-image"),
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
