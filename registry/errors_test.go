package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/docker/distribution/registry/api/errcode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/docker"
)

// bodyError decodes a registry error body (distribution's JSON) the way containers/image does and returns
// its first error, reworded as containers/image rewords it when the message is the code's default.
func bodyError(t *testing.T, body string) error {
	t.Helper()
	var errs errcode.Errors
	require.NoError(t, json.Unmarshal([]byte(body), &errs))
	require.NotEmpty(t, errs)
	e, ok := errs[0].(errcode.Error)
	if !ok {
		// A default message without detail decodes into a bare errcode.ErrorCode.
		return errs[0]
	}
	if e.Message == e.Code.Message() {
		return fmt.Errorf("%s%.0w", e.Message, e)
	}
	return e
}

func refused(port string) error {
	return fmt.Errorf("pinging container registry 127.0.0.1:%s: %w", port, &url.Error{
		Op: "Get", URL: "https://127.0.0.1:" + port + "/v2/",
		Err: &net.OpError{
			Op: "dial", Net: "tcp",
			Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5999},
			Err:  os.NewSyscallError("connect", syscall.ECONNREFUSED),
		},
	})
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	t.Parallel()
	const digestRef = "127.0.0.1:5443/os/layered@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	tests := []struct {
		name string
		err  func(t *testing.T) error
		// text, when set, is the exact message the constructed error must have (from the recipe).
		text string
		want Kind
	}{
		{
			name: "masked 404 of containers/image delete",
			err: func(*testing.T) error {
				return errors.New("Unable to delete " + digestRef + ". Image may not exist or is not stored with a v2 Schema in a v2 registry")
			},
			want: KindNotFound,
		},
		{
			name: "missing tag on inspect: MANIFEST_UNKNOWN with detail",
			err: func(t *testing.T) error {
				return fmt.Errorf("reading manifest nosuchtag in 127.0.0.1:5443/os/layered: %w",
					bodyError(t, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nosuchtag"}}]}`))
			},
			text: "reading manifest nosuchtag in 127.0.0.1:5443/os/layered: manifest unknown",
			want: KindNotFound,
		},
		{
			name: "missing digest or repository: MANIFEST_UNKNOWN",
			err: func(t *testing.T) error {
				return fmt.Errorf("reading manifest sha256:0000 in 127.0.0.1:5443/os/layered: %w",
					bodyError(t, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
			},
			want: KindNotFound,
		},
		{
			name: "NAME_UNKNOWN",
			err: func(t *testing.T) error {
				return bodyError(t, `{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}`)
			},
			want: KindNotFound,
		},
		{
			name: "registry.redhat.io UNKNOWN Not Found",
			err:  func(t *testing.T) error { return bodyError(t, `{"errors":[{"code":"UNKNOWN","message":"Not Found"}]}`) },
			want: KindNotFound,
		},
		{
			name: "Harbor UNKNOWN not found",
			err: func(t *testing.T) error {
				return bodyError(t, `{"errors":[{"code":"UNKNOWN","message":"artifact os/layered@sha256:0000 not found"}]}`)
			},
			want: KindNotFound,
		},
		{
			name: "Quay 500 UNKNOWN for a deleted or expired tag",
			err: func(t *testing.T) error {
				return bodyError(t, `{"errors":[{"code":"UNKNOWN","message":"Tag v1 was deleted or has expired. To pull, revive via time machine"}]}`)
			},
			want: KindNotFound,
		},
		{
			name: "unparsable 404 (HEAD without body)",
			err: func(*testing.T) error {
				return errors.New(`reading digest v1 in 127.0.0.1:5443/os/layered: StatusCode: 404, ""`)
			},
			want: KindNotFound,
		},
		{
			name: "GET /v2/ without auth: UNAUTHORIZED without detail decodes to a bare code",
			err: func(t *testing.T) error {
				return bodyError(t, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`)
			},
			text: "unauthorized",
			want: KindAccessDenied,
		},
		{
			name: "delete without or with bad credentials: UNAUTHORIZED",
			err: func(t *testing.T) error {
				return fmt.Errorf("deleting %s: %w", digestRef,
					bodyError(t, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"os/layered","Action":"pull"}]}]}`))
			},
			text: "deleting " + digestRef + ": authentication required",
			want: KindAccessDenied,
		},
		{
			name: "inspect without auth: UNAUTHORIZED",
			err: func(t *testing.T) error {
				return fmt.Errorf("reading manifest v1 in 127.0.0.1:5443/os/layered: %w",
					bodyError(t, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"os/layered","Action":"pull"}]}]}`))
			},
			text: "reading manifest v1 in 127.0.0.1:5443/os/layered: authentication required",
			want: KindAccessDenied,
		},
		{
			name: "Docker Hub DENIED",
			err: func(t *testing.T) error {
				return bodyError(t, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
			},
			want: KindAccessDenied,
		},
		{
			name: "unexpected HTTP status 401",
			err: func(*testing.T) error {
				return fmt.Errorf("deleting x: %w", docker.UnexpectedHTTPStatusError{StatusCode: 401})
			},
			want: KindAccessDenied,
		},
		{
			name: "unexpected HTTP status 403",
			err:  func(*testing.T) error { return docker.UnexpectedHTTPStatusError{StatusCode: 403} },
			want: KindAccessDenied,
		},
		{
			name: "unauthorized for credentials",
			err: func(*testing.T) error {
				return fmt.Errorf("logging in: %w", docker.ErrUnauthorizedForCredentials{Err: errors.New("invalid")})
			},
			want: KindAccessDenied,
		},
		{
			name: "registry down: connection refused",
			err:  func(*testing.T) error { return refused("5999") },
			text: `pinging container registry 127.0.0.1:5999: Get "https://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused`,
			want: KindTransient,
		},
		{
			name: "connection refused as text only",
			err: func(*testing.T) error {
				return errors.New(`pinging container registry 127.0.0.1:5999: Get "https://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused`)
			},
			want: KindTransient,
		},
		{
			name: "network timeout",
			err: func(*testing.T) error {
				return fmt.Errorf("pinging: %w", &url.Error{Op: "Get", URL: "https://r/v2/", Err: timeoutError{}})
			},
			want: KindTransient,
		},
		{
			name: "TLS handshake timeout as text",
			err: func(*testing.T) error {
				return errors.New(`pinging container registry r: Get "https://r/v2/": net/http: TLS handshake timeout`)
			},
			want: KindTransient,
		},
		{
			name: "503 service unavailable",
			err:  func(*testing.T) error { return docker.UnexpectedHTTPStatusError{StatusCode: 503} },
			want: KindTransient,
		},
		{
			name: "500 without a body",
			err: func(*testing.T) error {
				return fmt.Errorf("deleting x: %w", docker.UnexpectedHTTPStatusError{StatusCode: 500})
			},
			want: KindTransient,
		},
		{
			name: "too many requests",
			err:  func(*testing.T) error { return fmt.Errorf("reading manifest: %w", docker.ErrTooManyRequests) },
			want: KindTransient,
		},
		{
			name: "no CA: unknown authority",
			err: func(*testing.T) error {
				return fmt.Errorf("pinging container registry 127.0.0.1:5443: %w", &url.Error{
					Op: "Get", URL: "https://127.0.0.1:5443/v2/",
					Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}},
				})
			},
			want: KindUntrusted,
		},
		{
			name: "HTTP registry without the insecure flag",
			err: func(*testing.T) error {
				return errors.New(`pinging container registry 127.0.0.1:5000: Get "https://127.0.0.1:5000/v2/": http: server gave HTTP response to HTTPS client`)
			},
			want: KindOther,
		},
		{
			name: "delete by tag: DIGEST_INVALID",
			err: func(t *testing.T) error {
				return bodyError(t, `{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}`)
			},
			want: KindOther,
		},
		{
			name: "delete disabled: UNSUPPORTED",
			err: func(t *testing.T) error {
				return fmt.Errorf("deleting 127.0.0.1:5001/os/layered@sha256:0000: %w",
					bodyError(t, `{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}`))
			},
			text: "deleting 127.0.0.1:5001/os/layered@sha256:0000: unsupported",
			want: KindOther,
		},
		{
			name: "broken auth file",
			err: func(*testing.T) error {
				return errors.New(`getting username and password: reading JSON file "broken-auth.json": unmarshaling JSON at "broken-auth.json": invalid character 'b' looking for beginning of object key string`)
			},
			want: KindOther,
		},
		{
			name: "cancelled context is not transient",
			err:  func(*testing.T) error { return fmt.Errorf("pinging: %w", context.Canceled) },
			want: KindOther,
		},
		{
			name: "delete by tag refused",
			err: func(*testing.T) error {
				return &ImageError{Op: "deleting", Ref: "r/x:v1", Kind: KindInvalid, Err: ErrTagReference}
			},
			want: KindInvalid,
		},
		{
			name: "an ImageError's recorded kind wins",
			err: func(*testing.T) error {
				return fmt.Errorf("pruning: %w", &ImageError{Op: "deleting", Ref: "r/x@sha256:0", Kind: KindAccessDenied, Err: errors.New("boom")})
			},
			want: KindAccessDenied,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err(t)
			if tc.text != "" {
				require.EqualError(t, err, tc.text)
			}
			assert.Equal(t, tc.want, KindOf(err))
			assert.Equal(t, tc.want == KindNotFound, IsNotFound(err), "IsNotFound")
			assert.Equal(t, tc.want == KindAccessDenied, IsAccessDenied(err), "IsAccessDenied")
			assert.Equal(t, tc.want == KindTransient, IsTransient(err), "IsTransient")
		})
	}
}

func TestClassifyNil(t *testing.T) {
	t.Parallel()
	assert.False(t, IsNotFound(nil))
	assert.False(t, IsAccessDenied(nil))
	assert.False(t, IsTransient(nil))
	assert.Nil(t, newImageError("deleting", "x", nil))
}

func TestImageErrorReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind Kind
		want string
	}{
		{name: "not found", kind: KindNotFound, want: ReasonImageNotFound},
		{name: "access denied", kind: KindAccessDenied, want: ReasonImageAccessDenied},
		{name: "transient", kind: KindTransient, want: ReasonRegistryUnavailable},
		{name: "untrusted", kind: KindUntrusted, want: ReasonRegistryUntrusted},
		{name: "invalid", kind: KindInvalid, want: ReasonInvalidImageRequest},
		{name: "other", kind: KindOther, want: ReasonImageRegistryFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner := errors.New("boom")
			e := &ImageError{Op: "deleting", Ref: "r/x@sha256:0", Kind: tc.kind, Err: inner}
			assert.Equal(t, tc.want, e.Reason())
			assert.Equal(t, "deleting r/x@sha256:0: boom", e.Error())
			assert.ErrorIs(t, e, inner)
		})
	}
}
