package registries

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestScopeNested(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		sub, super string
		want       bool
	}{
		{name: "different hosts", sub: "quay.io", super: "example.com", want: false},
		{name: "same host", sub: "quay.io", super: "quay.io", want: true},
		{name: "port is not a namespace", sub: "quay.io:443", super: "quay.io", want: false},
		{name: "different ports", sub: "quay.io:443", super: "quay.io:444", want: false},
		{name: "longer host name", sub: "quay.io.example.com", super: "quay.io", want: false},
		{name: "host name prefix", sub: "quay.io2", super: "quay.io", want: false},
		{name: "namespace", sub: "quay.io/ns1", super: "quay.io", want: true},
		{name: "deep namespace", sub: "quay.io/ns1/ns2/ns3", super: "quay.io/ns1", want: true},
		{name: "namespace name prefix", sub: "quay.io/ns10", super: "quay.io/ns1", want: false},
		{name: "wildcard matches a subdomain", sub: "foo.example.com", super: "*.example.com", want: true},
		{name: "wildcard matches a subdomain with port and path", sub: "foo.example.com:443/bar/baz", super: "*.example.com", want: true},
		{name: "wildcard matches a narrower wildcard", sub: "*.foo.example.com", super: "*.example.com", want: true},
		{name: "wildcard does not match the bare domain", sub: "example.com", super: "*.example.com", want: false},
		{name: "wildcard only matches host names", sub: "bar/example.foo", super: "*.foo", want: false},
		{name: "wildcard does not match a path with a port", sub: "example/bar.foo:400", super: "*.foo", want: false},
		{name: "wildcard of another domain", sub: "foo.registry.com", super: "*.example.com", want: false},
		{name: "not a wildcard", sub: "foo.example.com", super: "example.*.com", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, scopeNested(tc.sub, tc.super))
		})
	}
}

func TestValidScopeAndRepository(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		value          string
		wantScope      bool
		wantRepository bool
	}{
		{name: "host", value: "example.com", wantScope: true, wantRepository: true},
		{name: "host and port", value: "registry.local:5000", wantScope: true, wantRepository: true},
		{name: "single label", value: "localhost", wantScope: true, wantRepository: true},
		{name: "repository", value: "quay.io/openshift-release-dev/ocp-v4.0-art-dev", wantScope: true, wantRepository: true},
		{name: "path separators", value: "r.example/a_b/c__d/e---f/g.h", wantScope: true, wantRepository: true},
		{name: "uppercase host", value: "Registry.Example.com/ns", wantScope: true, wantRepository: true},
		{name: "wildcard", value: "*.example.com", wantScope: true, wantRepository: false},
		{name: "double wildcard", value: "**.example.com", wantScope: false, wantRepository: false},
		{name: "inner wildcard", value: "example.*.com", wantScope: false, wantRepository: false},
		{name: "wildcard with path", value: "*.example.com/foo", wantScope: false, wantRepository: false},
		{name: "wildcard with port", value: "*.example.com:5000", wantScope: false, wantRepository: false},
		{name: "wildcard without dot", value: "*example.com", wantScope: false, wantRepository: false},
		{name: "tag", value: "quay.io/ns/repo:latest", wantScope: false, wantRepository: false},
		{name: "digest", value: "quay.io/ns/repo@sha256:0123", wantScope: false, wantRepository: false},
		{name: "uppercase path", value: "quay.io/NS", wantScope: false, wantRepository: false},
		{name: "empty", value: "", wantScope: false, wantRepository: false},
		{name: "empty path component", value: "quay.io//ns", wantScope: false, wantRepository: false},
		{name: "trailing slash", value: "quay.io/", wantScope: false, wantRepository: false},
		{name: "label ending in a hyphen", value: "bad-.example", wantScope: false, wantRepository: false},
		{name: "empty port", value: "example.com:", wantScope: false, wantRepository: false},
		{name: "path component ending in a separator", value: "quay.io/ns.", wantScope: false, wantRepository: false},
		{name: "triple underscore", value: "quay.io/a___b", wantScope: false, wantRepository: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.wantScope, validScope(tc.value), "validScope")
			assert.Equal(t, tc.wantRepository, validRepository(tc.value), "validRepository")
		})
	}
}
