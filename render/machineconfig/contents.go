package machineconfig

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"github.com/vincent-petithory/dataurl"
)

// Errors of DecodeContents, for errors.Is.
var (
	// ErrRemoteSource: the content is not inline (http, https, s3, …); builds and nodes here only use inline
	// (data URL) content.
	ErrRemoteSource = errors.New("remote sources are not supported")
	// ErrUnsupportedCompression: a compression other than gzip.
	ErrUnsupportedCompression = errors.New("unsupported compression")
	// ErrHashMismatch: the content does not match its verification hash.
	ErrHashMismatch = errors.New("content does not match its hash")
)

// ContentError is a DecodeContents failure and the resource field it concerns ("source", "compression" or
// "verification.hash"), so callers can name the whole field path.
type ContentError struct {
	Field string
	Err   error
}

func (e *ContentError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ContentError) Unwrap() error { return e.Err }

// DecodeContents returns the bytes an Ignition resource gives a file, as Ignition computes them: the data
// URL decoded, checked against its verification hash (sha256 or sha512, over the data as fetched) and
// gunzipped when compressed. No source is an empty file.
func DecodeContents(r ign3types.Resource) ([]byte, error) {
	if r.Source == nil || *r.Source == "" {
		return []byte{}, nil
	}
	src := *r.Source
	if !strings.HasPrefix(strings.ToLower(src), "data:") {
		scheme, _, _ := strings.Cut(src, ":")
		return nil, &ContentError{Field: "source", Err: fmt.Errorf("%w (%s)", ErrRemoteSource, scheme)}
	}
	du, err := dataurl.DecodeString(src)
	if err != nil {
		return nil, &ContentError{Field: "source", Err: fmt.Errorf("decoding data URL: %w", err)}
	}
	if err := verifyHash(du.Data, r.Verification); err != nil {
		return nil, &ContentError{Field: "verification.hash", Err: err}
	}
	compression := ""
	if r.Compression != nil {
		compression = *r.Compression
	}
	switch compression {
	case "":
		return du.Data, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(du.Data))
		if err != nil {
			return nil, &ContentError{Field: "source", Err: fmt.Errorf("decompressing gzip content: %w", err)}
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			return nil, &ContentError{Field: "source", Err: fmt.Errorf("decompressing gzip content: %w", err)}
		}
		return data, nil
	default:
		return nil, &ContentError{Field: "compression", Err: fmt.Errorf("%w %q (only gzip)", ErrUnsupportedCompression, compression)}
	}
}

// verifyHash checks data against a "sha512-<hex>" or "sha256-<hex>" hash.
func verifyHash(data []byte, v ign3types.Verification) error {
	if v.Hash == nil {
		return nil
	}
	function, sum, ok := strings.Cut(*v.Hash, "-")
	var h hash.Hash
	switch {
	case !ok:
		return fmt.Errorf("malformed hash %q (want <function>-<hex digest>)", *v.Hash)
	case function == "sha512":
		h = sha512.New()
	case function == "sha256":
		h = sha256.New()
	default:
		return fmt.Errorf("unsupported hash function %q (sha256 or sha512)", function)
	}
	h.Write(data)
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(sum) {
		return fmt.Errorf("%w (%s-%s)", ErrHashMismatch, function, got)
	}
	return nil
}
