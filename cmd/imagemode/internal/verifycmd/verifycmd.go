// Package verifycmd is `imagemode verify IMAGE --key pub.pem`: it checks an image in its registry against
// public keys with containers/image's policy evaluation (a sigstoreSigned requirement, signatures read from
// sigstore attachments) — the check nodes make before they pull — and prints the verdict and the image's
// provenance (its in-toto attestation, checked against the same key). It needs no
// cluster: registry credentials and CAs come from --authfile and --cert-dir, as for skopeo.
package verifycmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.podman.io/image/v5/types"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/printers"
	"github.com/imagemode/imagemode/registry/signing"
)

// Result is what verify prints (-o json).
type Result struct {
	Image    string `json:"image"`
	Verified bool   `json:"verified"`
	// Key is the fingerprint of the key whose signature was accepted.
	Key string `json:"key,omitempty"`
	// Refusal and Message say why the image was refused.
	Refusal string `json:"refusal,omitempty"`
	Message string `json:"message,omitempty"`
	// Keys are the fingerprints of the keys checked.
	Keys []string `json:"keys"`
	// Provenance is the image's in-toto statement, signed by the accepted key (absent when it has none).
	Provenance json.RawMessage `json:"provenance,omitempty"`
	// ProvenanceProblem says why no provenance is shown for a verified image.
	ProvenanceProblem string `json:"provenanceProblem,omitempty"`
}

// ErrRefused is returned (exit status 1) when the image is refused.
var ErrRefused = errors.New("image refused")

type flags struct {
	keys              []string
	authFile, certDir string
	output            string
}

// NewCommand returns `verify`.
func NewCommand() *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "verify IMAGE",
		Short: "Check an image's sigstore signature in its registry against public keys",
		Long: "Check that IMAGE (repository@sha256:…) carries a sigstore signature, stored as a sigstore attachment, made by\n" +
			"one of the --key public keys for this image and repository: the policy nodes of a signed pool enforce.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := printers.CheckOutput(f.output, printers.JSON); err != nil {
				return err
			}
			if len(f.keys) == 0 {
				return errors.New("--key is required (a PEM public key, e.g. cosign.pub)")
			}
			var pubs [][]byte
			for _, k := range f.keys {
				raw, err := os.ReadFile(k)
				if err != nil {
					return fmt.Errorf("reading public key: %w", err)
				}
				pubs = append(pubs, raw)
			}
			sys := &types.SystemContext{AuthFilePath: f.authFile, DockerCertPath: f.certDir}
			res, err := Verify(cmd.Context(), sys, args[0], pubs)
			if err != nil {
				return err
			}
			if f.output != "" {
				err = printers.Write(cmd.OutOrStdout(), f.output, res)
			} else {
				err = Write(cmd.OutOrStdout(), res)
			}
			if err != nil {
				return err
			}
			if !res.Verified {
				return ErrRefused
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&f.keys, "key", nil, "PEM public key the image must be signed with (repeat: any one of them)")
	cmd.Flags().StringVar(&f.authFile, "authfile", "", "containers auth.json with the registry's credentials (default: containers' own lookup)")
	cmd.Flags().StringVar(&f.certDir, "cert-dir", "", "directory with the registry's CA (ca.crt)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: json (default: text)")
	return cmd
}

// Verify checks image against each key in turn (so the accepted key is known) with the policy evaluation.
func Verify(ctx context.Context, sys *types.SystemContext, image string, keys [][]byte) (*Result, error) {
	res := &Result{Image: image, Keys: []string{}}
	for i, k := range keys {
		fp, err := signing.Fingerprint(k)
		if err != nil {
			return nil, fmt.Errorf("public key %d: %w", i+1, err)
		}
		res.Keys = append(res.Keys, fp)
	}
	var first signing.Verification
	for i, k := range keys {
		v, err := signing.Verify(ctx, sys, image, k)
		if err != nil {
			return nil, err
		}
		if v.Verified {
			res.Verified, res.Key, res.Refusal, res.Message = true, res.Keys[i], "", ""
			if st, err := signing.ReadProvenance(ctx, sys, image, k); err != nil {
				res.ProvenanceProblem = err.Error()
			} else {
				res.Provenance = st
			}
			return res, nil
		}
		if i == 0 || (first.Refusal == signing.RefusedWrongKey && v.Refusal != signing.RefusedWrongKey) {
			first = v // the most telling refusal: another key's failure says less than a digest mismatch
		}
	}
	res.Refusal, res.Message = string(first.Refusal), first.Message
	return res, nil
}

// Write prints a result for a person: the verdict, then the provenance's main facts.
func Write(out io.Writer, r *Result) error {
	if !r.Verified {
		_, err := fmt.Fprintf(out, "%s: refused (%s): %s\n", r.Image, r.Refusal, r.Message)
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: verified: sigstore signature by key %s\n", r.Image, r.Key)
	if r.Provenance == nil {
		fmt.Fprintf(&b, "Provenance: <none> (%s)\n", r.ProvenanceProblem)
	} else {
		var st provenance
		if err := json.Unmarshal(r.Provenance, &st); err != nil {
			return err
		}
		d, run := st.Predicate.BuildDefinition, st.Predicate.RunDetails
		b.WriteString("Provenance (in-toto, " + st.PredicateType + ", signed by the same key):\n")
		field := func(k, v string) {
			if v != "" {
				fmt.Fprintf(&b, "  %-16s %s\n", k+":", v)
			}
		}
		field("MachineOSBuild", d.InternalParameters.MachineOSBuild.Name+" (uid "+d.InternalParameters.MachineOSBuild.UID+")")
		field("MachineOSConfig", d.ExternalParameters.MachineOSConfig)
		field("Rendered config", d.ExternalParameters.MachineConfig.Name+" (sha256 "+d.ExternalParameters.MachineConfig.Digest["sha256"]+")")
		for _, dep := range d.ResolvedDependencies {
			field("Base image", strings.TrimPrefix(dep.URI, "docker://"))
		}
		for arch, f := range d.ExternalParameters.Containerfiles {
			field("Containerfile", arch+" (sha256 "+f["sha256"]+")")
		}
		field("Builder", strings.TrimPrefix(run.Builder.ID, "docker://"))
		field("Started", run.Metadata.StartedOn)
		field("Finished", run.Metadata.FinishedOn)
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// provenance is the part of the statement Write shows.
type provenance struct {
	PredicateType string `json:"predicateType"`
	Predicate     struct {
		BuildDefinition struct {
			ExternalParameters struct {
				MachineOSConfig string                       `json:"machineOSConfig"`
				Containerfiles  map[string]map[string]string `json:"containerfiles"`
				MachineConfig   struct {
					Name   string            `json:"name"`
					Digest map[string]string `json:"digest"`
				} `json:"machineConfig"`
			} `json:"externalParameters"`
			InternalParameters struct {
				MachineOSBuild struct {
					Name string `json:"name"`
					UID  string `json:"uid"`
				} `json:"machineOSBuild"`
			} `json:"internalParameters"`
			ResolvedDependencies []struct {
				URI string `json:"uri"`
			} `json:"resolvedDependencies"`
		} `json:"buildDefinition"`
		RunDetails struct {
			Builder struct {
				ID string `json:"id"`
			} `json:"builder"`
			Metadata struct {
				StartedOn  string `json:"startedOn"`
				FinishedOn string `json:"finishedOn"`
			} `json:"metadata"`
		} `json:"runDetails"`
	} `json:"predicate"`
}
