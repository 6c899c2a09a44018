package buildcmd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunMountVolumes: a kubelet-style projection (..data symlinks) is copied as plain files, and bad
// specs are refused.
func TestRunMountVolumes(t *testing.T) {
	src := t.TempDir()
	data := filepath.Join(src, "..2026_11_23")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "entitlement.pem"), []byte("cert"), 0o600))
	require.NoError(t, os.Symlink("..2026_11_23", filepath.Join(src, "..data")))
	require.NoError(t, os.Symlink("..data/entitlement.pem", filepath.Join(src, "entitlement.pem")))

	dst := t.TempDir()
	vols, err := runMountVolumes([]string{src + ":/etc/pki/entitlement"}, dst)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dst, "0") + ":/etc/pki/entitlement:ro"}, vols)
	entries, err := os.ReadDir(filepath.Join(dst, "0"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the key, no projection bookkeeping")
	st, err := os.Lstat(filepath.Join(dst, "0", "entitlement.pem"))
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular())
	got, err := os.ReadFile(filepath.Join(dst, "0", "entitlement.pem"))
	require.NoError(t, err)
	assert.Equal(t, "cert", string(got))

	for _, bad := range []string{"nocolon", src + ":relative", src + ":/a:/b", ":/etc/x"} {
		_, err := runMountVolumes([]string{bad}, t.TempDir())
		assert.Error(t, err, bad)
	}
}
