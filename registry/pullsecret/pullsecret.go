// Package pullsecret reads registry credentials from Kubernetes Secrets: kubernetes.io/dockerconfigjson,
// legacy kubernetes.io/dockercfg (OpenShift's builder service-account secrets) and Opaque secrets holding
// either key. It normalizes them to the dockerconfigjson form containers/image reads ({"auths": {…}}) and
// validates them. Errors name the secret and key but never include its content.
package pullsecret

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ErrInvalid is wrapped by every validation error, for errors.Is.
var ErrInvalid = errors.New("invalid registry secret")

// Auth is one registry's credentials.
type Auth struct {
	Auth     string `json:"auth,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
}

// DockerConfigJSON is the content of a dockerconfigjson secret (and of containers-auth.json).
type DockerConfigJSON struct {
	Auths map[string]Auth `json:"auths"`
}

// FromSecret reads the credentials of s, whatever form it has, and validates every entry: each registry
// needs an "auth" (base64 of user:password) or a username and password.
func FromSecret(s *corev1.Secret) (*DockerConfigJSON, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: secret %s/%s: %s", ErrInvalid, s.Namespace, s.Name, fmt.Sprintf(format, args...))
	}
	var raw []byte
	var legacy bool
	switch {
	case len(s.Data[corev1.DockerConfigJsonKey]) > 0:
		raw = s.Data[corev1.DockerConfigJsonKey]
	case len(s.Data[corev1.DockerConfigKey]) > 0:
		raw, legacy = s.Data[corev1.DockerConfigKey], true
	default:
		return nil, invalid("no %q or %q key", corev1.DockerConfigJsonKey, corev1.DockerConfigKey)
	}
	cfg := &DockerConfigJSON{}
	if legacy {
		if err := json.Unmarshal(raw, &cfg.Auths); err != nil {
			return nil, invalid("key %q is not a JSON object of registries (%s)", corev1.DockerConfigKey, jsonErrorKind(err))
		}
	} else if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, invalid("key %q is not valid JSON (%s)", corev1.DockerConfigJsonKey, jsonErrorKind(err))
	}
	if len(cfg.Auths) == 0 {
		return nil, invalid("no registries in %q", keyOf(legacy))
	}
	for _, host := range sortedHosts(cfg.Auths) {
		a := cfg.Auths[host]
		if strings.TrimSpace(host) == "" {
			return nil, invalid("an entry has an empty registry name")
		}
		switch {
		case a.Auth != "":
			dec, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil || !strings.Contains(string(dec), ":") {
				return nil, invalid("registry %q: \"auth\" is not base64 of user:password", host)
			}
		case a.Username != "" && a.Password != "":
			a.Auth = base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))
			cfg.Auths[host] = a
		default:
			return nil, invalid("registry %q has neither \"auth\" nor username and password", host)
		}
	}
	return cfg, nil
}

// JSON encodes the credentials as dockerconfigjson.
func (c *DockerConfigJSON) JSON() []byte {
	raw, _ := json.Marshal(c) // a map of strings always encodes
	return raw
}

// Normalized returns a kubernetes.io/dockerconfigjson Secret named name in namespace holding s's
// credentials, for mounting into a build pod.
func Normalized(s *corev1.Secret, namespace, name string) (*corev1.Secret, error) {
	cfg, err := FromSecret(s)
	if err != nil {
		return nil, err
	}
	out := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: cfg.JSON()}}
	out.Namespace, out.Name = namespace, name
	return out, nil
}

func keyOf(legacy bool) string {
	if legacy {
		return corev1.DockerConfigKey
	}
	return corev1.DockerConfigJsonKey
}

func sortedHosts(m map[string]Auth) []string {
	out := make([]string, 0, len(m))
	for h := range m {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// jsonErrorKind describes a JSON error without quoting the input (which may hold credentials).
func jsonErrorKind(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("unexpected %s at byte %d", typ.Value, typ.Offset)
	default:
		return "cannot be decoded"
	}
}
