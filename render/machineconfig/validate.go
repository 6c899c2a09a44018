package machineconfig

import (
	"fmt"
	"path"
	"strings"

	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/imagemode/imagemode/internal/wellknown"
)

// ExtensionPackages returns the packages an extension installs, and whether the extension is supported.
func ExtensionPackages(name string) ([]string, bool) {
	switch name {
	case "two-node-ha":
		return []string{"pacemaker", "pcs", "fence-agents-all"}, true
	case "ipsec":
		return []string{"NetworkManager-libreswan", "libreswan", "openvswitch3.5-ipsec"}, true
	case "usbguard":
		return []string{"usbguard"}, true
	case "kerberos":
		return []string{"krb5-workstation", "libkadm5"}, true
	case "kernel-devel":
		return []string{"kernel-devel", "kernel-headers"}, true
	case "sandboxed-containers":
		return []string{"kata-containers"}, true
	case "sysstat":
		return []string{"sysstat"}, true
	}
	return nil, false
}

// supportedExtensions lists the extension names, for messages.
const supportedExtensions = "ipsec, kerberos, kernel-devel, sandboxed-containers, sysstat, two-node-ha, usbguard"

// managedRoots are the host directories a MachineConfig may write under. On an ostree host /usr is read-only
// (except /usr/local, a link into /var) and everything else is the image's or the kernel's.
var managedRoots = [...]string{"/etc", "/var", "/usr/local", "/opt", "/home", "/root"}

// ManagedPath reports whether p is an absolute, clean path under a directory a node lets configs manage.
func ManagedPath(p string) bool {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return false
	}
	for _, root := range managedRoots {
		if strings.HasPrefix(p, root+"/") {
			return true
		}
	}
	return false
}

// ValidateMachineConfig checks one MachineConfig on its own: labels, kernelType, extensions, and its
// Ignition (parse errors, file modes with setuid/setgid/sticky bits, paths a node may not manage). Paths
// in the errors are field paths of the object (spec.config.storage.files[2].mode).
func ValidateMachineConfig(mc *mcfgv1.MachineConfig) field.ErrorList {
	return Parse(mc).Invalid
}

// validateSpec validates mc given its parsed Ignition (or the parse error).
func validateSpec(mc *mcfgv1.MachineConfig, cfg ign3types.Config, parseErr error) field.ErrorList {
	var errs field.ErrorList
	if len(mc.Labels) == 0 {
		errs = append(errs, field.Required(field.NewPath("metadata", "labels"),
			"a MachineConfig needs a role label ("+wellknown.RoleLabel+") to be selected by a pool"))
	}
	spec := field.NewPath("spec")
	switch mc.Spec.KernelType {
	case "", KernelTypeDefault, KernelTypeRealtime, KernelType64kPages:
	default:
		errs = append(errs, field.NotSupported(spec.Child("kernelType"), mc.Spec.KernelType,
			[]string{KernelTypeDefault, KernelTypeRealtime, KernelType64kPages}))
	}
	for i, e := range mc.Spec.Extensions {
		p := spec.Child("extensions").Index(i)
		if _, ok := ExtensionPackages(e); !ok {
			errs = append(errs, field.Invalid(p, e, "unsupported extension; supported: "+supportedExtensions))
		}
		if e == "kernel-devel" && (mc.Spec.KernelType == KernelTypeRealtime || mc.Spec.KernelType == KernelType64kPages) {
			errs = append(errs, field.Invalid(p, e, fmt.Sprintf("not supported with kernelType %q", mc.Spec.KernelType)))
		}
	}
	if parseErr != nil {
		return append(errs, field.Invalid(spec.Child("config"), "<ignition>", parseErr.Error()))
	}
	return append(errs, validateIgnition(cfg, spec.Child("config"))...)
}

// validateIgnition checks what Ignition itself accepts but a node must refuse.
func validateIgnition(cfg ign3types.Config, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	storage := p.Child("storage")
	for i, f := range cfg.Storage.Files {
		fp := storage.Child("files").Index(i)
		if !ManagedPath(f.Path) {
			errs = append(errs, field.Invalid(fp.Child("path"), f.Path, "must be an absolute, clean path under one of "+strings.Join(managedRoots[:], ", ")))
		}
		if f.Mode != nil && *f.Mode&^0o777 != 0 {
			errs = append(errs, modeError(fp.Child("mode"), *f.Mode, f.Path))
		}
	}
	for i, d := range cfg.Storage.Directories {
		dp := storage.Child("directories").Index(i)
		if !ManagedPath(d.Path) {
			errs = append(errs, field.Invalid(dp.Child("path"), d.Path, "must be an absolute, clean path under one of "+strings.Join(managedRoots[:], ", ")))
		}
		if d.Mode != nil && *d.Mode&^0o777 != 0 {
			errs = append(errs, modeError(dp.Child("mode"), *d.Mode, d.Path))
		}
	}
	for i, l := range cfg.Storage.Links {
		if !ManagedPath(l.Path) {
			errs = append(errs, field.Invalid(storage.Child("links").Index(i).Child("path"), l.Path,
				"must be an absolute, clean path under one of "+strings.Join(managedRoots[:], ", ")))
		}
	}
	return errs
}

// modeError refuses a mode with setuid, setgid or sticky bits, naming the path in the reference's words
// ("invalid mode 04755 for /etc/foo, cannot exceed 0777"; its helpers.go validateIgn3FileModes) after the
// field path.
func modeError(p *field.Path, mode int, path string) *field.Error {
	return field.Invalid(p, fmt.Sprintf("%#o", mode),
		fmt.Sprintf("invalid mode %#o for %s, cannot exceed %#o: only permission bits are allowed (no setuid, setgid or sticky bit)", mode, path, 0o777))
}
