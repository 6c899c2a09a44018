package machineos_test

import (
	"archive/tar"
	"context"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/types"

	"github.com/imagemode/imagemode/registry"
)

// imageFiles returns the regular files of the pushed image at pullspec (all layers applied in order,
// whiteouts honoured) whose paths start with one of prefixes, by path without the leading slash.
func imageFiles(ctx context.Context, t *testing.T, sys *types.SystemContext, pullspec string, prefixes ...string) map[string]string {
	t.Helper()
	ref, err := registry.ParseReference(pullspec)
	require.NoError(t, err)
	src, err := ref.NewImageSource(ctx, sys)
	require.NoError(t, err)
	defer src.Close()
	img, err := image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, nil))
	require.NoError(t, err)
	files := map[string]string{}
	wanted := func(p string) bool {
		for _, pre := range prefixes {
			if strings.HasPrefix(p, pre) {
				return true
			}
		}
		return false
	}
	for _, layer := range img.LayerInfos() {
		blob, _, err := src.GetBlob(ctx, layer, none.NoCache)
		require.NoError(t, err)
		r, _, err := compression.AutoDecompress(blob)
		require.NoError(t, err)
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			name := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
			dir, base := path.Split(name)
			if strings.HasPrefix(base, ".wh.") {
				gone := dir + strings.TrimPrefix(base, ".wh.")
				for p := range files {
					if p == gone || strings.HasPrefix(p, gone+"/") {
						delete(files, p)
					}
				}
				continue
			}
			if h.Typeflag == tar.TypeReg && wanted(name) {
				data, err := io.ReadAll(tr)
				require.NoError(t, err)
				files[name] = string(data)
			}
		}
		r.Close()
		blob.Close()
	}
	return files
}
