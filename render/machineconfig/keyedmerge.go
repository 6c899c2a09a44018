package machineconfig

// Ignition's merge (config/merge) re-walks and transcribes the whole accumulated config on every step, which
// makes merging a large pool quadratic and allocation-heavy. The merge here produces the same result for the
// big keyed lists — files, directories and links (one key space, by path) and systemd units (by name) — with
// one linear pass, following Ignition's own list rules:
//
//   - a parent entry whose key the child has in the same list is merged with it, in the parent's position;
//   - a parent entry whose key the child has in another list of the group is dropped;
//   - other parent entries are kept in order; child entries whose key is not in the parent's same list are
//     appended in the child's order;
//   - an empty result is nil. (Ignition sometimes returns an empty non-nil list instead, depending on which
//     struct-level shortcut it takes; both serialize the same, as the lists are omitempty.)
//
// Two entries with the same key are merged by the entry merges below, which apply Ignition's field rules;
// every other part of the config goes through ign3.Merge unchanged. The equivalence with a plain ign3.Merge is
// checked by a randomized test.

import (
	"reflect"

	ign3 "github.com/coreos/ignition/v2/config/v3_5"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"k8s.io/utils/ptr"
)

// Lists of the path key group, as Ignition's Storage declares them.
const (
	listDirectories = iota
	listFiles
	listLinks
)

// mergeIgnition merges child into parent like ign3.Merge, plus rule 3 of merge.go (compression never leaks).
// Neither input is modified.
func mergeIgnition(parent, child ign3types.Config) ign3types.Config {
	pDirs, pFiles, pLinks, pUnits := parent.Storage.Directories, parent.Storage.Files, parent.Storage.Links, parent.Systemd.Units
	cDirs, cLinks, cUnits := child.Storage.Directories, child.Storage.Links, child.Systemd.Units
	// Rule 3: a child file that does not say how it is compressed is explicitly uncompressed for the merge.
	cFiles := make([]ign3types.File, len(child.Storage.Files))
	copy(cFiles, child.Storage.Files)
	for i := range cFiles {
		if cFiles[i].Contents.Compression == nil {
			cFiles[i].Contents.Compression = ptr.To("")
		}
	}

	parent.Storage.Directories, parent.Storage.Files, parent.Storage.Links, parent.Systemd.Units = nil, nil, nil, nil
	child.Storage.Directories, child.Storage.Files, child.Storage.Links, child.Systemd.Units = nil, nil, nil, nil
	out := ign3.Merge(parent, child)

	childPaths := make(map[string]int, len(cDirs)+len(cFiles)+len(cLinks))
	for _, d := range cDirs {
		childPaths[d.Path] = listDirectories
	}
	for _, f := range cFiles {
		childPaths[f.Path] = listFiles
	}
	for _, l := range cLinks {
		childPaths[l.Path] = listLinks
	}
	out.Storage.Directories = mergeKeyed(pDirs, cDirs, listDirectories, childPaths, directoryKey, mergeDirectory)
	out.Storage.Files = mergeKeyed(pFiles, cFiles, listFiles, childPaths, fileKey, mergeFile)
	out.Storage.Links = mergeKeyed(pLinks, cLinks, listLinks, childPaths, linkKey, mergeLink)

	childUnits := make(map[string]int, len(cUnits))
	for _, u := range cUnits {
		childUnits[u.Name] = 0
	}
	out.Systemd.Units = mergeKeyed(pUnits, cUnits, 0, childUnits, unitKey, mergeUnit)

	for i := range out.Storage.Files {
		if c := out.Storage.Files[i].Contents.Compression; c != nil && *c == "" {
			out.Storage.Files[i].Contents.Compression = nil
		}
	}
	out.Ignition.Version = IgnitionVersion
	return out
}

// mergeKeyed merges one keyed list (list) of a key group; childKeys maps every key of the child's lists in
// the group to the list holding it.
func mergeKeyed[T any](parent, child []T, list int, childKeys map[string]int, key func(T) string, merge func(p, c T) T) []T {
	out := make([]T, 0, len(parent)+len(child))
	childByKey := make(map[string]T, len(child))
	for _, c := range child {
		childByKey[key(c)] = c
	}
	parentKeys := make(map[string]struct{}, len(parent))
	for _, p := range parent {
		k := key(p)
		parentKeys[k] = struct{}{}
		childList, inChild := childKeys[k]
		switch {
		case !inChild:
			out = append(out, p)
		case childList == list:
			out = append(out, merge(p, childByKey[k]))
		default:
			// The child has this key in another list of the group: that entry replaces this one.
		}
	}
	for _, c := range child {
		if _, ok := parentKeys[key(c)]; !ok {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func directoryKey(d ign3types.Directory) string { return d.Path }
func fileKey(f ign3types.File) string           { return f.Path }
func linkKey(l ign3types.Link) string           { return l.Path }
func unitKey(u ign3types.Unit) string           { return u.Name }

// The entry merges apply Ignition's field rules to two entries with the same key, without its reflection and
// transcript: a struct whose child side is zero keeps the parent's, one whose parent side is zero takes the
// child's, otherwise it merges field by field; set pointers of the child win; primitives are the child's;
// lists marked to ignore duplicates (a file's append) are concatenated; keyed lists (HTTP headers, drop-ins)
// merge by key as mergeKeyed does, keeping an empty-but-set result non-nil as Ignition does, and an HTTP
// header of the child without a value removes the parent's. TestEntryMergeFieldsCovered fails if Ignition's
// types gain a field these functions do not handle, and the randomized equivalence test checks the results.

func mergeFile(p, c ign3types.File) ign3types.File {
	return ign3types.File{
		Node: pick(p.Node, c.Node, mergeNode),
		FileEmbedded1: pick(p.FileEmbedded1, c.FileEmbedded1, func(p, c ign3types.FileEmbedded1) ign3types.FileEmbedded1 {
			return ign3types.FileEmbedded1{
				Append:   concat(p.Append, c.Append),
				Contents: pick(p.Contents, c.Contents, mergeResource),
				Mode:     orParent(p.Mode, c.Mode),
			}
		}),
	}
}

func mergeDirectory(p, c ign3types.Directory) ign3types.Directory {
	return ign3types.Directory{
		Node: pick(p.Node, c.Node, mergeNode),
		DirectoryEmbedded1: pick(p.DirectoryEmbedded1, c.DirectoryEmbedded1, func(p, c ign3types.DirectoryEmbedded1) ign3types.DirectoryEmbedded1 {
			return ign3types.DirectoryEmbedded1{Mode: orParent(p.Mode, c.Mode)}
		}),
	}
}

func mergeLink(p, c ign3types.Link) ign3types.Link {
	return ign3types.Link{
		Node: pick(p.Node, c.Node, mergeNode),
		LinkEmbedded1: pick(p.LinkEmbedded1, c.LinkEmbedded1, func(p, c ign3types.LinkEmbedded1) ign3types.LinkEmbedded1 {
			return ign3types.LinkEmbedded1{Hard: orParent(p.Hard, c.Hard), Target: orParent(p.Target, c.Target)}
		}),
	}
}

func mergeUnit(p, c ign3types.Unit) ign3types.Unit {
	return ign3types.Unit{
		Contents: orParent(p.Contents, c.Contents),
		Dropins:  mergeSubList(p.Dropins, c.Dropins, func(d ign3types.Dropin) string { return d.Name }, mergeDropin, nil),
		Enabled:  orParent(p.Enabled, c.Enabled),
		Mask:     orParent(p.Mask, c.Mask),
		Name:     c.Name,
	}
}

func mergeDropin(p, c ign3types.Dropin) ign3types.Dropin {
	return ign3types.Dropin{Contents: orParent(p.Contents, c.Contents), Name: c.Name}
}

func mergeNode(p, c ign3types.Node) ign3types.Node {
	return ign3types.Node{
		Group: pick(p.Group, c.Group, func(p, c ign3types.NodeGroup) ign3types.NodeGroup {
			return ign3types.NodeGroup{ID: orParent(p.ID, c.ID), Name: orParent(p.Name, c.Name)}
		}),
		Overwrite: orParent(p.Overwrite, c.Overwrite),
		Path:      c.Path,
		User: pick(p.User, c.User, func(p, c ign3types.NodeUser) ign3types.NodeUser {
			return ign3types.NodeUser{ID: orParent(p.ID, c.ID), Name: orParent(p.Name, c.Name)}
		}),
	}
}

func mergeResource(p, c ign3types.Resource) ign3types.Resource {
	return ign3types.Resource{
		Compression: orParent(p.Compression, c.Compression),
		HTTPHeaders: mergeSubList(p.HTTPHeaders, c.HTTPHeaders, func(h ign3types.HTTPHeader) string { return h.Name },
			func(p, c ign3types.HTTPHeader) ign3types.HTTPHeader {
				return ign3types.HTTPHeader{Name: c.Name, Value: orParent(p.Value, c.Value)}
			},
			func(c ign3types.HTTPHeader) bool { return c.Value == nil }),
		Source: orParent(p.Source, c.Source),
		Verification: pick(p.Verification, c.Verification, func(p, c ign3types.Verification) ign3types.Verification {
			return ign3types.Verification{Hash: orParent(p.Hash, c.Hash)}
		}),
	}
}

// pick applies Ignition's rule for a struct field.
func pick[T any](p, c T, merge func(p, c T) T) T {
	if reflect.ValueOf(c).IsZero() {
		return p
	}
	if reflect.ValueOf(p).IsZero() {
		return c
	}
	return merge(p, c)
}

// orParent returns the child's pointer when set, else the parent's.
func orParent[T any](p, c *T) *T {
	if c != nil {
		return c
	}
	return p
}

// concat appends the child's list to the parent's (lists that ignore duplicates).
func concat[T any](p, c []T) []T {
	if len(p)+len(c) == 0 {
		return nil
	}
	out := make([]T, 0, len(p)+len(c))
	return append(append(out, p...), c...)
}

// mergeSubList merges a keyed list inside an entry; drop reports a child entry that removes the parent's.
func mergeSubList[T any](p, c []T, key func(T) string, merge func(p, c T) T, drop func(T) bool) []T {
	if len(p)+len(c) == 0 {
		return nil
	}
	byKey := make(map[string]T, len(c))
	for _, x := range c {
		byKey[key(x)] = x
	}
	out := make([]T, 0, len(p)+len(c))
	parentKeys := make(map[string]struct{}, len(p))
	for _, x := range p {
		k := key(x)
		parentKeys[k] = struct{}{}
		child, ok := byKey[k]
		switch {
		case !ok:
			out = append(out, x)
		case drop != nil && drop(child):
		default:
			out = append(out, merge(x, child))
		}
	}
	for _, x := range c {
		if _, ok := parentKeys[key(x)]; !ok {
			out = append(out, x)
		}
	}
	return out
}
