package pullsecret

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func secret(key, content string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}, Data: map[string][]byte{key: []byte(content)}}
}

func TestFromSecret(t *testing.T) {
	t.Parallel()
	userPass := base64.StdEncoding.EncodeToString([]byte("builder:s3cret-value"))
	tests := []struct {
		name    string
		secret  *corev1.Secret
		want    map[string]string // host → auth
		wantErr string
	}{
		{name: "dockerconfigjson", secret: secret(corev1.DockerConfigJsonKey, `{"auths":{"quay.io":{"auth":"`+userPass+`"}}}`),
			want: map[string]string{"quay.io": userPass}},
		{name: "legacy dockercfg is normalized", secret: secret(corev1.DockerConfigKey, `{"image-registry.openshift-image-registry.svc:5000":{"auth":"`+userPass+`","email":"x@y"}}`),
			want: map[string]string{"image-registry.openshift-image-registry.svc:5000": userPass}},
		{name: "username and password become auth", secret: secret(corev1.DockerConfigJsonKey, `{"auths":{"r.io":{"username":"builder","password":"s3cret-value"}}}`),
			want: map[string]string{"r.io": userPass}},
		{name: "no key", secret: secret("other", "x"), wantErr: `secret ns/s: no ".dockerconfigjson" or ".dockercfg" key`},
		{name: "bad json", secret: secret(corev1.DockerConfigJsonKey, `{"auths": s3cret-value}`), wantErr: "is not valid JSON (syntax error at byte"},
		{name: "no registries", secret: secret(corev1.DockerConfigJsonKey, `{"auths":{}}`), wantErr: `no registries in ".dockerconfigjson"`},
		{name: "auth not user:password", secret: secret(corev1.DockerConfigJsonKey, `{"auths":{"r.io":{"auth":"`+base64.StdEncoding.EncodeToString([]byte("s3cret-value"))+`"}}}`),
			wantErr: `registry "r.io": "auth" is not base64 of user:password`},
		{name: "nothing usable", secret: secret(corev1.DockerConfigKey, `{"r.io":{"email":"a@b"}}`), wantErr: `registry "r.io" has neither`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromSecret(tc.secret)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.True(t, errors.Is(err, ErrInvalid))
				assert.False(t, strings.Contains(err.Error(), "s3cret-value"), "error must not leak the secret: %v", err)
				return
			}
			require.NoError(t, err)
			auths := map[string]string{}
			for h, a := range got.Auths {
				auths[h] = a.Auth
			}
			assert.Equal(t, tc.want, auths)
		})
	}
}

func TestNormalized(t *testing.T) {
	t.Parallel()
	in := secret(corev1.DockerConfigKey, `{"r.io":{"username":"u","password":"p"}}`)
	out, err := Normalized(in, "build-ns", "final-x")
	require.NoError(t, err)
	assert.Equal(t, corev1.SecretTypeDockerConfigJson, out.Type)
	assert.Equal(t, "build-ns", out.Namespace)
	assert.Equal(t, "final-x", out.Name)
	assert.JSONEq(t, `{"auths":{"r.io":{"auth":"dTpw","username":"u","password":"p"}}}`, string(out.Data[corev1.DockerConfigJsonKey]))
}
