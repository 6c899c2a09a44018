package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/require"

	"github.com/imagemode/imagemode/registry/localregistry"
	"github.com/imagemode/imagemode/testimages"
)

// seeder pushes many distinct images fast: it pushes the test base image once, then PUTs copies of its
// manifest that differ only in an annotation, so each copy has its own digest but shares the blobs.
type seeder struct {
	reg       *localregistry.Registry
	repo      string
	hc        *http.Client
	manifest  map[string]any
	mediaType string
}

func newSeeder(tb testing.TB, reg *localregistry.Registry, repo string) *seeder {
	tb.Helper()
	ctx := context.Background()
	_, err := testimages.Push(ctx, reg.SystemContext(), testimages.Options{}, reg.Ref(repo, ":base"))
	require.NoError(tb, err)
	pool, err := reg.CertPool()
	require.NoError(tb, err)
	s := &seeder{reg: reg, repo: repo, hc: &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 16,
	}}}
	tb.Cleanup(s.hc.CloseIdleConnections)
	raw, mediaType := s.get(tb, "base")
	require.NoError(tb, json.Unmarshal(raw, &s.manifest))
	s.mediaType = mediaType
	return s
}

func (s *seeder) request(ctx context.Context, method, ref string, body []byte) (*http.Request, error) {
	url := fmt.Sprintf("https://%s/v2/%s/manifests/%s", s.reg.Host, s.repo, ref)
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(s.reg.Username, s.reg.Password)
	return req, nil
}

func (s *seeder) get(tb testing.TB, tag string) ([]byte, string) {
	tb.Helper()
	req, err := s.request(context.Background(), http.MethodGet, tag, nil)
	require.NoError(tb, err)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := s.hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	require.Equal(tb, http.StatusOK, resp.StatusCode, string(raw))
	return raw, strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0])
}

// push pushes n distinct images tagged <prefix>-<i> and returns their digested pull specs in order.
func (s *seeder) push(tb testing.TB, prefix string, n int) []string {
	tb.Helper()
	out := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = s.pushOne(fmt.Sprintf("%s-%d", prefix, i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(tb, err)
	}
	return out
}

func (s *seeder) pushOne(tag string) (string, error) {
	m := make(map[string]any, len(s.manifest)+1)
	for k, v := range s.manifest {
		m[k] = v
	}
	m["annotations"] = map[string]string{"io.imagemode.test.variant": tag}
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	req, err := s.request(context.Background(), http.MethodPut, tag, raw)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", s.mediaType)
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("pushing manifest %s: %w", tag, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("pushing manifest %s: %s: %s", tag, resp.Status, body)
	}
	return s.reg.Ref(s.repo, "@"+digest.FromBytes(raw).String()), nil
}
