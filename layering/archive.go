package layering

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// MaxArchiveSize bounds the uncompressed size of a build context archive ReadArchive accepts (the archive
// travels in a ConfigMap, at most 1 MiB compressed; this stops a decompression bomb, not a real config).
const MaxArchiveSize = 256 << 20

// Archive returns the context's Files (not the Containerfile, which travels on its own) as a gzipped tar,
// in the order of Files, with fixed timestamps and owners: the same context always gives the same bytes.
// The build service composes the context once and hands this archive to the build pod, which only unpacks
// it (ReadArchive) and writes it out (WriteDir).
func (b *BuildContext) Archive() ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range b.Files {
		h := &tar.Header{Name: f.Path, Mode: tarMode(f.Mode), Uid: f.UID, Gid: f.GID, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		switch {
		case f.Mode.IsDir():
			h.Typeflag, h.Name = tar.TypeDir, f.Path+"/"
		case f.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Target
		case f.Mode.IsRegular():
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Content))
		default:
			return nil, fmt.Errorf("archiving context entry %s: unsupported file type %v", f.Path, f.Mode.Type())
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("archiving context entry %s: %w", f.Path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Content); err != nil {
				return nil, fmt.Errorf("archiving context entry %s: %w", f.Path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadArchive reads an archive written by Archive back into context entries. It refuses what Archive never
// writes: paths that are absolute, unclean or climb out with "..", duplicate paths, other entry types, and
// archives larger than MaxArchiveSize uncompressed.
func ReadArchive(data []byte) ([]ContextFile, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading build context archive: %w", err)
	}
	tr := tar.NewReader(zr)
	var files []ContextFile
	seen := map[string]bool{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading build context archive: %w", err)
		}
		name := h.Name
		if h.Typeflag == tar.TypeDir && len(name) > 1 && name[len(name)-1] == '/' {
			name = name[:len(name)-1]
		}
		if !fs.ValidPath(name) || name == "." {
			return nil, fmt.Errorf("reading build context archive: entry %q: not a relative path inside the context", h.Name)
		}
		if seen[name] {
			return nil, fmt.Errorf("reading build context archive: entry %q appears twice", name)
		}
		seen[name] = true
		f := ContextFile{Path: name, UID: h.Uid, GID: h.Gid}
		perm := h.FileInfo().Mode() &^ fs.ModeType
		switch h.Typeflag {
		case tar.TypeDir:
			f.Mode = fs.ModeDir | perm
		case tar.TypeSymlink:
			f.Mode, f.Target = fs.ModeSymlink|perm, h.Linkname
		case tar.TypeReg:
			if total += h.Size; h.Size < 0 || total > MaxArchiveSize {
				return nil, fmt.Errorf("reading build context archive: larger than %d bytes", MaxArchiveSize)
			}
			f.Mode = perm
			if f.Content, err = io.ReadAll(io.LimitReader(tr, h.Size)); err != nil {
				return nil, fmt.Errorf("reading build context archive: entry %s: %w", name, err)
			}
		default:
			return nil, fmt.Errorf("reading build context archive: entry %s: unsupported type %q", name, h.Typeflag)
		}
		files = append(files, f)
	}
	return files, nil
}

// tarMode is a file mode in tar's encoding: permissions plus the setuid, setgid and sticky bits.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}
