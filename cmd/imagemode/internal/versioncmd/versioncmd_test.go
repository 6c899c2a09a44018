package versioncmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imagemode/imagemode/cmd/imagemode/internal/clients"
	"github.com/imagemode/imagemode/internal/controlplane"
	"github.com/imagemode/imagemode/internal/version"
)

func run(t *testing.T, newClients clients.Func, args ...string) string {
	t.Helper()
	cmd := NewCommand(newClients)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(append([]string{}, args...))
	require.NoError(t, cmd.ExecuteContext(context.Background()))
	return out.String()
}

func TestVersion(t *testing.T) {
	unreachable := func() (*clients.Clients, error) { return nil, errors.New("loading kubeconfig: no such file") }
	assert.Equal(t, "Client Version: "+version.Get()+"\nServer Version: unavailable (loading kubeconfig: no such file)\n", run(t, unreachable))
	assert.Equal(t, "Client Version: "+version.Get()+"\n", run(t, unreachable, "--client"))

	cp := controlplane.Start(t, controlplane.Options{})
	cs, err := clients.New(cp.Config)
	require.NoError(t, err)
	reachable := func() (*clients.Clients, error) { return cs, nil }
	info, err := cs.Kube.Discovery().ServerVersion()
	require.NoError(t, err)
	require.NotEmpty(t, info.GitVersion)
	assert.Equal(t, "Client Version: "+version.Get()+"\nServer Version: "+info.GitVersion+"\n", run(t, reachable))

	var v Versions
	require.NoError(t, json.Unmarshal([]byte(run(t, reachable, "-o", "json")), &v))
	assert.Equal(t, Versions{ClientVersion: version.Get(), ServerVersion: info.GitVersion}, v)
}
