package scheme

import (
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	rolloutsv1alpha1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

func TestNewKnowsEveryKindTheProjectUses(t *testing.T) {
	t.Parallel()
	s := New()
	for _, obj := range []runtime.Object{
		&corev1.Node{}, &corev1.Secret{}, &batchv1.Job{},
		&mcfgv1.MachineConfig{}, &mcfgv1.MachineConfigPool{}, &mcfgv1.MachineOSConfig{}, &mcfgv1.MachineOSBuild{},
		&mcfgv1.MachineConfigNode{}, &mcfgv1.ControllerConfig{},
		&operatorv1.MachineConfiguration{}, &operatorv1alpha1.ImageContentSourcePolicy{},
		&configv1.ImageDigestMirrorSet{}, &configv1.ImageTagMirrorSet{}, &configv1.Image{},
		&rolloutsv1alpha1.RolloutPolicy{}, &rolloutsv1alpha1.RolloutPolicyList{},
	} {
		if _, _, err := s.ObjectKinds(obj); err != nil {
			t.Errorf("%T: %v", obj, err)
		}
	}
	if New() == s {
		t.Fatal("New returned a shared scheme")
	}
}
