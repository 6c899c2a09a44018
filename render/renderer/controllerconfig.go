package renderer

import (
	configv1 "github.com/openshift/api/config/v1"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// noCA stands in for certificate bundles the cluster does not have: the CRD wants non-empty bytes.
var noCA = []byte("\n")

// NewControllerConfig returns the smallest ControllerConfig the CRD accepts, naming the base OS image,
// the extensions image and the release version — what a cluster without OpenShift's operator needs so that
// pools render. Fields this project does not read get empty values of the right shape.
func NewControllerConfig(baseOSImage, extensionsImage, releaseVersion string) *mcfgv1.ControllerConfig {
	return &mcfgv1.ControllerConfig{
		ObjectMeta: metav1.ObjectMeta{
			Name:        wellknown.ControllerConfigName,
			Annotations: map[string]string{wellknown.ReleaseImageVersionAnnotation: releaseVersion},
		},
		Spec: mcfgv1.ControllerConfigSpec{
			ClusterDNSIP:                   "10.0.0.10",
			KubeAPIServerServingCAData:     noCA,
			RootCAData:                     noCA,
			CloudProviderCAData:            noCA,
			AdditionalTrustBundle:          noCA,
			Images:                         map[string]string{},
			BaseOSContainerImage:           baseOSImage,
			BaseOSExtensionsContainerImage: extensionsImage,
			ReleaseImage:                   releaseVersion,
			Proxy:                          &configv1.ProxyStatus{},
			Infra: &configv1.Infrastructure{
				TypeMeta: metav1.TypeMeta{APIVersion: configv1.GroupVersion.String(), Kind: "Infrastructure"},
				Status:   configv1.InfrastructureStatus{ControlPlaneTopology: configv1.HighlyAvailableTopologyMode},
			},
			DNS:        &configv1.DNS{TypeMeta: metav1.TypeMeta{APIVersion: configv1.GroupVersion.String(), Kind: "DNS"}},
			IPFamilies: mcfgv1.IPFamiliesIPv4,
			Network:    &mcfgv1.NetworkInfo{},
		},
	}
}
