package testimages

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// PayloadDir is where a base image built with Options.PayloadMB carries its payload files.
const PayloadDir = "usr/share/imagemode-payload"

// payloadFiles is how many files the payload is split into.
const payloadFiles = 32

// payloadGeneration changes whenever the payload's content or layout changes, so cached layouts are rebuilt.
const payloadGeneration = "1"

// payloadLayer is a payload layer written to a blob file: its compressed digest and size, and its diffID.
type payloadLayer struct {
	digest digest.Digest
	size   int64
	diffID digest.Digest
}

// writePayloadLayer streams the payload layer (a directory of payloadFiles files holding mb MiB of
// ChaCha8 output from a fixed seed: incompressible, yet the same bytes every time) as a gzipped tar into
// blobsDir, named by its digest, without holding it in memory.
func writePayloadLayer(blobsDir string, mb int) (*payloadLayer, error) {
	f, err := os.CreateTemp(blobsDir, ".payload-")
	if err != nil {
		return nil, fmt.Errorf("creating payload layer: %w", err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	compressed := sha256.New()
	counted := &countingWriter{w: io.MultiWriter(f, compressed)}
	zw, err := gzip.NewWriterLevel(counted, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	uncompressed := sha256.New()
	if err := writePayloadTar(io.MultiWriter(zw, uncompressed), mb); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing payload layer: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing payload layer: %w", err)
	}
	l := &payloadLayer{
		digest: digest.NewDigestFromBytes(digest.SHA256, compressed.Sum(nil)),
		size:   counted.n,
		diffID: digest.NewDigestFromBytes(digest.SHA256, uncompressed.Sum(nil)),
	}
	if err := os.Rename(f.Name(), filepath.Join(blobsDir, l.digest.Encoded())); err != nil {
		return nil, fmt.Errorf("storing payload layer: %w", err)
	}
	return l, nil
}

// writePayloadTar writes the payload directory and its files, with the fixed ownership and timestamps of
// the base layer. The total is mb MiB, split evenly (the last file takes the remainder).
func writePayloadTar(w io.Writer, mb int) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: PayloadDir + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch,
		Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("writing payload directory: %w", err)
	}
	total := int64(mb) << 20
	per := total / payloadFiles
	var seed [32]byte
	copy(seed[:], "imagemode testimages payload "+payloadGeneration)
	buf := make([]byte, 1<<20)
	for i := 0; i < payloadFiles; i++ {
		size := per
		if i == payloadFiles-1 {
			size = total - per*(payloadFiles-1)
		}
		name := fmt.Sprintf("%s/blob-%02d", PayloadDir, i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: epoch,
			Format: tar.FormatPAX}); err != nil {
			return fmt.Errorf("writing payload header %s: %w", name, err)
		}
		binary.LittleEndian.PutUint32(seed[28:], uint32(i)) // each file its own stream
		rng := rand.NewChaCha8(seed)
		for left := size; left > 0; {
			chunk := buf[:min(left, int64(len(buf)))]
			if _, err := rng.Read(chunk); err != nil {
				return err
			}
			if _, err := tw.Write(chunk); err != nil {
				return fmt.Errorf("writing payload %s: %w", name, err)
			}
			left -= int64(len(chunk))
		}
	}
	return tw.Close()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
