// Package scheme builds the one runtime scheme every binary, client and test of the project uses: the core
// Kubernetes types plus every openshift type the project serves or reads — machineconfiguration/v1,
// operator/v1 (MachineConfiguration), operator/v1alpha1 (ImageContentSourcePolicy) and config/v1
// (ImageDigestMirrorSet, ImageTagMirrorSet, Image) — and the project's own rollouts.imagemode.io/v1alpha1
// (RolloutPolicy). It is a leaf: it imports only the API types.
package scheme

import (
	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	rolloutsv1alpha1 "github.com/imagemode/imagemode/api/rollouts/v1alpha1"
)

// New returns a new scheme holding the core Kubernetes types and every openshift type the project uses,
// plus the project's own RolloutPolicy.
// Each call returns a scheme of its own (nothing is shared or mutated between callers).
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(mcfgv1.Install(s))
	utilruntime.Must(operatorv1.Install(s))
	utilruntime.Must(operatorv1alpha1.Install(s))
	utilruntime.Must(configv1.Install(s))
	utilruntime.Must(rolloutsv1alpha1.AddToScheme(s))
	return s
}
