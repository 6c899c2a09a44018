package registry

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
)

// Default retry policy of Delete: four attempts, waiting 500 ms, 1 s and 2 s between them.
const (
	DefaultAttempts   = 4
	DefaultBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

// Deleter deletes images by digest, retrying transient errors only. The zero value uses the defaults and
// real time.
type Deleter struct {
	// Attempts is the number of tries of one delete, at least 1; DefaultAttempts when 0.
	Attempts int
	// Backoff is the wait after the first failed try, doubled after each further one up to MaxBackoff;
	// DefaultBackoff and DefaultMaxBackoff when 0.
	Backoff, MaxBackoff time.Duration
	// Sleep waits d or until ctx is done (returning ctx.Err()); a timer when nil. Tests inject a fake.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Delete deletes the image at pullspec, which must carry a digest, with the default retry policy. See
// Deleter.Delete.
func Delete(ctx context.Context, sys *types.SystemContext, pullspec string) error {
	return Deleter{}.Delete(ctx, sys, pullspec)
}

// Exists reports whether the image at pullspec (tag or digest) exists. A registry that refuses access or
// cannot be reached gives an error, never false.
func Exists(ctx context.Context, sys *types.SystemContext, pullspec string) (bool, error) {
	_, err := manifestDigest(ctx, sys, "checking", pullspec)
	switch {
	case err == nil:
		return true, nil
	case IsNotFound(err):
		return false, nil
	default:
		return false, err
	}
}

// ResolveDigest returns the digested pull spec (repository@sha256:…) of the image at pullspec, reading
// its manifest. Callers that only know a tag resolve it, check the digest for use, then delete the digest.
func ResolveDigest(ctx context.Context, sys *types.SystemContext, pullspec string) (string, error) {
	named, err := parseNamed(pullspec)
	if err != nil {
		return "", &ImageError{Op: "resolving", Ref: pullspec, Kind: KindInvalid, Err: err}
	}
	if d, ok := named.(reference.Digested); ok {
		return reference.TrimNamed(named).String() + "@" + d.Digest().String(), nil
	}
	dgst, err := manifestDigest(ctx, sys, "resolving", pullspec)
	if err != nil {
		return "", err
	}
	return reference.TrimNamed(named).String() + "@" + dgst.String(), nil
}

// Delete deletes the manifest pullspec names by digest (repository@sha256:… or repository:tag@sha256:…).
// A reference without a digest is refused with ErrTagReference: resolve it with ResolveDigest first.
// An image that is already gone counts as deleted. Its sigstore attachments (signatures, attestations) are
// deleted with it. Transient errors are retried with exponential
// back-off; any other error is returned at once. Errors are *ImageError.
func (d Deleter) Delete(ctx context.Context, sys *types.SystemContext, pullspec string) error {
	named, err := parseNamed(pullspec)
	if err != nil {
		return &ImageError{Op: "deleting", Ref: pullspec, Kind: KindInvalid, Err: err}
	}
	digested, ok := named.(reference.Digested)
	if !ok {
		return &ImageError{Op: "deleting", Ref: pullspec, Kind: KindInvalid, Err: ErrTagReference}
	}
	canonical, err := reference.WithDigest(reference.TrimNamed(named), digested.Digest())
	if err != nil {
		return &ImageError{Op: "deleting", Ref: pullspec, Kind: KindInvalid, Err: err}
	}
	ref, err := docker.NewReference(canonical)
	if err != nil {
		return &ImageError{Op: "deleting", Ref: pullspec, Kind: KindInvalid, Err: err}
	}
	err = d.retry(ctx, func() error {
		return newImageError("deleting", canonical.String(), ref.DeleteImage(ctx, sys))
	})
	if err != nil && !IsNotFound(err) {
		return err
	}
	// The image's sigstore attachments go with it, also when the image was already gone (a retry after
	// a failed attachment delete): a signature or attestation is never left behind.
	return d.deleteAttachments(ctx, sys, reference.TrimNamed(named), digested.Digest())
}

// AttachmentTags are the tags sigstore stores an image's attachments under, in its repository: its
// signatures (sha256-<hex>.sig) and attestations (sha256-<hex>.att).
func AttachmentTags(dgst digest.Digest) []string {
	base := dgst.Algorithm().String() + "-" + dgst.Encoded()
	return []string{base + ".sig", base + ".att"}
}

// deleteAttachments deletes the manifests the attachment tags of dgst in repo point to; missing ones are
// fine.
func (d Deleter) deleteAttachments(ctx context.Context, sys *types.SystemContext, repo reference.Named, dgst digest.Digest) error {
	for _, tag := range AttachmentTags(dgst) {
		tagged, err := reference.WithTag(repo, tag)
		if err != nil {
			return &ImageError{Op: "deleting", Ref: repo.String(), Kind: KindInvalid, Err: err}
		}
		var att digest.Digest
		err = d.retry(ctx, func() error {
			var err error
			att, err = manifestDigest(ctx, sys, "deleting", tagged.String())
			return err
		})
		if IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		canonical, err := reference.WithDigest(repo, att)
		if err != nil {
			return &ImageError{Op: "deleting", Ref: tagged.String(), Kind: KindInvalid, Err: err}
		}
		ref, err := docker.NewReference(canonical)
		if err != nil {
			return &ImageError{Op: "deleting", Ref: tagged.String(), Kind: KindInvalid, Err: err}
		}
		err = d.retry(ctx, func() error {
			return newImageError("deleting", tagged.String(), ref.DeleteImage(ctx, sys))
		})
		if err != nil && !IsNotFound(err) {
			return err
		}
	}
	return nil
}

// DeleteAll deletes every pull spec with at most workers deletes in flight (1 when workers < 1) and
// returns the errors by pull spec; the map is empty when all were deleted or already gone.
func (d Deleter) DeleteAll(ctx context.Context, sys *types.SystemContext, pullspecs []string, workers int) map[string]error {
	if workers < 1 {
		workers = 1
	}
	errs := make(map[string]error)
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range min(workers, len(pullspecs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ps := range work {
				if err := d.Delete(ctx, sys, ps); err != nil {
					mu.Lock()
					errs[ps] = err
					mu.Unlock()
				}
			}
		}()
	}
	for _, ps := range pullspecs {
		work <- ps
	}
	close(work)
	wg.Wait()
	return errs
}

// retry runs op until it succeeds, fails with a non-transient error, the attempts are used up or ctx is
// done. It returns op's last error.
func (d Deleter) retry(ctx context.Context, op func() error) error {
	attempts := d.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	wait := d.Backoff
	if wait <= 0 {
		wait = DefaultBackoff
	}
	maxWait := d.MaxBackoff
	if maxWait <= 0 {
		maxWait = DefaultMaxBackoff
	}
	sleep := d.Sleep
	if sleep == nil {
		sleep = sleepContext
	}
	var err error
	for i := range attempts {
		if err = op(); err == nil || !IsTransient(err) || i == attempts-1 {
			return err
		}
		if serr := sleep(ctx, wait); serr != nil {
			return err
		}
		wait = min(2*wait, maxWait)
	}
	return err
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func parseNamed(pullspec string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(pullspec)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", pullspec, err)
	}
	return named, nil
}

// manifestDigest reads the manifest at pullspec and returns its digest; errors are *ImageError for op.
func manifestDigest(ctx context.Context, sys *types.SystemContext, op, pullspec string) (digest.Digest, error) {
	ref, err := ParseReference(pullspec)
	if err != nil {
		return "", &ImageError{Op: op, Ref: pullspec, Kind: KindInvalid, Err: err}
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return "", newImageError(op, pullspec, err)
	}
	defer src.Close()
	raw, _, err := src.GetManifest(ctx, nil)
	if err != nil {
		return "", newImageError(op, pullspec, err)
	}
	d, err := manifest.Digest(raw)
	if err != nil {
		return "", &ImageError{Op: op, Ref: pullspec, Kind: KindOther, Err: fmt.Errorf("digesting manifest: %w", err)}
	}
	return d, nil
}
