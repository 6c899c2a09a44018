package jobs

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry/pullsecret"
)

// Mount points inside the build pod.
const (
	containerfileDir = "/tmp/containerfile"
	basePullDir      = "/tmp/base-image-pull-creds"
	pushDir          = "/tmp/final-image-push-creds"
	cacheDir         = "/var/lib/imagemode/build-storage"
	registryCertsDir = "/etc/imagemode/registry-certs"
	// scratchDir is buildah's and containers/image's temporary directory. It must not be the container's
	// root file system: buildah mounts an overlay over the build context with its upper directory here, and
	// the kernel refuses an overlay upper directory on overlayfs (a container's root is one): `mount
	// overlay ... invalid argument`, found when a kubelet first ran a build pod.
	scratchDir   = "/var/tmp"
	authFileName = "config.json"
)

// BackoffLimit gives a build four attempts (a pod each), as in the reference.
const BackoffLimit = 3

// ServiceAccount is the build pods' service account.
const ServiceAccount = "machine-os-builder"

// Options are the cluster-wide settings of build Jobs.
type Options struct {
	// Namespace holds the build Jobs and their objects.
	Namespace string
	// Image is the service image holding the builder binary.
	Image string
	// CacheHostPath, when set, is a host directory the build pods keep their image store in, so later builds
	// reuse layers (the configs stage, unchanged steps). Empty: an emptyDir, nothing kept between builds.
	CacheHostPath string
	// HostNetwork runs build pods in their node's network namespace, for clusters without a pod network
	// (the kubelet tests here: no CNI plugins, no kube-proxy). A build pod needs the API server (digest and
	// log ConfigMaps) and the registries; on a cluster with a pod network leave it off, as the reference does.
	HostNetwork bool
	// Proxy settings passed to the build (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), from the ControllerConfig.
	HTTPProxy, HTTPSProxy, NoProxy string
}

// Request is one build.
type Request struct {
	MachineOSConfig *mcfgv1.MachineOSConfig
	MachineOSBuild  *mcfgv1.MachineOSBuild
	Pool            *mcfgv1.MachineConfigPool
	Rendered        *mcfgv1.MachineConfig
	// Containerfile is the composed build Containerfile and Context the rest of the composed build
	// context, archived (layering.BuildContext.Archive): the build service composes the build once and the
	// build pod only unpacks it.
	Containerfile, Context []byte
	// BasePullSecret and PushSecret are the user's secrets, any supported form; they are normalized.
	BasePullSecret, PushSecret *corev1.Secret
	// RegistryCAs are registry CA bundles by file name host..port (the ControllerConfig's
	// imageRegistryBundleData and imageRegistryBundleUserData); empty: system trust only.
	RegistryCAs map[string][]byte
	// RunMounts are the entitlement objects found (EntitlementMounts with Name set): mounted into the
	// build's RUN steps, never into the image.
	RunMounts []RunMount
}

// Objects are what a build needs in the cluster. ConfigMaps and Secrets get their owner reference to the Job
// once the Job exists (WithJobOwner).
type Objects struct {
	Job        *batchv1.Job
	ConfigMaps []*corev1.ConfigMap
	Secrets    []*corev1.Secret
}

// Labels returns the labels of a build's ephemeral objects.
func Labels(r *Request) map[string]string {
	return map[string]string{
		wellknown.EphemeralBuildObjectLabel:    "",
		wellknown.OnClusterLayeringLabel:       "",
		wellknown.RenderedMachineConfigLabel:   r.MachineOSBuild.Spec.MachineConfig.Name,
		wellknown.TargetMachineConfigPoolLabel: r.Pool.Name,
		wellknown.MachineOSConfigLabel:         r.MachineOSConfig.Name,
		wellknown.MachineOSBuildLabel:          r.MachineOSBuild.Name,
	}
}

// DigestLabels are the labels of the digest ConfigMap the build pod writes: the build's labels minus
// ephemeral (it outlives the Job: the build's status is read from it).
func DigestLabels(r *Request) map[string]string {
	l := Labels(r)
	delete(l, wellknown.EphemeralBuildObjectLabel)
	return l
}

// Build returns the Job, ConfigMaps and Secrets of a build. The secrets are validated and normalized to
// dockerconfigjson; an invalid secret is an error that names it but never shows its content.
func Build(r *Request, opts Options) (*Objects, error) {
	mosb := r.MachineOSBuild.Name
	base, err := pullsecret.Normalized(r.BasePullSecret, opts.Namespace, osbuild.BaseSecretName(mosb))
	if err != nil {
		return nil, fmt.Errorf("preparing base image pull secret: %w", err)
	}
	final, err := pullsecret.Normalized(r.PushSecret, opts.Namespace, osbuild.FinalSecretName(mosb))
	if err != nil {
		return nil, fmt.Errorf("preparing push secret: %w", err)
	}
	mcRaw, err := json.Marshal(r.Rendered)
	if err != nil {
		return nil, fmt.Errorf("encoding rendered config %s: %w", r.Rendered.Name, err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(mcRaw)
	zw.Close()

	meta := func(name string) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Name: name, Namespace: opts.Namespace, Labels: Labels(r), Annotations: map[string]string{
			wellknown.MachineOSConfigLabel: r.MachineOSConfig.Name,
			wellknown.MachineOSBuildLabel:  mosb,
		}}
		for _, rm := range r.RunMounts {
			m.Annotations[rm.Annotation] = ""
		}
		return m
	}
	objs := &Objects{
		ConfigMaps: []*corev1.ConfigMap{
			{ObjectMeta: meta(osbuild.ContainerfileCMName(mosb)), Data: map[string]string{osbuild.ContainerfileKey: string(r.Containerfile)},
				BinaryData: map[string][]byte{osbuild.ContextKey: r.Context}},
			// The rendered config, as the reference keeps it for the build (users and tools read it); the build
			// pod itself needs only the composed context.
			{ObjectMeta: meta(osbuild.MachineConfigCMName(mosb)), BinaryData: map[string][]byte{osbuild.MachineConfigKey: gz.Bytes()}},
			{ObjectMeta: meta(osbuild.RegistryCertsCMName(mosb)), BinaryData: r.RegistryCAs},
		},
		Secrets: []*corev1.Secret{base, final},
	}
	for _, s := range objs.Secrets {
		s.ObjectMeta = meta(s.Name)
	}
	objs.Job = job(r, opts, meta(osbuild.JobName(mosb)))
	return objs, nil
}

func job(r *Request, opts Options, meta metav1.ObjectMeta) *batchv1.Job {
	mosb := r.MachineOSBuild
	cache := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if opts.CacheHostPath != "" {
		cache = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: opts.CacheHostPath, Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}
	}
	secretVolume := func(name string) corev1.VolumeSource {
		return corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name,
			Items: []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: authFileName}}}}
	}
	configMapVolume := func(name string) corev1.VolumeSource {
		return corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}}}
	}
	env := []corev1.EnvVar{{Name: "BUILDAH_ISOLATION", Value: "chroot"}}
	for _, e := range []corev1.EnvVar{{Name: "HTTP_PROXY", Value: opts.HTTPProxy}, {Name: "HTTPS_PROXY", Value: opts.HTTPSProxy}, {Name: "NO_PROXY", Value: opts.NoProxy}} {
		if e.Value != "" {
			env = append(env, e)
		}
	}
	podLabels := Labels(r)
	args := []string{
		"--containerfile=" + containerfileDir + "/" + osbuild.ContainerfileKey,
		"--context-archive=" + containerfileDir + "/" + osbuild.ContextKey,
		"--rendered-config=" + r.Rendered.Name,
		"--base-image=" + r.Rendered.Spec.OSImageURL,
		"--base-pull-authfile=" + basePullDir + "/" + authFileName,
		"--push-authfile=" + pushDir + "/" + authFileName,
		"--tag=" + string(mosb.Spec.RenderedImagePushSpec),
		"--storage-root=" + cacheDir,
		"--digest-configmap=" + osbuild.DigestCMName(mosb.Name),
		"--digest-configmap-namespace=" + opts.Namespace,
		"--digest-configmap-labels=" + labels.Set(DigestLabels(r)).String(),
		"--registry-certs=" + registryCertsDir,
		// The pod tees its output into build-log-<mosb>, owned by the build; the pod's name comes from
		// $HOSTNAME (set by the kubelet and the local pod runner alike).
		"--build-log-configmap=" + osbuild.BuildLogCMName(mosb.Name),
		"--machineosbuild=" + mosb.Name,
		"--machineosbuild-uid=" + string(mosb.UID),
	}
	mounts := []corev1.VolumeMount{
		{Name: "containerfile", MountPath: containerfileDir},
		{Name: "base-image-pull-creds", MountPath: basePullDir},
		{Name: "final-image-push-creds", MountPath: pushDir},
		{Name: "build-storage", MountPath: cacheDir},
		{Name: "registry-certs", MountPath: registryCertsDir},
		{Name: "scratch", MountPath: scratchDir},
	}
	volumes := []corev1.Volume{
		{Name: "containerfile", VolumeSource: configMapVolume(osbuild.ContainerfileCMName(mosb.Name))},
		{Name: "base-image-pull-creds", VolumeSource: secretVolume(osbuild.BaseSecretName(mosb.Name))},
		{Name: "final-image-push-creds", VolumeSource: secretVolume(osbuild.FinalSecretName(mosb.Name))},
		{Name: "build-storage", VolumeSource: cache},
		{Name: "registry-certs", VolumeSource: configMapVolume(osbuild.RegistryCertsCMName(mosb.Name))},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	for _, rm := range r.RunMounts {
		args = append(args, rm.arg())
		mounts = append(mounts, corev1.VolumeMount{Name: rm.Volume, MountPath: rm.podPath(), ReadOnly: true})
		volumes = append(volumes, rm.volume())
	}
	return &batchv1.Job{
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](BackoffLimit),
			Completions:  ptr.To[int32](1),
			Parallelism:  ptr.To[int32](1),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: meta.Annotations},
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					ServiceAccountName:            ServiceAccount,
					HostNetwork:                   opts.HostNetwork,
					DNSPolicy:                     dnsPolicy(opts.HostNetwork),
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					Containers: []corev1.Container{{
						Name:                     "image-build",
						Image:                    opts.Image,
						ImagePullPolicy:          corev1.PullIfNotPresent,
						Command:                  []string{"imagemode-builder", "build"},
						Args:                     args,
						Env:                      env,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
						SecurityContext:          &corev1.SecurityContext{Privileged: ptr.To(true)},
						VolumeMounts:             mounts,
					}},
					Volumes: volumes,
				},
			},
		},
	}
}

// dnsPolicy keeps cluster DNS for host-network build pods (ClusterFirst would fall back to the node's).
func dnsPolicy(hostNetwork bool) corev1.DNSPolicy {
	if hostNetwork {
		return corev1.DNSClusterFirstWithHostNet
	}
	return ""
}

// WithJobOwner makes the Job the (non-controller) owner of the ConfigMaps and Secrets, so they are deleted
// with it.
func (o *Objects) WithJobOwner(job *batchv1.Job) {
	ref := metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
		Controller: ptr.To(false), BlockOwnerDeletion: ptr.To(false)}
	for _, cm := range o.ConfigMaps {
		cm.OwnerReferences = []metav1.OwnerReference{ref}
	}
	for _, s := range o.Secrets {
		s.OwnerReferences = []metav1.OwnerReference{ref}
	}
}

// ParseLabels parses the --digest-configmap-labels value.
func ParseLabels(s string) (map[string]string, error) {
	set, err := labels.ConvertSelectorToLabelsMap(s)
	if err != nil {
		return nil, fmt.Errorf("parsing labels %q: %w", s, err)
	}
	return set, nil
}
