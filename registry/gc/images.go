package gc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/types"
	corev1 "k8s.io/api/core/v1"
	ktypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/imagemode/imagemode/machineos/osbuild"
	"github.com/imagemode/imagemode/registry"
)

// Where an Item was found.
const (
	SourceBuild       = "MachineOSBuild"
	SourceTombstone   = "Tombstone"
	SourceRegistryTag = "RegistryTag"
)

// Actions of an Item: planned (Keep, Delete) and done (Deleted, AlreadyGone, Failed).
const (
	ActionKeep        = "keep"
	ActionDelete      = "delete"
	ActionDeleted     = "deleted"
	ActionAlreadyGone = "already-gone"
	ActionFailed      = "failed"
)

// RetainedField is the Field of the reason that keeps a build retention keeps.
const RetainedField = "retained (current build or newest successful ones)"

// Item is one image this project pushed, with what uses it and what `prune images` does with it.
type Item struct {
	MachineOSConfig string `json:"machineOSConfig"`
	// Build is the MachineOSBuild that pushed the image (it may be gone), or the tag of an image found
	// only in the registry.
	Build string `json:"build"`
	// Source says where the image was found: MachineOSBuild, Tombstone or RegistryTag.
	Source string `json:"source"`
	Image  string `json:"image"`
	// Size is the manifest-listed size (compressed layers and config), 0 when unknown.
	Size    int64    `json:"size"`
	InUseBy []string `json:"inUseBy"`
	Action  string   `json:"action"`
	Error   string   `json:"error,omitempty"`

	pushSecret string
	uid        ktypes.UID
}

// TagCandidate is an image found by its tag in a MachineOSConfig's repository.
type TagCandidate struct {
	MachineOSConfig, Tag, Image, PushSecret string
}

// Plan decides, without I/O, what happens to each image: the images of builds (kept while retention keeps
// the build or anything else uses the image), of tombstones and of registry tags (kept while anything uses
// them). keep is the default retention (the annotation overrides it). Items are sorted by
// MachineOSConfig, then build; an image appears once.
func Plan(inv registry.Inventory, tombstones []corev1.ConfigMap, tags []TagCandidate, keep int) []Item {
	retained := map[string]bool{}
	for _, m := range inv.MachineOSConfigs {
		kept, _, err := registry.SelectForRetention(inv.MachineOSBuilds, m, keep)
		if err != nil { // an invalid annotation: keep every build of it
			for _, b := range inv.MachineOSBuilds {
				if TargetOfBuild(b).MachineOSConfig == m.Name {
					retained[b.Name] = true
				}
			}
			continue
		}
		for _, n := range kept {
			retained[n] = true
		}
	}
	seen := map[string]bool{}
	var items []Item
	add := func(it Item, reasons []registry.Reason) {
		if seen[it.Image] {
			return
		}
		seen[it.Image] = true
		it.InUseBy = reasonNames(reasons)
		if it.InUseBy == nil {
			it.InUseBy = []string{}
		}
		it.Action = ActionDelete
		if len(reasons) > 0 {
			it.Action = ActionKeep
		}
		items = append(items, it)
	}
	for _, b := range inv.MachineOSBuilds {
		t := TargetOfBuild(b)
		if t.Image == "" {
			continue
		}
		bi := inv
		bi.ExcludeBuild = b.Name
		reasons := registry.InUse(t.Image, bi)
		if retained[b.Name] {
			reasons = append([]registry.Reason{{Kind: "MachineOSBuild", Name: b.Name, Field: RetainedField}}, reasons...)
		}
		add(Item{MachineOSConfig: t.MachineOSConfig, Build: b.Name, Source: SourceBuild, Image: t.Image,
			pushSecret: t.PushSecret, uid: b.UID}, reasons)
	}
	for i := range tombstones {
		t, err := TargetOfTombstone(&tombstones[i])
		if err != nil {
			continue
		}
		ti := inv
		ti.ImageBuild = t.MachineOSBuild
		for _, b := range inv.MachineOSBuilds {
			if b.Name == t.MachineOSBuild && !b.DeletionTimestamp.IsZero() {
				ti.ExcludeBuild = b.Name
			}
		}
		add(Item{MachineOSConfig: t.MachineOSConfig, Build: t.MachineOSBuild, Source: SourceTombstone, Image: t.Image,
			pushSecret: t.PushSecret}, registry.InUse(t.Image, ti))
	}
	for _, c := range tags {
		add(Item{MachineOSConfig: c.MachineOSConfig, Build: c.Tag, Source: SourceRegistryTag, Image: c.Image,
			pushSecret: c.PushSecret}, registry.InUse(c.Image, inv))
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].MachineOSConfig != items[j].MachineOSConfig {
			return items[i].MachineOSConfig < items[j].MachineOSConfig
		}
		return items[i].Build < items[j].Build
	})
	return items
}

// ListOptions configures ListImages and Execute.
type ListOptions struct {
	// Namespace holds push secrets, digest ConfigMaps and tombstones.
	Namespace string
	// ControllerConfigName names the ControllerConfig with the registry CAs and proxy.
	ControllerConfigName string
	// Keep is the default retention (registry.DefaultRetainBuilds when negative).
	Keep int
	// ScanRegistry also lists the tags <machineosconfig>-* of each MachineOSConfig's repository, to find
	// images whose build and tombstone are gone.
	ScanRegistry bool
	// Deleter deletes by digest (default retries).
	Deleter registry.Deleter
}

// sysContexts opens one SystemContext per push secret and closes them all.
type sysContexts struct {
	r     client.Reader
	opts  ListOptions
	open  map[string]*types.SystemContext
	errs  map[string]error
	clean []func()
}

func (s *sysContexts) get(ctx context.Context, secret string) (*types.SystemContext, error) {
	if sys, ok := s.open[secret]; ok {
		return sys, s.errs[secret]
	}
	sys, cleanup, err := registry.NewClusterSystemContext(ctx, s.r, registry.ClusterAuth{Namespace: s.opts.Namespace,
		SecretName: secret, ControllerConfigName: s.opts.ControllerConfigName})
	s.open[secret], s.errs[secret] = sys, err
	if cleanup != nil {
		s.clean = append(s.clean, cleanup)
	}
	return sys, err
}

func (s *sysContexts) close() {
	for _, f := range s.clean {
		f()
	}
}

// ListImages lists every image this project pushed, with what uses it and the planned action, and the
// manifest-listed size of each (from the registry). Registry failures while scanning tags or reading
// sizes are returned as warnings; the listing itself fails only when the cluster cannot be read.
func ListImages(ctx context.Context, c client.Reader, opts ListOptions) ([]Item, []string, error) {
	inv, err := LoadInventory(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	var cms corev1.ConfigMapList
	if err := c.List(ctx, &cms, client.InNamespace(opts.Namespace), client.MatchingLabels{TombstoneLabel: ""}); err != nil {
		return nil, nil, fmt.Errorf("listing tombstone configmaps in %s: %w", opts.Namespace, err)
	}
	sys := &sysContexts{r: c, opts: opts, open: map[string]*types.SystemContext{}, errs: map[string]error{}}
	defer sys.close()
	var warnings []string
	var tags []TagCandidate
	if opts.ScanRegistry {
		known := map[string]bool{}
		for _, b := range inv.MachineOSBuilds {
			known[b.Name] = true
		}
		for _, cm := range cms.Items {
			known[cm.Data[KeyMachineOSBuild]] = true
		}
		for _, m := range inv.MachineOSConfigs {
			found, err := scanTags(ctx, sys, m, known)
			if err != nil {
				warnings = append(warnings, err.Error())
			}
			tags = append(tags, found...)
		}
	}
	items := Plan(inv, cms.Items, tags, opts.Keep)
	for i := range items {
		s, err := sys.get(ctx, items[i].pushSecret)
		if err == nil {
			var info *registry.ImageInfo
			if info, err = registry.Inspect(ctx, s, items[i].Image); err == nil {
				items[i].Size = info.Size
			}
		}
		if err != nil && !registry.IsNotFound(err) {
			warnings = append(warnings, fmt.Sprintf("reading the size of %s: %v", items[i].Image, err))
		}
	}
	return items, warnings, nil
}

// scanTags lists the tags <mosc>-* of mosc's repository that no build or tombstone (known) accounts for,
// resolved to digests.
func scanTags(ctx context.Context, sys *sysContexts, mosc *mcfgv1.MachineOSConfig, known map[string]bool) ([]TagCandidate, error) {
	secret := mosc.Spec.RenderedImagePushSecret.Name
	named, err := reference.ParseNormalizedNamed(string(mosc.Spec.RenderedImagePushSpec))
	if err != nil {
		return nil, fmt.Errorf("machineosconfig %s: parsing spec.renderedImagePushSpec: %w", mosc.Name, err)
	}
	repo := reference.TrimNamed(named)
	s, err := sys.get(ctx, secret)
	if err != nil {
		return nil, fmt.Errorf("machineosconfig %s: %w", mosc.Name, err)
	}
	ref, err := docker.NewReference(reference.TagNameOnly(repo))
	if err != nil {
		return nil, fmt.Errorf("machineosconfig %s: %w", mosc.Name, err)
	}
	all, err := docker.GetRepositoryTags(ctx, s, ref)
	if err != nil {
		if registry.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing tags of %s for machineosconfig %s: %w", repo, mosc.Name, err)
	}
	var out []TagCandidate
	var errs []error
	for _, tag := range all {
		if !strings.HasPrefix(tag, mosc.Name+"-") || known[tag] {
			continue
		}
		img, err := registry.ResolveDigest(ctx, s, repo.String()+":"+tag)
		if err != nil {
			if !registry.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		out = append(out, TagCandidate{MachineOSConfig: mosc.Name, Tag: tag, Image: img, PushSecret: secret})
	}
	return out, errors.Join(errs...)
}

// Execute deletes the images of the Delete items by digest and what recorded them: a build's object (its
// FinalizerName finalizer removed, the image being gone), digest ConfigMap and tombstone, a tombstone. It
// sets each item's Action to Deleted, AlreadyGone or Failed (with Error) and returns the failures joined.
func Execute(ctx context.Context, c client.Client, items []Item, opts ListOptions) error {
	sys := &sysContexts{r: c, opts: opts, open: map[string]*types.SystemContext{}, errs: map[string]error{}}
	defer sys.close()
	rep := &reporter{Client: c, Namespace: opts.Namespace}
	var errs []error
	for i := range items {
		it := &items[i]
		if it.Action != ActionDelete {
			continue
		}
		err := executeOne(ctx, c, sys, rep, it, opts.Deleter)
		if err != nil {
			it.Action, it.Error = ActionFailed, err.Error()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func executeOne(ctx context.Context, c client.Client, sys *sysContexts, rep *reporter, it *Item, d registry.Deleter) error {
	s, err := sys.get(ctx, it.pushSecret)
	if err != nil {
		return fmt.Errorf("deleting %s: %w", it.Image, err)
	}
	exists, err := registry.Exists(ctx, s, it.Image)
	if err != nil {
		return err
	}
	if err := d.Delete(ctx, s, it.Image); err != nil {
		return err
	}
	it.Action = ActionDeleted
	if !exists {
		it.Action = ActionAlreadyGone
	}
	if it.Source == SourceBuild {
		b := &mcfgv1.MachineOSBuild{}
		b.Name, b.UID = it.Build, it.uid
		if err := deleteBuild(ctx, c, b); err != nil {
			return err
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(b), b); err == nil && b.UID == it.uid { // not a newer build of the same name
			if err := setFinalizer(ctx, c, b, false); err != nil {
				return err
			}
		}
		if err := rep.deleteConfigMap(ctx, osbuild.DigestCMName(it.Build)); err != nil {
			return err
		}
	}
	if it.Source != SourceRegistryTag {
		return rep.deleteConfigMap(ctx, TombstoneName(it.Image))
	}
	return nil
}
