package machineos

import (
	"context"
	"fmt"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"go.podman.io/image/v5/docker/reference"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/imagemode/imagemode/internal/wellknown"
	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry"
	"github.com/imagemode/imagemode/registry/signing"
)

// Signing builds. A MachineOSConfig turns signing on with SigningKeySecretAnnotation, naming a Secret of the
// build namespace in cosign's layout (cosign.key, cosign.password; `cosign generate-key-pair
// k8s://openshift-machine-config-operator/<name>` writes one). Each build copies the annotation when it is
// created; once its pod has pushed the image, the build service — not the build pod: the key never enters
// the pod, its env or its volumes, and the user's Containerfile never runs next to it — signs the pushed
// digest with a sigstore signature stored in the registry as a sigstore attachment, and only then is the
// build Succeeded and its image published in the MachineOSConfig's status.currentImagePullSpec. A key that
// is missing, malformed or of the wrong kind fails the build (before it starts when possible) with the
// Signed condition naming the Secret and the reason.
const (
	// SigningKeySecretAnnotation on a MachineOSConfig (and on each of its builds) names the signing key
	// Secret.
	SigningKeySecretAnnotation = osbuild.SigningKeySecretAnnotation
	// SignatureKeyAnnotation on a signed MachineOSBuild is its key's fingerprint.
	SignatureKeyAnnotation = osbuild.SignatureKeyAnnotation
	// ConditionSigned is the MachineOSBuild condition of a build that signs.
	ConditionSigned = osbuild.ConditionSigned
	// ReasonSigned is the reason of a True Signed condition.
	ReasonSigned = "Signed"
)

// ImageSigner signs a pushed image in its registry.
type ImageSigner interface {
	// SignImage signs pullspec (repo@sha256:…) with key, using the registry credentials of pushSecret.
	SignImage(ctx context.Context, pushSecret, pullspec string, key *signing.PrivateKey) (signing.SignResult, error)
	// AttestImage stores statement (in-toto) signed with key as pullspec's attestation and returns the
	// attestation's manifest digest.
	AttestImage(ctx context.Context, pushSecret, pullspec string, key *signing.PrivateKey, statement []byte) (string, error)
}

// SignImage signs pullspec with the push secret's credentials and the cluster's registry CAs.
func (c *RegistryChecker) SignImage(ctx context.Context, pushSecret, pullspec string, key *signing.PrivateKey) (signing.SignResult, error) {
	sys, cleanup, err := registry.NewClusterSystemContext(ctx, c.Reader, registry.ClusterAuth{Namespace: c.Namespace,
		SecretName: pushSecret, ControllerConfigName: c.ControllerConfigName})
	if err != nil {
		return signing.SignResult{}, err
	}
	defer cleanup()
	return signing.Sign(ctx, sys, pullspec, key)
}

// AttestImage stores the signed statement with the push secret's credentials.
func (c *RegistryChecker) AttestImage(ctx context.Context, pushSecret, pullspec string, key *signing.PrivateKey, statement []byte) (string, error) {
	sys, cleanup, err := registry.NewClusterSystemContext(ctx, c.Reader, registry.ClusterAuth{Namespace: c.Namespace,
		SecretName: pushSecret, ControllerConfigName: c.ControllerConfigName})
	if err != nil {
		return "", err
	}
	defer cleanup()
	return signing.Attest(ctx, sys, pullspec, key, statement)
}

// signingSecret is the signing key Secret a build names, "" when it is not signed.
func signingSecret(mosb *mcfgv1.MachineOSBuild) string {
	return mosb.Annotations[SigningKeySecretAnnotation]
}

// signingKey reads and checks the build's signing key. A Secret that is missing or holds no usable key is a
// *signing.KeyError naming it; other errors are the API server's.
func (r *BuildReconciler) signingKey(ctx context.Context, mosb *mcfgv1.MachineOSBuild) (*signing.PrivateKey, error) {
	name := signingSecret(mosb)
	s, wait, err := r.secret(ctx, name)
	if err != nil {
		return nil, err
	}
	if wait != "" {
		return nil, &signing.KeyError{Secret: r.Jobs.Namespace + "/" + name, Reason: signing.ReasonKeyMissing, Detail: "the secret does not exist"}
	}
	return signing.KeyFromSecret(s)
}

// signedCondition is the Signed condition for a key error (nil: signed with fingerprint).
func signedCondition(keyErr *signing.KeyError, fingerprint, secret string, generation int64) metav1.Condition {
	if keyErr != nil {
		return metav1.Condition{Type: ConditionSigned, Status: metav1.ConditionFalse, Reason: keyErr.Reason, Message: keyErr.Error(), ObservedGeneration: generation}
	}
	return metav1.Condition{Type: ConditionSigned, Status: metav1.ConditionTrue, Reason: ReasonSigned, ObservedGeneration: generation,
		Message: fmt.Sprintf("Image signed with key %s (secret %s); the signature is stored as a sigstore attachment", fingerprint, secret)}
}

// failSigning fails a build whose key cannot be used: an event and the Signed condition say why, naming the
// Secret; digested (the pushed image, "" before the build ran) is recorded so the registry GC deletes it
// with the build.
func (r *BuildReconciler) failSigning(ctx context.Context, mosb *mcfgv1.MachineOSBuild, job *batchv1.Job, keyErr *signing.KeyError, digested string) (ctrl.Result, error) {
	r.Recorder.Eventf(mosb, nil, corev1.EventTypeWarning, EventBuildFailed, "Build", "%v", keyErr)
	return ctrl.Result{}, r.setStateWithJob(ctx, mosb, osbuild.StateFailed, job, func(s *mcfgv1.MachineOSBuildStatus) {
		if s.BuildStart == nil {
			s.BuildStart = ptrTime(mosb.CreationTimestamp)
		}
		if digested != "" {
			s.DigestedImagePushSpec = mcfgv1.ImageDigestFormat(digested)
		}
		apimeta.SetStatusCondition(&s.Conditions, signedCondition(keyErr, "", "", mosb.Generation))
	})
}

// sign signs a build's pushed image (step.Digested) before the build may be Succeeded. It returns
// done=false with the result to return when the build cannot go on now: a key error fails it, a registry
// error is retried (the build stays Building and its image unpublished). On success the key's fingerprint is
// recorded on the build and cond is its Signed condition.
func (r *BuildReconciler) sign(ctx context.Context, mosb *mcfgv1.MachineOSBuild, job *batchv1.Job, digested string) (cond *metav1.Condition, res ctrl.Result, done bool, err error) {
	key, err := r.signingKey(ctx, mosb)
	if keyErr, ok := signing.IsKeyError(err); ok {
		res, err := r.failSigning(ctx, mosb, job, keyErr, digested)
		return nil, res, false, err
	} else if err != nil {
		return nil, ctrl.Result{}, false, err
	}
	start := time.Now()
	out, err := r.Signer.SignImage(ctx, mosb.Annotations[wellknown.RenderedImagePushSecretAnnotation], digested, key)
	if keyErr, ok := signing.IsKeyError(err); ok {
		res, err := r.failSigning(ctx, mosb, job, keyErr, digested)
		return nil, res, false, err
	} else if err != nil {
		return nil, ctrl.Result{}, false, fmt.Errorf("signing %s of machineosbuild %s: %w", digested, mosb.Name, err)
	}
	log.FromContext(ctx).Info("signed image", "machineosbuild", mosb.Name, "image", digested, "key", key.Fingerprint,
		"alreadySigned", out.AlreadySigned, "seconds", time.Since(start).Seconds())
	before := mosb.DeepCopy()
	if mosb.Annotations[osbuild.ProvenanceAnnotation] == "" {
		att, err := r.attest(ctx, mosb, job, digested, key)
		if err != nil {
			return nil, ctrl.Result{}, false, err
		}
		metav1.SetMetaDataAnnotation(&mosb.ObjectMeta, osbuild.ProvenanceAnnotation, att)
	}
	metav1.SetMetaDataAnnotation(&mosb.ObjectMeta, SignatureKeyAnnotation, key.Fingerprint)
	if !equality.Semantic.DeepEqual(before.Annotations, mosb.Annotations) {
		if err := r.Client.Patch(ctx, mosb, client.MergeFrom(before)); err != nil {
			return nil, ctrl.Result{}, false, fmt.Errorf("recording the signature on machineosbuild %s: %w", mosb.Name, err)
		}
	}
	if err := r.publishKey(ctx, mosb, digested, key.PublicKeyPEM); err != nil {
		return nil, ctrl.Result{}, false, err
	}
	c := signedCondition(nil, key.Fingerprint, r.Jobs.Namespace+"/"+signingSecret(mosb), mosb.Generation)
	return &c, ctrl.Result{}, true, nil
}

// publishKey makes nodes require the key for the image's repository before the image is published: the
// MachineOSConfig's trusted keys ConfigMap (owned by it) accepts the key, and the one trusted before it
// while a rotation lasts.
func (r *BuildReconciler) publishKey(ctx context.Context, mosb *mcfgv1.MachineOSBuild, digested string, pub []byte) error {
	named, err := reference.ParseNormalizedNamed(digested)
	if err != nil {
		return fmt.Errorf("image %s: %w", digested, err)
	}
	repo := named.Name()
	mosc := &mcfgv1.MachineOSConfig{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: mosb.Spec.MachineOSConfig.Name}, mosc); err != nil {
		return fmt.Errorf("reading machineosconfig %s: %w", mosb.Spec.MachineOSConfig.Name, err)
	}
	name := signing.TrustedKeysName(mosc.Name)
	cur := &corev1.ConfigMap{}
	err = r.APIReader.Get(ctx, types.NamespacedName{Namespace: r.Jobs.Namespace, Name: name}, cur)
	switch {
	case apierrors.IsNotFound(err):
		cm := signing.TrustedKeysConfigMap(r.Jobs.Namespace, name, repo, [][]byte{pub})
		if err := controllerutil.SetOwnerReference(mosc, cm, r.Client.Scheme()); err != nil {
			return err
		}
		if err := r.Client.Create(ctx, cm); err != nil {
			return fmt.Errorf("publishing the signing key in configmap %s: %w", name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading configmap %s: %w", name, err)
	}
	var before [][]byte
	if cur.Data[signing.TrustedKeysRepositoryKey] == repo {
		before, _ = signing.ParseKeys(cur.Data[signing.TrustedKeysPEMKey]) // a damaged list is replaced
	}
	want := signing.TrustedKeysConfigMap(r.Jobs.Namespace, name, repo, signing.RotateKeys(pub, before))
	if equality.Semantic.DeepEqual(cur.Data, want.Data) {
		return nil
	}
	orig := cur.DeepCopy()
	cur.Data = want.Data
	if cur.Labels == nil {
		cur.Labels = map[string]string{}
	}
	cur.Labels[signing.TrustedKeysLabel] = ""
	if err := r.Client.Patch(ctx, cur, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("publishing the signing key in configmap %s: %w", name, err)
	}
	return nil
}
