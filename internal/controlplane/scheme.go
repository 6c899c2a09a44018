package controlplane

import (
	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	operatorv1alpha1 "github.com/openshift/api/operator/v1alpha1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// NewScheme returns a scheme with the core Kubernetes types and every openshift type this project serves:
// machineconfiguration/v1, operator/v1 (MachineConfiguration), operator/v1alpha1
// (ImageContentSourcePolicy) and config/v1 (ImageDigestMirrorSet, ImageTagMirrorSet, Image).
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(mcfgv1.Install(s))
	utilruntime.Must(operatorv1.Install(s))
	utilruntime.Must(operatorv1alpha1.Install(s))
	utilruntime.Must(configv1.Install(s))
	return s
}
