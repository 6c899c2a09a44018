package secretscan

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestText(t *testing.T) {
	var m Markers
	m.Add("builder", "s3cret-marker")
	assert.Empty(t, m.Text("x", "nothing here"))
	got := m.Text("log", "a s3cret-marker b s3cret-marker")
	require.Len(t, got, 2)
	assert.Equal(t, "log: a <marker> b <marker>", got[0].String())
	assert.Len(t, m.Text("b64", base64.StdEncoding.EncodeToString([]byte("s3cret-marker"))), 1)
	assert.Len(t, m.Text("auth", `{"auth":"`+base64.StdEncoding.EncodeToString([]byte("builder:s3cret-marker"))+`"}`), 1)
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "pod", "volumes"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pod", "c.log"), []byte("pushing with m4rker"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pod", "volumes", "config.json"), []byte("m4rker"), 0o644))
	var m Markers
	m.Add("", "m4rker")
	got, err := m.Files(dir, func(p string) bool { return filepath.Ext(p) == ".log" })
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, filepath.Join(dir, "pod", "c.log"), got[0].Where)
	got, err = m.Files(filepath.Join(dir, "missing"), nil)
	require.NoError(t, err)
	assert.Empty(t, got)
}
