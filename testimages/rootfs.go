package testimages

import (
	"archive/tar"
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"
)

//go:embed rootfs
var rootfsFS embed.FS

// BusyboxPath is where Debian's busybox-static package installs the static busybox binary.
const BusyboxPath = "/bin/busybox"

// KernelVersion is the version of the base image's stub kernel (/usr/lib/modules/<KernelVersion>/vmlinuz).
const KernelVersion = "5.14.0-570.imagemode.el9_6.x86_64"

// epoch is the modification time of every entry, so the same inputs give the same layer digest.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one file, directory or symlink of the rootfs.
type entry struct {
	name     string // relative, no leading slash
	typ      byte   // tar.TypeReg, tar.TypeDir, tar.TypeSymlink
	mode     int64
	data     []byte
	linkname string
}

// rootfsEntries assembles the rootfs: directory skeleton, busybox with its applet links, the embedded
// stand-ins and package set, and the os-release for version.
func rootfsEntries(busybox []byte, applets []string, version string) ([]entry, error) {
	m := map[string]entry{}
	add := func(e entry) { m[e.name] = e }
	for _, d := range []struct {
		name string
		mode int64
	}{
		{"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755}, {"usr/lib", 0o755}, {"usr/lib/systemd", 0o755},
		{"usr/lib/systemd/system", 0o755}, {"usr/share", 0o755}, {"usr/local", 0o755}, {"etc", 0o755},
		{"etc/systemd", 0o755}, {"etc/systemd/system", 0o755}, {"etc/machine-config-daemon", 0o755},
		{"var", 0o755}, {"var/home", 0o755}, {"var/home/core", 0o700}, {"var/lib", 0o755}, {"var/log", 0o755},
		{"var/tmp", 0o1777}, {"tmp", 0o1777}, {"run", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755},
		{"root", 0o700}, {"sysroot", 0o755},
	} {
		add(entry{name: d.name, typ: tar.TypeDir, mode: d.mode})
	}
	for link, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "home": "var/home"} {
		add(entry{name: link, typ: tar.TypeSymlink, mode: 0o777, linkname: target})
	}
	add(entry{name: "usr/bin/busybox", typ: tar.TypeReg, mode: 0o755, data: busybox})
	for _, a := range applets {
		name := appletPath(a)
		if name == "" || name == "usr/bin/busybox" {
			continue
		}
		add(entry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: "/usr/bin/busybox"})
	}
	err := fs.WalkDir(rootfsFS, "rootfs", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "rootfs" {
			return err
		}
		name := strings.TrimPrefix(p, "rootfs/")
		if d.IsDir() {
			if _, ok := m[name]; !ok {
				add(entry{name: name, typ: tar.TypeDir, mode: 0o755})
			}
			return nil
		}
		data, err := rootfsFS.ReadFile(p)
		if err != nil {
			return err
		}
		add(entry{name: name, typ: tar.TypeReg, mode: fileMode(name), data: data}) // stand-ins replace applets
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading embedded rootfs: %w", err)
	}
	osRelease := []byte(fmt.Sprintf(`NAME="Red Hat Enterprise Linux CoreOS"
ID="rhcos"
ID_LIKE="rhel fedora"
VERSION="%[1]s"
VERSION_ID="9.6"
VARIANT="CoreOS"
VARIANT_ID=coreos
OSTREE_VERSION='%[1]s'
PRETTY_NAME="imagemode test OS %[1]s (RHCOS-shaped busybox image)"
`, version))
	add(entry{name: "usr/lib/os-release", typ: tar.TypeReg, mode: 0o644, data: osRelease})
	add(entry{name: "etc/os-release", typ: tar.TypeSymlink, mode: 0o777, linkname: "../usr/lib/os-release"})
	// What an OSTree deployment needs besides os-release: a kernel and its initramfs under
	// /usr/lib/modules/<version>/ (stubs: nothing boots them; ostree copies them to /boot and names them in
	// the boot loader entry).
	kdir := "usr/lib/modules/" + KernelVersion
	for _, d := range []string{"usr/lib/modules", kdir} {
		add(entry{name: d, typ: tar.TypeDir, mode: 0o755})
	}
	add(entry{name: kdir + "/vmlinuz", typ: tar.TypeReg, mode: 0o755, data: []byte("imagemode stub kernel " + KernelVersion + "\n")})
	add(entry{name: kdir + "/initramfs.img", typ: tar.TypeReg, mode: 0o644, data: []byte("imagemode stub initramfs " + KernelVersion + "\n")})

	out := make([]entry, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// appletPath maps a `busybox --list-full` line to its merged-/usr location ("sbin/ip" → "usr/sbin/ip").
func appletPath(line string) string {
	line = strings.TrimSpace(line)
	switch {
	case line == "":
		return ""
	case strings.HasPrefix(line, "usr/"):
		return line
	case strings.HasPrefix(line, "bin/"), strings.HasPrefix(line, "sbin/"):
		return "usr/" + line
	default:
		return "usr/bin/" + path.Base(line)
	}
}

// fileMode gives embedded files their mode (embed.FS keeps none): programs in bin/sbin are executable.
func fileMode(name string) int64 {
	dir := path.Base(path.Dir(name))
	if dir == "bin" || dir == "sbin" {
		return 0o755
	}
	return 0o644
}

// writeTar writes entries as a tar stream with fixed ownership and timestamps.
func writeTar(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, ModTime: epoch, Linkname: e.linkname,
			Format: tar.FormatPAX}
		switch e.typ {
		case tar.TypeDir:
			hdr.Name += "/"
		case tar.TypeReg:
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing tar header %s: %w", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("writing %s: %w", e.name, err)
			}
		}
	}
	return tw.Close()
}

// hostBusybox reads the static busybox binary and its applet list from the machine.
func hostBusybox() ([]byte, []string, error) {
	data, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s (install Debian's busybox-static package): %w", BusyboxPath, err)
	}
	out, err := exec.Command(BusyboxPath, "--list-full").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("listing busybox applets: %w", err)
	}
	return data, strings.Split(string(bytes.TrimSpace(out)), "\n"), nil
}
