// Package verifycmd is `imagemode verify IMAGE --key pub.pem`: it checks an image in its registry against
// public keys with containers/image's policy evaluation (a sigstoreSigned requirement, signatures read from
// sigstore attachments) — the check nodes make before they pull — and prints the verdict. It needs no
// cluster: registry credentials and CAs come from --authfile and --cert-dir, as for skopeo.
package verifycmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

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
			return res, nil
		}
		if i == 0 || (first.Refusal == signing.RefusedWrongKey && v.Refusal != signing.RefusedWrongKey) {
			first = v // the most telling refusal: another key's failure says less than a digest mismatch
		}
	}
	res.Refusal, res.Message = string(first.Refusal), first.Message
	return res, nil
}

// Write prints a result for a person.
func Write(out io.Writer, r *Result) error {
	var err error
	if r.Verified {
		_, err = fmt.Fprintf(out, "%s: verified: sigstore signature by key %s\n", r.Image, r.Key)
	} else {
		_, err = fmt.Fprintf(out, "%s: refused (%s): %s\n", r.Image, r.Refusal, r.Message)
	}
	return err
}
