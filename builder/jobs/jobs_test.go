package jobs

import (
	"strings"
	"testing"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
)

func request() *Request {
	return &Request{
		MachineOSConfig: &mcfgv1.MachineOSConfig{ObjectMeta: metav1.ObjectMeta{Name: "layered-image"}},
		MachineOSBuild: &mcfgv1.MachineOSBuild{ObjectMeta: metav1.ObjectMeta{Name: "layered-image-0123"},
			Spec: mcfgv1.MachineOSBuildSpec{MachineConfig: mcfgv1.MachineConfigReference{Name: "rendered-layered-image-abc"},
				RenderedImagePushSpec: "127.0.0.1:5000/os/image:layered-image-0123"}},
		Pool:          &mcfgv1.MachineConfigPool{ObjectMeta: metav1.ObjectMeta{Name: "layered-image"}},
		Rendered:      &mcfgv1.MachineConfig{ObjectMeta: metav1.ObjectMeta{Name: "rendered-layered-image-abc"}},
		Containerfile: []byte("FROM base AS configs\nFROM configs AS final\n"), Context: []byte("context"),
		BasePullSecret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "global-pull-secret-copy"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"r.io":{"auth":"dTpw"}}}`)}},
		PushSecret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "builder-dockercfg-x"}, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{corev1.DockerConfigKey: []byte(`{"r.io":{"auth":"dTpw"}}`)}},
	}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	r := request()
	r.MachineOSBuild.UID = "mosb-uid"
	objs, err := Build(r, Options{Namespace: wellknown.MCONamespace, Image: "quay.io/imagemode/imagemode:v1", CacheHostPath: "/var/lib/imagemode/cache"})
	require.NoError(t, err)
	job := objs.Job
	assert.Equal(t, "build-layered-image-0123", job.Name)
	assert.Equal(t, wellknown.MCONamespace, job.Namespace)
	assert.Equal(t, int32(3), *job.Spec.BackoffLimit, "four attempts")
	assert.Equal(t, corev1.RestartPolicyNever, job.Spec.Template.Spec.RestartPolicy)
	for _, k := range []string{wellknown.EphemeralBuildObjectLabel, wellknown.OnClusterLayeringLabel} {
		assert.Contains(t, job.Labels, k)
	}
	assert.Equal(t, "rendered-layered-image-abc", job.Labels[wellknown.RenderedMachineConfigLabel])
	assert.Equal(t, "layered-image-0123", job.Labels[wellknown.MachineOSBuildLabel])
	args := strings.Join(job.Spec.Template.Spec.Containers[0].Args, " ")
	assert.Contains(t, args, "--tag=127.0.0.1:5000/os/image:layered-image-0123")
	assert.Contains(t, args, "--digest-configmap=digest-layered-image-0123")
	assert.NotContains(t, args, "ephemeral-build-object", "the digest ConfigMap outlives the Job")
	assert.Contains(t, args, "--build-log-configmap=build-log-layered-image-0123 --machineosbuild=layered-image-0123 --machineosbuild-uid=mosb-uid")
	volumes := map[string]corev1.Volume{}
	for _, v := range job.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	assert.Equal(t, "/var/lib/imagemode/cache", volumes["build-storage"].HostPath.Path)
	require.NotNil(t, volumes["scratch"].EmptyDir, "buildah's temporary directory is a volume, not the overlay root")
	assert.Contains(t, job.Spec.Template.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "scratch", MountPath: "/var/tmp"})
	assert.Contains(t, args, "--context-archive=/tmp/containerfile/context.tar.gz", "the pod reads the composed context")
	for _, v := range volumes {
		if v.ConfigMap != nil {
			assert.NotEqual(t, "mc-layered-image-0123", v.ConfigMap.Name, "the pod composes nothing: the rendered config is not mounted")
		}
	}
	assert.Equal(t, []byte("context"), objs.ConfigMaps[0].BinaryData[osbuild.ContextKey], "the context travels with the Containerfile")

	var names []string
	for _, cm := range objs.ConfigMaps {
		names = append(names, cm.Name)
		assert.Equal(t, job.Labels, cm.Labels)
	}
	for _, s := range objs.Secrets {
		names = append(names, s.Name)
		assert.Equal(t, corev1.SecretTypeDockerConfigJson, s.Type, "%s normalized", s.Name)
		assert.Equal(t, wellknown.MCONamespace, s.Namespace)
	}
	assert.Equal(t, []string{"containerfile-layered-image-0123", "mc-layered-image-0123", "registry-certs-layered-image-0123", "base-layered-image-0123", "final-layered-image-0123"}, names)
	assert.JSONEq(t, `{"auths":{"r.io":{"auth":"dTpw"}}}`, string(objs.Secrets[1].Data[corev1.DockerConfigJsonKey]), "legacy dockercfg converted")

	job.UID = types.UID("job-uid")
	objs.WithJobOwner(job)
	for _, cm := range objs.ConfigMaps {
		require.Len(t, cm.OwnerReferences, 1)
		assert.Equal(t, types.UID("job-uid"), cm.OwnerReferences[0].UID)
		assert.False(t, *cm.OwnerReferences[0].Controller)
	}

	var labelArg string
	for _, a := range job.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--digest-configmap-labels="); ok {
			labelArg = v
		}
	}
	labels, err := ParseLabels(labelArg)
	require.NoError(t, err)
	assert.Equal(t, DigestLabels(r), labels)
}

func TestBuildRefusesBadSecrets(t *testing.T) {
	t.Parallel()
	r := request()
	r.PushSecret.Data = map[string][]byte{corev1.DockerConfigKey: []byte(`{"r.io":{"auth":"bm90LWEtcGFpcg=="}}`)}
	_, err := Build(r, Options{Namespace: "ns"})
	require.ErrorContains(t, err, "preparing push secret")
	assert.ErrorContains(t, err, "builder-dockercfg-x")
	assert.NotContains(t, err.Error(), "bm90LWEtcGFpcg")
}

// TestBuildRunMounts: entitlement objects found are mounted read-only into the build pod, passed to the
// builder as --run-mount, and flagged with the reference's has-* annotations on every object.
func TestBuildRunMounts(t *testing.T) {
	t.Parallel()
	r := request()
	plain, err := Build(r, Options{Namespace: "ns"})
	require.NoError(t, err)
	for _, m := range EntitlementMounts("layered-image") {
		assert.NotContains(t, plain.Job.Annotations, m.Annotation)
	}
	assert.NotContains(t, strings.Join(plain.Job.Spec.Template.Spec.Containers[0].Args, " "), "--run-mount")

	mounts := EntitlementMounts("layered-image")
	assert.Equal(t, []string{"etc-pki-entitlement-layered-image", "etc-pki-entitlement"}, mounts[0].Names, "the per-pool copy first")
	mounts[0].Name, mounts[1].Name = "etc-pki-entitlement", "etc-yum-repos-d"
	r.RunMounts = mounts[:2]
	objs, err := Build(r, Options{Namespace: "ns"})
	require.NoError(t, err)
	pod := objs.Job.Spec.Template.Spec
	args := strings.Join(pod.Containers[0].Args, " ")
	assert.Contains(t, args, "--run-mount=/var/run/imagemode/run-mounts/etc-pki-entitlement:/etc/pki/entitlement")
	assert.Contains(t, args, "--run-mount=/var/run/imagemode/run-mounts/etc-yum-repos-d:/etc/yum.repos.d")
	assert.NotContains(t, args, "rpm-gpg")
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	require.NotNil(t, vols["etc-pki-entitlement"].Secret)
	assert.Equal(t, "etc-pki-entitlement", vols["etc-pki-entitlement"].Secret.SecretName)
	assert.True(t, *vols["etc-pki-entitlement"].Secret.Optional)
	require.NotNil(t, vols["etc-yum-repos-d"].ConfigMap)
	assert.Equal(t, "etc-yum-repos-d", vols["etc-yum-repos-d"].ConfigMap.Name)
	for _, vm := range pod.Containers[0].VolumeMounts {
		if vm.Name == "etc-pki-entitlement" {
			assert.True(t, vm.ReadOnly)
			assert.Equal(t, "/var/run/imagemode/run-mounts/etc-pki-entitlement", vm.MountPath)
		}
	}
	for _, meta := range []metav1.ObjectMeta{objs.Job.ObjectMeta, objs.Job.Spec.Template.ObjectMeta, objs.ConfigMaps[0].ObjectMeta, objs.Secrets[0].ObjectMeta} {
		assert.Contains(t, meta.Annotations, HasEtcPkiEntitlementAnnotation)
		assert.Contains(t, meta.Annotations, HasEtcYumReposDAnnotation)
		assert.NotContains(t, meta.Annotations, HasEtcPkiRpmGpgAnnotation)
	}
}

func TestBuildHostNetwork(t *testing.T) {
	t.Parallel()
	for _, hostNetwork := range []bool{false, true} {
		objs, err := Build(request(), Options{Namespace: wellknown.MCONamespace, Image: "i", HostNetwork: hostNetwork})
		require.NoError(t, err)
		spec := objs.Job.Spec.Template.Spec
		assert.Equal(t, hostNetwork, spec.HostNetwork)
		if hostNetwork {
			assert.Equal(t, corev1.DNSClusterFirstWithHostNet, spec.DNSPolicy, "cluster DNS on the host network")
		} else {
			assert.Empty(t, spec.DNSPolicy, "the default (ClusterFirst) on the pod network")
		}
	}
}
