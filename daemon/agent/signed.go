package agent

import (
	"context"
	"fmt"

	"go.podman.io/image/v5/docker/reference"

	"github.com/imagemode/imagemode/daemon"
)

// rebase stages target. A layered image whose repository has trusted keys (a signed pool) is pulled only
// once the node's signature policy requires them: policy.json and the repository's registries.d file are
// written first, then `rpm-ostree rebase ostree-image-signed:docker://…` verifies the image against them
// before pulling anything. A refused image fails the update (the node goes Degraded saying why and stays on
// its image); the policy stays, as the node's trust.
func (a *Agent) rebase(ctx context.Context, osu daemon.OSUpdater, target, auth string, layered bool) error {
	if !layered || a.opts.TrustedKeys == nil {
		return osu.Rebase(ctx, target, auth)
	}
	named, err := reference.ParseNormalizedNamed(target)
	if err != nil {
		return fmt.Errorf("image %q: %w", target, err)
	}
	repo := named.Name()
	keys, err := a.opts.TrustedKeys.KeysFor(ctx, repo)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return osu.Rebase(ctx, target, auth)
	}
	if err := daemon.WriteSignaturePolicy(a.opts.Host.Root(), repo, keys); err != nil {
		return err
	}
	return osu.RebaseSigned(ctx, target, auth)
}
