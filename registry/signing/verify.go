package signing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// Refusal says why an image's signatures were not accepted.
type Refusal string

const (
	// RefusedUnsigned: the image has no sigstore signature.
	RefusedUnsigned Refusal = "Unsigned"
	// RefusedWrongKey: no signature verifies with the accepted keys (signed by another key, or damaged).
	RefusedWrongKey Refusal = "WrongKey"
	// RefusedOtherDigest: a signature verifies, but it was made for another image (another digest).
	RefusedOtherDigest Refusal = "OtherDigest"
	// RefusedOtherRepository: a signature verifies, but it names another repository.
	RefusedOtherRepository Refusal = "OtherRepository"
	// RefusedPolicy: the policy refused the image for another reason.
	RefusedPolicy Refusal = "Policy"
)

// Verification is the result of checking an image against a policy.
type Verification struct {
	Verified bool
	// Refusal and Message say why, when not Verified (Message is containers/image's own).
	Refusal Refusal
	Message string
}

// Describe is one line for a person: "verified" or the refusal and its reason.
func (v Verification) Describe() string {
	if v.Verified {
		return "verified"
	}
	return fmt.Sprintf("refused (%s): %s", v.Refusal, v.Message)
}

// Verify checks the image pullSpec (repo@sha256:…) in its registry against publicKeys (PEM; any one of them
// may have signed it): containers/image's policy evaluation with a sigstoreSigned requirement (the
// signature's repository must be the image's), reading the signatures from sigstore attachments. A refusal
// is a result; an error means the image or its signatures could not be read.
func Verify(ctx context.Context, sys *types.SystemContext, pullSpec string, publicKeys ...[]byte) (Verification, error) {
	ref, err := parseDigested(pullSpec)
	if err != nil {
		return Verification{}, err
	}
	work, err := os.MkdirTemp("", "imagemode-verify-")
	if err != nil {
		return Verification{}, err
	}
	defer os.RemoveAll(work)
	if sys, err = withAttachments(sys, work); err != nil {
		return Verification{}, err
	}
	return verifyRef(ctx, sys, ref, publicKeys)
}

func verifyRef(ctx context.Context, sys *types.SystemContext, ref reference.Canonical, publicKeys [][]byte) (Verification, error) {
	req, err := Requirement(publicKeys)
	if err != nil {
		return Verification{}, err
	}
	return Evaluate(ctx, sys, &signature.Policy{Default: signature.PolicyRequirements{req}}, ref)
}

// Requirement is the sigstoreSigned requirement for publicKeys (PEM): signed by one of them, for the
// image's repository.
func Requirement(publicKeys [][]byte) (signature.PolicyRequirement, error) {
	if len(publicKeys) == 0 {
		return nil, errors.New("no public key to verify with")
	}
	for i, k := range publicKeys {
		if _, err := Fingerprint(k); err != nil {
			return nil, fmt.Errorf("public key %d: %w", i+1, err)
		}
	}
	opt := signature.PRSigstoreSignedWithKeyData(publicKeys[0])
	if len(publicKeys) > 1 {
		opt = signature.PRSigstoreSignedWithKeyDatas(publicKeys)
	}
	return signature.NewPRSigstoreSigned(opt, signature.PRSigstoreSignedWithSignedIdentity(signature.NewPRMMatchRepository()))
}

// Evaluate checks ref against policy with containers/image's policy evaluation, the check a pull makes
// before it copies anything (sys says where signatures are read from: its RegistriesDirPath).
func Evaluate(ctx context.Context, sys *types.SystemContext, policy *signature.Policy, ref reference.Canonical) (Verification, error) {
	imgRef, err := docker.NewReference(ref)
	if err != nil {
		return Verification{}, err
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return Verification{}, fmt.Errorf("signature policy: %w", err)
	}
	defer pc.Destroy() //nolint:errcheck // nothing to do about it
	src, err := imgRef.NewImageSource(ctx, sys)
	if err != nil {
		return Verification{}, fmt.Errorf("reading %s: %w", ref, err)
	}
	defer src.Close()
	allowed, err := pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil))
	if allowed {
		return Verification{Verified: true}, nil
	}
	if refusal, ok := classify(err); ok {
		return Verification{Refusal: refusal, Message: err.Error()}, nil
	}
	return Verification{}, fmt.Errorf("verifying %s: %w", ref, err)
}

// classify maps a policy evaluation error to a refusal; false for errors that are not a policy's verdict
// (the registry could not be read).
func classify(err error) (Refusal, bool) {
	if err == nil {
		return RefusedPolicy, true
	}
	var pre signature.PolicyRequirementError
	var ise signature.InvalidSignatureError
	isPolicy := errors.As(err, &pre)
	isInvalid := errors.As(err, &ise)
	if !isPolicy && !isInvalid {
		return "", false
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no signature exists"):
		return RefusedUnsigned, true
	case strings.Contains(msg, "Signature for digest") && strings.Contains(msg, "does not match"):
		return RefusedOtherDigest, true
	case strings.Contains(msg, "Signature for identity") && strings.Contains(msg, "is not accepted"):
		return RefusedOtherRepository, true
	case strings.Contains(msg, "cryptographic signature verification failed"), isInvalid:
		return RefusedWrongKey, true
	}
	return RefusedPolicy, true
}
