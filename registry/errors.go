package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	"go.podman.io/image/v5/docker"
)

// Kind is the class of a registry error: what a caller should do about it.
type Kind string

// Error kinds.
const (
	// KindNotFound: the image (manifest, tag or repository) does not exist. A delete treats it as done.
	KindNotFound Kind = "NotFound"
	// KindAccessDenied: the registry refused the credentials or the operation (401, 403, UNAUTHORIZED,
	// DENIED). Retrying with the same credentials does not help.
	KindAccessDenied Kind = "AccessDenied"
	// KindTransient: the registry could not be reached or answered with a server error; retrying later may
	// succeed.
	KindTransient Kind = "Transient"
	// KindUntrusted: the registry's TLS certificate is not trusted with the CAs given.
	KindUntrusted Kind = "Untrusted"
	// KindInvalid: the request itself is wrong (an unparsable reference, a delete by tag).
	KindInvalid Kind = "Invalid"
	// KindOther: any other error.
	KindOther Kind = "Other"
)

// Reasons for conditions and events, one per Kind.
const (
	ReasonImageNotFound        = "ImageNotFound"
	ReasonImageAccessDenied    = "ImageAccessDenied"
	ReasonRegistryUnavailable  = "RegistryUnavailable"
	ReasonRegistryUntrusted    = "RegistryCertificateUntrusted"
	ReasonInvalidImageRequest  = "InvalidImageRequest"
	ReasonImageRegistryFailure = "ImageRegistryError"
)

// ErrTagReference is returned when a delete is asked for a reference without a digest: deleting by tag
// would remove whatever manifest the tag points at now, which is not necessarily the image that was
// checked for use. ResolveDigest turns a tag into a digested reference first.
var ErrTagReference = errors.New("reference has no digest; resolve the tag to a digest before deleting")

// ImageError is an error of a registry operation on one image, classified once.
type ImageError struct {
	// Op is the operation, as a gerund: "deleting", "inspecting", "resolving".
	Op string
	// Ref is the pull spec the operation was about.
	Ref string
	// Kind is the class of Err.
	Kind Kind
	// Err is the underlying error.
	Err error
}

// Error implements error. The operation and reference prefix the underlying message unless that message
// names the reference already (containers/image's delete errors do).
func (e *ImageError) Error() string {
	msg := e.Err.Error()
	if e.Ref != "" && strings.Contains(msg, e.Ref) {
		return msg
	}
	return fmt.Sprintf("%s %s: %s", e.Op, e.Ref, msg)
}

// Unwrap returns the underlying error.
func (e *ImageError) Unwrap() error { return e.Err }

// Reason returns the condition or event reason for the error's kind.
func (e *ImageError) Reason() string {
	switch e.Kind {
	case KindNotFound:
		return ReasonImageNotFound
	case KindAccessDenied:
		return ReasonImageAccessDenied
	case KindTransient:
		return ReasonRegistryUnavailable
	case KindUntrusted:
		return ReasonRegistryUntrusted
	case KindInvalid:
		return ReasonInvalidImageRequest
	default:
		return ReasonImageRegistryFailure
	}
}

// newImageError wraps err, classifying it; nil stays nil.
func newImageError(op, ref string, err error) error {
	if err == nil {
		return nil
	}
	return &ImageError{Op: op, Ref: ref, Kind: Classify(err), Err: err}
}

// KindOf returns the kind recorded in an *ImageError in err's chain, else Classify(err).
func KindOf(err error) Kind {
	var ie *ImageError
	if errors.As(err, &ie) {
		return ie.Kind
	}
	return Classify(err)
}

// IsNotFound reports whether err says the image does not exist.
func IsNotFound(err error) bool { return err != nil && KindOf(err) == KindNotFound }

// IsAccessDenied reports whether err says the registry refused the credentials or the operation.
func IsAccessDenied(err error) bool { return err != nil && KindOf(err) == KindAccessDenied }

// IsTransient reports whether err may go away when the operation is retried.
func IsTransient(err error) bool { return err != nil && KindOf(err) == KindTransient }

// maskedNotFound is the text containers/image returns, as a plain string error, when the GET before a
// DELETE answers 404.
const maskedNotFound = "Image may not exist or is not stored with a v2 Schema in a v2 registry"

// statusCodeText matches containers/image's rendering of an error response it could not parse
// (for example the empty body of a HEAD): `StatusCode: 404, ""`.
var statusCodeText = regexp.MustCompile(`StatusCode: (\d{3}),`)

// Classify sorts err into a Kind by the error types containers/image and the distribution error codes
// expose, and by the few messages it returns as plain strings. The order matters: not-found is checked
// first (Quay reports deleted tags with a 500), then access, then certificate trust, then transient.
func Classify(err error) Kind {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTagReference):
		return KindInvalid
	case isNotFound(err):
		return KindNotFound
	case isAccessDenied(err):
		return KindAccessDenied
	case isUntrusted(err):
		return KindUntrusted
	case isTransient(err):
		return KindTransient
	}
	return KindOther
}

// codeError is one distribution error code found in an error chain, with its message.
type codeError struct {
	code    string
	message string
	status  int
}

// codeErrors returns the distribution error codes in err's chain: errcode.Error values (a code with a
// message or detail), bare errcode.ErrorCode values (what errcode.Errors decodes a default message into)
// and the members of an errcode.Errors list.
func codeErrors(err error) []codeError {
	var out []codeError
	add := func(e error) {
		var coder errcode.ErrorCoder
		if !errors.As(e, &coder) {
			return
		}
		c := coder.ErrorCode()
		ce := codeError{code: c.String(), message: c.Message(), status: c.Descriptor().HTTPStatusCode}
		var full errcode.Error
		if errors.As(e, &full) {
			ce.message = full.Message
		}
		out = append(out, ce)
	}
	var errs errcode.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			add(e)
		}
		return out
	}
	add(err)
	return out
}

func httpStatus(err error) int {
	var se docker.UnexpectedHTTPStatusError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	var sep *docker.UnexpectedHTTPStatusError
	if errors.As(err, &sep) && sep != nil {
		return sep.StatusCode
	}
	if m := statusCodeText.FindStringSubmatch(err.Error()); m != nil {
		code, _ := strconv.Atoi(m[1])
		return code
	}
	return 0
}

func isNotFound(err error) bool {
	if strings.Contains(err.Error(), maskedNotFound) {
		return true
	}
	for _, e := range codeErrors(err) {
		msg := strings.ToLower(e.message)
		switch e.code {
		case "MANIFEST_UNKNOWN", "NAME_UNKNOWN":
			return true
		case "UNKNOWN":
			// registry.redhat.io says "Not Found", Harbor "... not found", Quay a 500 for deleted or
			// expired tags.
			if strings.Contains(msg, "not found") || strings.Contains(msg, "deleted") || strings.Contains(msg, "expired") {
				return true
			}
		}
	}
	return httpStatus(err) == http.StatusNotFound
}

func isAccessDenied(err error) bool {
	var creds docker.ErrUnauthorizedForCredentials
	if errors.As(err, &creds) {
		return true
	}
	var credsp *docker.ErrUnauthorizedForCredentials
	if errors.As(err, &credsp) && credsp != nil {
		return true
	}
	for _, e := range codeErrors(err) {
		switch e.code {
		case "UNAUTHORIZED", "DENIED":
			return true
		}
	}
	switch httpStatus(err) {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

func isUntrusted(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	var cv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) || errors.As(err, &cv)
}

func isTransient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, docker.ErrTooManyRequests) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range codeErrors(err) {
		switch e.code {
		case "UNAVAILABLE", "TOOMANYREQUESTS":
			return true
		}
		// UNKNOWN is the catch-all code (its descriptor says 500 whatever the response was).
		if e.status >= 500 && e.code != "UNKNOWN" {
			return true
		}
	}
	if code := httpStatus(err); code >= 500 || code == http.StatusTooManyRequests {
		return true
	}
	// Errors that reach us only as text (wrapped with %v somewhere on the way).
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset by peer", "i/o timeout", "TLS handshake timeout", "no route to host"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
