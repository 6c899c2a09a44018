package podrunner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func TestRewrite(t *testing.T) {
	c := &corev1.Container{VolumeMounts: []corev1.VolumeMount{
		{Name: "cache", MountPath: "/tmp/cache"},
		{Name: "cf", MountPath: "/tmp/containerfile"},
		{Name: "nested", MountPath: "/tmp/cache/inner"},
		{Name: "one-file", MountPath: "/etc/app.conf", SubPath: "app.conf"},
	}}
	m, err := newMountMap(c, "/run/p/volumes")
	require.NoError(t, err)
	tests := []struct{ name, in, want string }{
		{"flag value", "--containerfile=/tmp/containerfile/Containerfile", "--containerfile=/run/p/volumes/cf/Containerfile"},
		{"whole arg", "/tmp/cache", "/run/p/volumes/cache"},
		{"nested mount wins", "/tmp/cache/inner/x", "/run/p/volumes/nested/x"},
		{"prefix lookalike untouched", "/tmp/cachedir/x", "/tmp/cachedir/x"},
		{"not at a boundary", "x/tmp/cache", "x/tmp/cache"},
		{"list of paths", "PATHS=/tmp/cache:/tmp/containerfile", "PATHS=/run/p/volumes/cache:/run/p/volumes/cf"},
		{"subPath", "--config=/etc/app.conf", "--config=/run/p/volumes/one-file/app.conf"},
		{"unrelated", "--tag=127.0.0.1:5000/os:tag", "--tag=127.0.0.1:5000/os:tag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, m.rewrite(tc.in))
		})
	}
}

func TestCommandLine(t *testing.T) {
	programs := map[string]string{"imagemode-builder": "/opt/bin/imagemode-builder"}
	c := &corev1.Container{Name: "image-build", Command: []string{"imagemode-builder", "build"},
		Args:         []string{"--containerfile=/tmp/cf/Containerfile"},
		Env:          []corev1.EnvVar{{Name: "BUILDAH_ISOLATION", Value: "chroot"}, {Name: "STORE", Value: "/tmp/cf"}},
		VolumeMounts: []corev1.VolumeMount{{Name: "cf", MountPath: "/tmp/cf"}}}
	m, err := newMountMap(c, "/v")
	require.NoError(t, err)
	argv, env, err := commandLine(c, m, programs)
	require.NoError(t, err)
	assert.Equal(t, []string{"/opt/bin/imagemode-builder", "build", "--containerfile=/v/cf/Containerfile"}, argv)
	assert.Equal(t, []string{"BUILDAH_ISOLATION=chroot", "STORE=/v/cf"}, env)

	_, _, err = commandLine(&corev1.Container{Name: "x", Command: []string{"bash"}}, nil, programs)
	assert.ErrorContains(t, err, `program "bash" is not available`)
	_, _, err = commandLine(&corev1.Container{Name: "x"}, nil, programs)
	assert.ErrorContains(t, err, "has no command")
	_, _, err = commandLine(&corev1.Container{Name: "x", Command: []string{"imagemode-builder"},
		Env: []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{}}}}, nil, programs)
	assert.ErrorContains(t, err, "valueFrom")
}
