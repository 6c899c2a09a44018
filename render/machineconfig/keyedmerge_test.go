package machineconfig

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	ign3 "github.com/coreos/ignition/v2/config/v3_5"
	ign3types "github.com/coreos/ignition/v2/config/v3_5/types"
	"k8s.io/utils/ptr"
)

// referenceMerge is the straightforward implementation: Ignition's merge of the whole configs, with the
// compression marker of rule 3. mergeIgnition must give exactly its result.
func referenceMerge(parent, child ign3types.Config) ign3types.Config {
	if len(child.Storage.Files) > 0 { // copying a nil list would make it non-nil, which Ignition treats as set
		files := make([]ign3types.File, len(child.Storage.Files))
		copy(files, child.Storage.Files)
		for i := range files {
			if files[i].Contents.Compression == nil {
				files[i].Contents.Compression = ptr.To("")
			}
		}
		child.Storage.Files = files
	}
	out := ign3.Merge(parent, child)
	for i := range out.Storage.Files {
		if c := out.Storage.Files[i].Contents.Compression; c != nil && *c == "" {
			out.Storage.Files[i].Contents.Compression = nil
		}
	}
	out.Ignition.Version = IgnitionVersion
	return out
}

// randomConfig makes a config whose files, directories and links share a small path space (so keys collide
// within and across lists), with units, drop-ins, users and a disk, and random optional fields.
func randomConfig(r *rand.Rand) ign3types.Config {
	cfg := EmptyIgnition()
	maybe := func() bool { return r.IntN(2) == 0 }
	used := map[string]bool{} // one path appears in one list only, as Ignition validation requires
	path := func() (string, bool) {
		p := fmt.Sprintf("/etc/p%d", r.IntN(12))
		if used[p] {
			return "", false
		}
		used[p] = true
		return p, true
	}
	for i := r.IntN(6); i > 0; i-- {
		p, ok := path()
		if !ok {
			continue
		}
		f := ign3types.File{Node: ign3types.Node{Path: p}}
		if maybe() {
			f.Contents.Source = ptr.To(fmt.Sprintf("data:,%d", r.IntN(100)))
		}
		switch r.IntN(3) {
		case 0:
			f.Contents.Compression = ptr.To("gzip")
		case 1:
			f.Contents.Compression = ptr.To("")
		}
		if maybe() {
			f.Mode = ptr.To(0o600 + r.IntN(2)*0o44)
		}
		if maybe() {
			f.Overwrite = ptr.To(maybe())
		}
		if r.IntN(4) == 0 {
			f.Append = []ign3types.Resource{{Source: ptr.To("data:,appended")}}
		}
		if r.IntN(4) == 0 {
			f.User = ign3types.NodeUser{Name: ptr.To("core")}
		}
		if r.IntN(4) == 0 {
			f.User.ID = ptr.To(r.IntN(3))
			f.Group = ign3types.NodeGroup{ID: ptr.To(r.IntN(3))}
		}
		if r.IntN(3) == 0 {
			f.Contents.Verification.Hash = ptr.To(fmt.Sprintf("sha512-%d", r.IntN(3)))
		}
		for j := r.IntN(3); j > 0; j-- {
			h := ign3types.HTTPHeader{Name: fmt.Sprintf("H%d", r.IntN(3))}
			if r.IntN(3) != 0 { // sometimes no value: removes the parent's header of that name
				h.Value = ptr.To(fmt.Sprint(r.IntN(5)))
			}
			dup := false
			for _, e := range f.Contents.HTTPHeaders {
				dup = dup || e.Name == h.Name
			}
			if !dup {
				f.Contents.HTTPHeaders = append(f.Contents.HTTPHeaders, h)
			}
		}
		if r.IntN(5) == 0 {
			f.Append = append(f.Append, ign3types.Resource{Source: ptr.To("data:,more"), Compression: ptr.To("gzip")})
		}
		cfg.Storage.Files = append(cfg.Storage.Files, f)
	}
	for i := r.IntN(3); i > 0; i-- {
		if p, ok := path(); ok {
			d := ign3types.Directory{Node: ign3types.Node{Path: p}}
			if maybe() {
				d.Mode = ptr.To(0o755)
			}
			if r.IntN(3) == 0 {
				d.Group = ign3types.NodeGroup{Name: ptr.To("wheel")}
				d.Overwrite = ptr.To(maybe())
			}
			cfg.Storage.Directories = append(cfg.Storage.Directories, d)
		}
	}
	for i := r.IntN(3); i > 0; i-- {
		if p, ok := path(); ok {
			l := ign3types.Link{Node: ign3types.Node{Path: p}}
			l.Target = ptr.To(fmt.Sprintf("/etc/t%d", r.IntN(3)))
			if maybe() {
				l.Hard = ptr.To(false)
			}
			cfg.Storage.Links = append(cfg.Storage.Links, l)
		}
	}
	unitUsed := map[string]bool{}
	for i := r.IntN(4); i > 0; i-- {
		name := fmt.Sprintf("u%d.service", r.IntN(5))
		if unitUsed[name] {
			continue
		}
		unitUsed[name] = true
		u := ign3types.Unit{Name: name}
		if maybe() {
			u.Enabled = ptr.To(maybe())
		}
		if maybe() {
			u.Contents = ptr.To(fmt.Sprintf("[Service]\nExecStart=/bin/%d", r.IntN(9)))
		}
		if r.IntN(3) == 0 {
			u.Mask = ptr.To(true)
		}
		for j := r.IntN(3); j > 0; j-- {
			d := ign3types.Dropin{Name: fmt.Sprintf("%d.conf", j)}
			if r.IntN(4) != 0 {
				d.Contents = ptr.To(fmt.Sprint(r.IntN(9)))
			}
			u.Dropins = append(u.Dropins, d)
		}
		cfg.Systemd.Units = append(cfg.Systemd.Units, u)
	}
	if maybe() {
		cfg.Passwd.Users = []ign3types.PasswdUser{{Name: "core", SSHAuthorizedKeys: []ign3types.SSHAuthorizedKey{ign3types.SSHAuthorizedKey(fmt.Sprintf("k%d", r.IntN(3)))}}}
	}
	if r.IntN(5) == 0 {
		cfg.Storage.Disks = []ign3types.Disk{{Device: "/dev/sdb", WipeTable: ptr.To(maybe())}}
	}
	return cfg
}

// TestKeyedMergeEqualsIgnitionMerge folds random chains of configs with both merges and requires identical
// results at every step.
func TestKeyedMergeEqualsIgnitionMerge(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 1500; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*7919))
		fast, ref := EmptyIgnition(), EmptyIgnition()
		for step := 0; step < 6; step++ {
			child := randomConfig(r)
			fast = mergeIgnition(fast, child)
			ref = referenceMerge(ref, child)
			if !reflect.DeepEqual(fast, normalizeEmpty(ref)) {
				t.Fatalf("seed %d step %d: merges differ:\n%s", seed, step, describeDiff(normalizeEmpty(ref), fast))
			}
		}
	}
}

// TestKeyedMergeCrossList checks the cross-list rule on a hand-made case: a child link replaces a parent file
// at the same path, and keeps the parent's other entries in order.
func TestKeyedMergeCrossList(t *testing.T) {
	t.Parallel()
	parent := EmptyIgnition()
	parent.Storage.Files = []ign3types.File{{Node: ign3types.Node{Path: "/etc/a"}}, {Node: ign3types.Node{Path: "/etc/b"}}, {Node: ign3types.Node{Path: "/etc/c"}}}
	child := EmptyIgnition()
	child.Storage.Links = []ign3types.Link{{Node: ign3types.Node{Path: "/etc/b"}, LinkEmbedded1: ign3types.LinkEmbedded1{Target: ptr.To("/etc/a")}}}
	got := mergeIgnition(parent, child)
	var files []string
	for _, f := range got.Storage.Files {
		files = append(files, f.Path)
	}
	if !reflect.DeepEqual(files, []string{"/etc/a", "/etc/c"}) || len(got.Storage.Links) != 1 || got.Storage.Links[0].Path != "/etc/b" {
		t.Fatalf("files %v links %+v", files, got.Storage.Links)
	}
	if len(parent.Storage.Files) != 3 {
		t.Fatal("parent modified")
	}
}

// normalizeEmpty makes the fast-merged lists' empty values nil, as mergeIgnition returns them (Ignition may
// return an empty non-nil list; both serialize the same). Only the lists mergeIgnition handles are touched.
func normalizeEmpty(c ign3types.Config) ign3types.Config {
	if len(c.Storage.Files) == 0 {
		c.Storage.Files = nil
	}
	if len(c.Storage.Directories) == 0 {
		c.Storage.Directories = nil
	}
	if len(c.Storage.Links) == 0 {
		c.Storage.Links = nil
	}
	if len(c.Systemd.Units) == 0 {
		c.Systemd.Units = nil
	}
	return c
}

// describeDiff names the top-level sections that differ, with both values in Go syntax.
func describeDiff(ref, fast ign3types.Config) string {
	out := ""
	rv, fv := reflect.ValueOf(ref), reflect.ValueOf(fast)
	for i := 0; i < rv.NumField(); i++ {
		for j := 0; rv.Field(i).Kind() == reflect.Struct && j < rv.Field(i).NumField(); j++ {
			a, b := rv.Field(i).Field(j).Interface(), fv.Field(i).Field(j).Interface()
			if !reflect.DeepEqual(a, b) {
				out += fmt.Sprintf("%s.%s:\n ref  %#v\n fast %#v\n", rv.Type().Field(i).Name, rv.Field(i).Type().Field(j).Name, a, b)
			}
		}
	}
	return out
}

// TestEntryMergeFieldsCovered fails when Ignition's entry types gain or lose a field: the entry merges in
// keyedmerge.go name every field, and would silently drop a new one.
func TestEntryMergeFieldsCovered(t *testing.T) {
	t.Parallel()
	want := []struct {
		v      any
		fields []string
	}{
		{ign3types.File{}, []string{"Node", "FileEmbedded1"}},
		{ign3types.FileEmbedded1{}, []string{"Append", "Contents", "Mode"}},
		{ign3types.Directory{}, []string{"Node", "DirectoryEmbedded1"}},
		{ign3types.DirectoryEmbedded1{}, []string{"Mode"}},
		{ign3types.Link{}, []string{"Node", "LinkEmbedded1"}},
		{ign3types.LinkEmbedded1{}, []string{"Hard", "Target"}},
		{ign3types.Node{}, []string{"Group", "Overwrite", "Path", "User"}},
		{ign3types.NodeGroup{}, []string{"ID", "Name"}},
		{ign3types.NodeUser{}, []string{"ID", "Name"}},
		{ign3types.Resource{}, []string{"Compression", "HTTPHeaders", "Source", "Verification"}},
		{ign3types.HTTPHeader{}, []string{"Name", "Value"}},
		{ign3types.Verification{}, []string{"Hash"}},
		{ign3types.Unit{}, []string{"Contents", "Dropins", "Enabled", "Mask", "Name"}},
		{ign3types.Dropin{}, []string{"Contents", "Name"}},
		{ign3types.Storage{}, []string{"Directories", "Disks", "Files", "Filesystems", "Links", "Luks", "Raid"}},
		{ign3types.Systemd{}, []string{"Units"}},
	}
	for _, w := range want {
		typ, fields := reflect.TypeOf(w.v), w.fields
		var got []string
		for i := 0; i < typ.NumField(); i++ {
			got = append(got, typ.Field(i).Name)
		}
		if !reflect.DeepEqual(got, fields) {
			t.Errorf("%s has fields %v; keyedmerge.go handles %v — update the entry merges", typ.Name(), got, fields)
		}
	}
}
