package daemon

import (
	"context"
	"io/fs"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplyConfigCoreUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// As on RHCOS, /home is a link to /var/home.
	r := setUpRoot(t, osFiles(hostFile{path: "/home", link: "var/home"}, hostFile{path: "/var/home/core", dir: true}))
	require.NoError(t, os.Chown(r.HostPath(ShadowPath), 0, 42))
	sd := newFakeSystemd()
	const hash = "$6$rounds=4096$salt$secrethash"
	v1 := newMC(t, "rendered-1", withCore(hash, "ssh-ed25519 AAAA1 a@x", " ", "ssh-rsa BBBB2 b@y"))
	require.NoError(t, ApplyConfig(ctx, r, sd, nil, v1, ApplyOptions{}))
	assert.Empty(t, sd.takeCalls())

	snap := snapshot(t, r)
	keys := "/var/home/core/.ssh/authorized_keys.d/ignition"
	assert.Equal(t, entry{kind: "file", content: "ssh-ed25519 AAAA1 a@x\nssh-rsa BBBB2 b@y\n", mode: 0o600, uid: 1000, gid: 1001}, snap[keys])
	for _, d := range []string{"/var/home/core/.ssh", "/var/home/core/.ssh/authorized_keys.d"} {
		assert.Equal(t, entry{kind: "dir", mode: fs.ModeDir | 0o700, uid: 1000, gid: 1001}, snap[d], d)
	}
	assert.Equal(t, entry{kind: "file", content: "root:*:19000:0:99999:7:::\ncore:" + hash + ":19000:0:99999:7:::\n", mode: 0o640, gid: 42}, snap[ShadowPath])
	assert.NotContains(t, snap, OrigDir+ShadowPath+OrigSuffix, "no copy of the password hashes is kept")
	assert.NotContains(t, snap, NoOrigDir+"/var/home/core/.ssh/authorized_keys.d/ignition"+NoOrigSuffix)

	// The core user gone from the config: keys removed, password locked.
	v2 := newMC(t, "rendered-2")
	require.NoError(t, ApplyConfig(ctx, r, sd, v1, v2, ApplyOptions{}))
	snap = snapshot(t, r)
	assert.NotContains(t, snap, keys)
	assert.Equal(t, entry{kind: "file", content: testShadow, mode: 0o640, gid: 42}, snap[ShadowPath])
}

func TestApplyConfigCoreUserErrors(t *testing.T) {
	t.Parallel()
	const hash = "$6$salt$do-not-leak"
	tests := []struct {
		name    string
		files   []hostFile
		wantMsg string
	}{
		{name: "no core user in passwd", files: []hostFile{{path: PasswdPath, content: "root:x:0:0::/root:/bin/sh\n"}}, wantMsg: `user "core" not found in /etc/passwd`},
		{
			name:    "no core user in shadow",
			files:   []hostFile{{path: PasswdPath, content: testPasswd}, {path: ShadowPath, content: "root:*:1::::::\n"}},
			wantMsg: `user "core" not found in /etc/shadow`,
		},
		{name: "no shadow", files: []hostFile{{path: PasswdPath, content: testPasswd}}, wantMsg: "reading /etc/shadow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := setUpRoot(t, tc.files)
			err := ApplyConfig(context.Background(), r, newFakeSystemd(), nil, newMC(t, "rendered-1", withCore(hash)), ApplyOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.NotContains(t, err.Error(), "do-not-leak")
		})
	}
}
