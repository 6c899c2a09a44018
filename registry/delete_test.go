package registry

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"
)

// fakeSleeper records the waits asked for and returns err from each (nil: the wait "elapsed").
type fakeSleeper struct {
	waits []time.Duration
	err   error
}

func (f *fakeSleeper) sleep(_ context.Context, d time.Duration) error {
	f.waits = append(f.waits, d)
	return f.err
}

func TestDeleterRetry(t *testing.T) {
	t.Parallel()
	transient := docker.UnexpectedHTTPStatusError{StatusCode: 503}
	denied := docker.UnexpectedHTTPStatusError{StatusCode: 403}
	tests := []struct {
		name       string
		deleter    Deleter
		results    []error // op's result per call; the last one repeats
		sleepErr   error
		wantCalls  int
		wantWaits  []time.Duration
		wantErrIs  error
		wantNilErr bool
	}{
		{
			name:       "success at once",
			results:    []error{nil},
			wantCalls:  1,
			wantNilErr: true,
		},
		{
			name:       "transient then success",
			results:    []error{transient, transient, nil},
			wantCalls:  3,
			wantWaits:  []time.Duration{DefaultBackoff, 2 * DefaultBackoff},
			wantNilErr: true,
		},
		{
			name:      "transient until attempts are used up, back-off capped",
			deleter:   Deleter{Attempts: 5, Backoff: time.Second, MaxBackoff: 3 * time.Second},
			results:   []error{transient},
			wantCalls: 5,
			wantWaits: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second},
			wantErrIs: transient,
		},
		{
			name:      "access denied is not retried",
			results:   []error{denied},
			wantCalls: 1,
			wantErrIs: denied,
		},
		{
			name:      "a cancelled wait stops retrying",
			results:   []error{transient},
			sleepErr:  context.Canceled,
			wantCalls: 1,
			wantWaits: []time.Duration{DefaultBackoff},
			wantErrIs: transient,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeSleeper{err: tc.sleepErr}
			d := tc.deleter
			d.Sleep = fs.sleep
			calls := 0
			err := d.retry(context.Background(), func() error {
				r := tc.results[min(calls, len(tc.results)-1)]
				calls++
				return r
			})
			assert.Equal(t, tc.wantCalls, calls, "calls")
			assert.Equal(t, tc.wantWaits, fs.waits, "waits")
			if tc.wantNilErr {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.wantErrIs)
			}
		})
	}
}

func TestDeleteRefusesTags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pullspec string
		wantIs   error
	}{
		{name: "tag", pullspec: "127.0.0.1:1/os/layered:v1", wantIs: ErrTagReference},
		{name: "bare repository", pullspec: "127.0.0.1:1/os/layered", wantIs: ErrTagReference},
		{name: "garbage", pullspec: "Not A Reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Delete(context.Background(), nil, tc.pullspec)
			require.Error(t, err)
			var ie *ImageError
			require.ErrorAs(t, err, &ie)
			assert.Equal(t, KindInvalid, ie.Kind)
			assert.Equal(t, ReasonInvalidImageRequest, ie.Reason())
			if tc.wantIs != nil {
				assert.ErrorIs(t, err, tc.wantIs)
			}
		})
	}
}

// TestDeleteRetriesUnreachableRegistry deletes from a port nobody listens on: every try is refused, so the
// delete is tried Attempts times and ends in a transient error.
func TestDeleteRetriesUnreachableRegistry(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	host := l.Addr().String()
	require.NoError(t, l.Close())

	fs := &fakeSleeper{}
	d := Deleter{Attempts: 3, Sleep: fs.sleep}
	sys := &types.SystemContext{RootForImplicitAbsolutePaths: t.TempDir()}
	err = d.Delete(context.Background(), sys, host+"/os/layered@"+dgA)
	require.Error(t, err)
	assert.True(t, IsTransient(err), "want transient, got %v", err)
	assert.Contains(t, err.Error(), "connection refused")
	assert.Equal(t, []time.Duration{DefaultBackoff, 2 * DefaultBackoff}, fs.waits)
	assert.False(t, errors.Is(err, ErrTagReference))
}
