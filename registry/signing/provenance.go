package signing

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	imgspecs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigsig "github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/imagemode/imagemode/registry"
)

// Provenance. Each signed build also gets an in-toto statement with a SLSA v1 provenance predicate, signed
// with the same key as a DSSE envelope and stored next to the image as a sigstore attestation (the
// <repo>:sha256-<hex>.att tag, as `cosign attest` stores it: one layer of media type DSSEMediaType).
const (
	StatementType     = "https://in-toto.io/Statement/v1"
	SLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	InTotoPayloadType = "application/vnd.in-toto+json"
	DSSEMediaType     = "application/vnd.dsse.envelope.v1+json"
	// BuildType identifies how an imagemode build is made (a MachineOSBuild's Job).
	BuildType = "https://imagemode.io/MachineOSBuild/v1"
)

// Provenance is what a build was made from.
type Provenance struct {
	// BaseImage is the base OS image by digest (repo@sha256:…).
	BaseImage string
	// Containerfiles are the MachineOSConfig's Containerfiles by architecture, hashed (sha256 hex).
	Containerfiles map[string]string
	// RenderedConfig and RenderedConfigSHA256: the rendered MachineConfig baked in, and the SHA-256 of its
	// spec.
	RenderedConfig, RenderedConfigSHA256 string
	// BuilderImage is the image of the build pod.
	BuilderImage         string
	BuildStart, BuildEnd time.Time
	// Build and BuildUID are the MachineOSBuild's name and UID; MachineOSConfig its config.
	Build, BuildUID, MachineOSConfig string
}

type statement struct {
	Type          string          `json:"_type"`
	Subject       []subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Statement is the in-toto statement (SLSA v1 provenance) of image (repo@sha256:…).
func Statement(image string, p Provenance) ([]byte, error) {
	ref, err := parseDigested(image)
	if err != nil {
		return nil, err
	}
	deps := []map[string]any{}
	if p.BaseImage != "" {
		dep := map[string]any{"uri": "docker://" + p.BaseImage}
		if b, err := parseDigested(p.BaseImage); err == nil {
			dep["digest"] = map[string]string{b.Digest().Algorithm().String(): b.Digest().Encoded()}
		}
		deps = append(deps, dep)
	}
	files := map[string]any{}
	for arch, sum := range p.Containerfiles {
		files[arch] = map[string]string{"sha256": sum}
	}
	predicate := map[string]any{
		"buildDefinition": map[string]any{
			"buildType": BuildType,
			"externalParameters": map[string]any{
				"machineOSConfig": p.MachineOSConfig,
				"containerfiles":  files,
				"machineConfig":   map[string]any{"name": p.RenderedConfig, "digest": map[string]string{"sha256": p.RenderedConfigSHA256}},
			},
			"internalParameters":   map[string]any{"machineOSBuild": map[string]string{"name": p.Build, "uid": p.BuildUID}},
			"resolvedDependencies": deps,
		},
		"runDetails": map[string]any{
			"builder": map[string]any{"id": "docker://" + p.BuilderImage},
			"metadata": map[string]any{"invocationId": p.BuildUID,
				"startedOn": p.BuildStart.UTC().Format(time.RFC3339), "finishedOn": p.BuildEnd.UTC().Format(time.RFC3339)},
		},
	}
	raw, err := json.Marshal(predicate)
	if err != nil {
		return nil, err
	}
	return json.Marshal(statement{Type: StatementType, PredicateType: SLSAProvenanceV1, Predicate: raw,
		Subject: []subject{{Name: ref.Name(), Digest: map[string]string{ref.Digest().Algorithm().String(): ref.Digest().Encoded()}}}})
}

// Attest signs statement with key as a DSSE envelope and stores it as image's sigstore attestation
// (<repo>:sha256-<hex>.att), replacing an earlier one. It returns the attestation's manifest digest.
func Attest(ctx context.Context, sys *types.SystemContext, image string, key *PrivateKey, statementJSON []byte) (string, error) {
	ref, err := parseDigested(image)
	if err != nil {
		return "", err
	}
	s, err := sigsig.LoadSigner(key.priv, crypto.SHA256)
	if err != nil {
		return "", &KeyError{Reason: ReasonKeyWrongType, Detail: "the key cannot sign attestations"}
	}
	envelope, err := sigdsse.WrapSigner(s, InTotoPayloadType).SignMessage(bytes.NewReader(statementJSON))
	if err != nil {
		return "", fmt.Errorf("signing the provenance of %s: %w", image, err)
	}
	work, err := os.MkdirTemp("", "imagemode-attest-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	dir := filepath.Join(work, "layout")
	if err := writeAttestationLayout(dir, envelope); err != nil {
		return "", err
	}
	src, err := layout.NewReference(dir, "att")
	if err != nil {
		return "", err
	}
	dst, err := attestationRef(ref)
	if err != nil {
		return "", err
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return "", err
	}
	defer pc.Destroy() //nolint:errcheck // nothing to do about it
	raw, err := copy.Image(ctx, pc, dst, src, &copy.Options{DestinationCtx: sys, PreserveDigests: true, ReportWriter: io.Discard})
	if err != nil {
		return "", fmt.Errorf("storing the provenance of %s: %w", image, err)
	}
	d, err := manifest.Digest(raw)
	if err != nil {
		return "", err
	}
	return d.String(), nil
}

// ReadProvenance reads image's attestation, checks its DSSE signature against publicKeys and that its
// statement is about image, and returns the statement.
func ReadProvenance(ctx context.Context, sys *types.SystemContext, image string, publicKeys ...[]byte) ([]byte, error) {
	ref, err := parseDigested(image)
	if err != nil {
		return nil, err
	}
	att, err := attestationRef(ref)
	if err != nil {
		return nil, err
	}
	src, err := att.NewImageSource(ctx, sys)
	if registry.IsNotFound(err) {
		return nil, ErrNoProvenance
	}
	if err != nil {
		return nil, fmt.Errorf("reading the provenance of %s: %w", image, err)
	}
	defer src.Close()
	raw, mt, err := src.GetManifest(ctx, nil)
	if registry.IsNotFound(err) {
		return nil, ErrNoProvenance
	}
	if err != nil {
		return nil, fmt.Errorf("reading the provenance of %s: %w", image, err)
	}
	m, err := manifest.FromBlob(raw, mt)
	if err != nil {
		return nil, err
	}
	var verifiers []dsse.Verifier
	for _, k := range publicKeys {
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(k)
		if err != nil {
			return nil, errors.New("public key: not a PEM public key")
		}
		v, err := sigsig.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		verifiers = append(verifiers, &sigdsse.VerifierAdapter{SignatureVerifier: v, Pub: pub})
	}
	ev, err := dsse.NewEnvelopeVerifier(verifiers...)
	if err != nil {
		return nil, err
	}
	for _, l := range m.LayerInfos() {
		if l.MediaType != DSSEMediaType {
			continue
		}
		rc, _, err := src.GetBlob(ctx, l.BlobInfo, none.NoCache)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(io.LimitReader(rc, 4<<20))
		rc.Close()
		if err != nil {
			return nil, err
		}
		var env dsse.Envelope
		if err := json.Unmarshal(body, &env); err != nil {
			continue
		}
		if env.PayloadType != InTotoPayloadType {
			continue
		}
		_, payload, err := ev.VerifyAndDecode(ctx, &env)
		if err != nil {
			continue
		}
		var st statement
		if err := json.Unmarshal(payload, &st); err != nil || st.Type != StatementType {
			continue
		}
		for _, sub := range st.Subject {
			if sub.Name == ref.Name() && sub.Digest[ref.Digest().Algorithm().String()] == ref.Digest().Encoded() {
				return payload, nil
			}
		}
	}
	return nil, ErrNoProvenance
}

// ErrNoProvenance: the image has no attestation with a provenance of it signed by the keys.
var ErrNoProvenance = errors.New("no provenance of this image signed by the key")

func attestationRef(ref reference.Canonical) (types.ImageReference, error) {
	tagged, err := reference.WithTag(reference.TrimNamed(ref), strings.Replace(ref.Digest().String(), ":", "-", 1)+".att")
	if err != nil {
		return nil, err
	}
	return docker.NewReference(tagged)
}

// writeAttestationLayout writes an OCI layout holding one image: a config and one layer, the envelope.
func writeAttestationLayout(dir string, envelope []byte) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return err
	}
	put := func(b []byte) (digest.Digest, error) {
		d := digest.FromBytes(b)
		return d, os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o600)
	}
	envDigest, err := put(envelope)
	if err != nil {
		return err
	}
	cfg, err := json.Marshal(imgspecv1.Image{RootFS: imgspecv1.RootFS{Type: "layers", DiffIDs: []digest.Digest{envDigest}}})
	if err != nil {
		return err
	}
	cfgDigest, err := put(cfg)
	if err != nil {
		return err
	}
	man, err := json.Marshal(imgspecv1.Manifest{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest,
		Config: imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfg))},
		Layers: []imgspecv1.Descriptor{{MediaType: DSSEMediaType, Digest: envDigest, Size: int64(len(envelope)),
			Annotations: map[string]string{"predicateType": SLSAProvenanceV1}}}})
	if err != nil {
		return err
	}
	manDigest, err := put(man)
	if err != nil {
		return err
	}
	index, err := json.Marshal(imgspecv1.Index{Versioned: imgspecs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageIndex,
		Manifests: []imgspecv1.Descriptor{{MediaType: imgspecv1.MediaTypeImageManifest, Digest: manDigest, Size: int64(len(man)),
			Annotations: map[string]string{imgspecv1.AnnotationRefName: "att"}}}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, imgspecv1.ImageIndexFile), index, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, imgspecv1.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600)
}
