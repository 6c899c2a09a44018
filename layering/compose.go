package layering

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"go.podman.io/image/v5/docker/reference"

	"github.com/imagemode/imagemode/render/machineconfig"
)

// ConfigsStage names the stage that holds the base image with the rendered config; the user's Containerfile
// builds on it (`FROM configs AS final`).
const ConfigsStage = "configs"

// ContainerfileName is the Containerfile's name in the build context WriteDir writes.
const ContainerfileName = "Containerfile"

// Labels of the configs stage, which the final image inherits (the reference's strings).
const (
	LabelMachineConfig     = "machineconfig"
	LabelMachineConfigPool = "machineconfigpool"
	LabelBaseOSImage       = "baseOSContainerImage"
)

// Inputs are what a layered build is composed from.
type Inputs struct {
	// Rendered is the pool's rendered MachineConfig: its osImageURL is the base image and its config is
	// baked into it.
	Rendered *mcfgv1.MachineConfig
	// MachineOSConfig gives the pool's name and the user's Containerfile.
	MachineOSConfig *mcfgv1.MachineOSConfig
	// MachineOSBuild is the build, named in the Containerfile's header comment; may be nil.
	MachineOSBuild *mcfgv1.MachineOSBuild
	// Arch is the GOARCH the image is built for (amd64, arm64, ppc64le, s390x); runtime.GOARCH when empty.
	Arch string
	// BaseImage, when set, is the image the configs stage starts FROM instead of the rendered config's
	// osImageURL: that image pinned by digest (repository@sha256:…), so a tag that moves during a build, or a
	// layer cache holding the tag's previous image, cannot change what is built. The baseOSContainerImage
	// label keeps the osImageURL.
	BaseImage string
}

// BuildContext is what the builder consumes: a Containerfile and the files of its context.
type BuildContext struct {
	// Containerfile is the rendered Containerfile: the configs stage, then the user's Containerfile.
	Containerfile []byte
	// Files are the context's entries (ContainerfileName aside), sorted by path, parents first.
	Files []ContextFile
	// RegistriesConf, PolicyJSON and AdditionalCA are the rendered config's registries.conf, policy.json
	// and additional trust bundle (RegistriesConfPath, PolicyJSONPath, AdditionalCAPath), for the build's
	// own pulls; nil when the config has none. They are also baked into the image like every file.
	RegistriesConf, PolicyJSON, AdditionalCA []byte
}

// ContextFile is one entry of the build context.
type ContextFile struct {
	// Path is relative to the context directory, slash-separated.
	Path string
	// Mode holds the type (fs.ModeDir, fs.ModeSymlink, or none for a regular file) and permission bits.
	Mode fs.FileMode
	// UID and GID are the owner in the image, which the COPY carrying the entry sets (the context itself
	// is written with the writer's identity).
	UID, GID int
	// Content is a regular file's content.
	Content []byte
	// Target is a symlink's target.
	Target string
}

// Compose renders the Containerfile and build context of a layered build. The same inputs always give
// byte-identical results. An unusable Containerfile gives a *ContainerfileError.
func Compose(in Inputs) (*BuildContext, error) {
	if in.Rendered == nil || in.MachineOSConfig == nil {
		return nil, errors.New("composing layered build: the rendered MachineConfig and the MachineOSConfig are required")
	}
	mc, mosc := in.Rendered, in.MachineOSConfig
	arch := in.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	userField, userContent, err := userContainerfile(mosc, arch)
	if err != nil {
		return nil, err
	}
	if err := checkLayerable(&mc.Spec); err != nil {
		return nil, fmt.Errorf("composing layered build from machineconfig %q: %w", mc.Name, err)
	}
	cfg, err := machineconfig.IgnitionOf(&mc.Spec)
	if err != nil {
		return nil, fmt.Errorf("parsing spec.config of machineconfig %q: %w", mc.Name, err)
	}
	c, err := collectContent(mc, cfg)
	if err != nil {
		return nil, fmt.Errorf("composing layered build from machineconfig %q: %w", mc.Name, err)
	}
	copies, files, err := layout(c.entries)
	if err != nil {
		return nil, fmt.Errorf("composing layered build from machineconfig %q: %w", mc.Name, err)
	}
	stage, err := configsStage(in, copies, c)
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("\n# The Containerfile of MachineOSConfig %s (%s), verbatim.\n", mosc.Name, userField)
	if err := checkEscapeDirective(userContent, userField); err != nil {
		return nil, err
	}
	containerfile := stage + header + userContent
	if !strings.HasSuffix(containerfile, "\n") {
		containerfile += "\n"
	}
	if err := ValidateContainerfile([]byte(containerfile)); err != nil {
		offset := strings.Count(stage+header, "\n")
		return nil, fmt.Errorf("validating the Containerfile of MachineOSConfig %q: %w", mosc.Name, userContainerfileError(err, userField, offset))
	}
	return &BuildContext{
		Containerfile:  []byte(containerfile),
		Files:          files,
		RegistriesConf: c.files[RegistriesConfPath],
		PolicyJSON:     c.files[PolicyJSONPath],
		AdditionalCA:   c.files[AdditionalCAPath],
	}, nil
}

// containerfileArch maps a GOARCH to the MachineOSConfig's containerfileArch; "" for other architectures.
func containerfileArch(goarch string) mcfgv1.ContainerfileArch {
	switch goarch {
	case "amd64":
		return mcfgv1.Amd64
	case "arm64":
		return mcfgv1.Arm64
	case "ppc64le":
		return mcfgv1.Ppc
	case "s390x":
		return mcfgv1.S390
	}
	return ""
}

// userContainerfile picks the MachineOSConfig's Containerfile for arch, else its NoArch one, and returns
// its field path and content.
func userContainerfile(mosc *mcfgv1.MachineOSConfig, arch string) (string, string, error) {
	want := containerfileArch(arch)
	found := -1
	for i, cf := range mosc.Spec.Containerfile {
		a := cf.ContainerfileArch
		if a == "" {
			a = mcfgv1.NoArch
		}
		if want != "" && a == want {
			found = i
			break
		}
		if a == mcfgv1.NoArch && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return "", "", &ContainerfileError{Field: "spec.containerFile", Message: fmt.Sprintf(
			"MachineOSConfig %q has no Containerfile for architecture %s or NoArch", mosc.Name, arch)}
	}
	field := fmt.Sprintf("spec.containerFile[%d].content", found)
	content := mosc.Spec.Containerfile[found].Content
	if strings.TrimSpace(content) == "" {
		return "", "", &ContainerfileError{Field: field, Message: fmt.Sprintf("MachineOSConfig %q has an empty Containerfile", mosc.Name)}
	}
	return field, content, nil
}

// checkLayerable refuses what a layered build cannot do yet: extensions and other kernels need packages
// from the extensions image. Kernel arguments are not the image's business: the node applies them.
func checkLayerable(spec *mcfgv1.MachineConfigSpec) error {
	if len(spec.Extensions) > 0 {
		return fieldErrorf("spec.extensions", "extensions (%s) are not supported in layered builds yet", strings.Join(spec.Extensions, ", "))
	}
	if spec.KernelType != "" && spec.KernelType != machineconfig.KernelTypeDefault {
		return fieldErrorf("spec.kernelType", "kernel type %q is not supported in layered builds yet", spec.KernelType)
	}
	return nil
}

// configsStage renders the configs stage: the base image, the COPY steps, systemctl for the OS's units, and
// the labels.
func configsStage(in Inputs, copies []copyStep, c *content) (string, error) {
	mc, mosc := in.Rendered, in.MachineOSConfig
	base := mc.Spec.OSImageURL
	if base == "" {
		return "", fmt.Errorf("composing layered build from machineconfig %q: spec.osImageURL: a base OS image is required", mc.Name)
	}
	if _, err := reference.ParseNormalizedNamed(base); err != nil {
		return "", fmt.Errorf("composing layered build from machineconfig %q: spec.osImageURL: %q is not an image reference: %w", mc.Name, base, err)
	}
	from := base
	if in.BaseImage != "" {
		if _, err := reference.ParseNormalizedNamed(in.BaseImage); err != nil {
			return "", fmt.Errorf("composing layered build from machineconfig %q: base image %q is not an image reference: %w", mc.Name, in.BaseImage, err)
		}
		from = in.BaseImage
	}
	pool := mosc.Spec.MachineConfigPool.Name
	var b strings.Builder
	b.WriteString("# Rendered by imagemode")
	if in.MachineOSBuild != nil {
		fmt.Fprintf(&b, " for MachineOSBuild %s", in.MachineOSBuild.Name)
	}
	fmt.Fprintf(&b, ": pool %s, MachineConfig %s.\n", pool, mc.Name)
	b.WriteString("# Stage " + ConfigsStage + ": the base OS image with the rendered MachineConfig baked in.\n")
	fmt.Fprintf(&b, "FROM %s AS %s\n", from, ConfigsStage)
	for _, cp := range copies {
		fmt.Fprintf(&b, "COPY --chown=%d:%d %s/ %s\n", cp.uid, cp.gid, cp.src, cp.dest)
	}
	if len(c.enable) > 0 {
		b.WriteString("RUN systemctl enable " + shellWords(c.enable) + "\n")
	}
	if len(c.disable) > 0 {
		b.WriteString("RUN systemctl disable " + shellWords(c.disable) + "\n")
	}
	for _, l := range []struct{ key, value, field string }{
		{LabelMachineConfig, mc.Name, "metadata.name"},
		{LabelMachineConfigPool, pool, "spec.machineConfigPool.name"},
		{LabelBaseOSImage, base, "spec.osImageURL"},
	} {
		v, err := labelValue(l.value)
		if err != nil {
			return "", fmt.Errorf("composing layered build: %s: %w", l.field, err)
		}
		fmt.Fprintf(&b, "LABEL %s=%s\n", l.key, v)
	}
	return b.String(), nil
}

// shellWords single-quotes words (systemd unit names: no quote can occur) for a shell-form RUN.
func shellWords(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	return strings.Join(quoted, " ")
}

// labelValue double-quotes a label value, escaping what the Containerfile would interpret.
func labelValue(v string) (string, error) {
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return "", fmt.Errorf("%q contains control characters", v)
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(v) + `"`, nil
}
