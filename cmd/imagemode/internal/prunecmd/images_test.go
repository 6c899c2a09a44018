package prunecmd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	mcfgv1 "github.com/openshift/api/machineconfiguration/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/imagemode/imagemode/registry/gc"
	"github.com/imagemode/imagemode/registry/gc/gctest"
)

// goldenItems is a fixed report: a retained build, a deletable build, a pending deletion kept by a node,
// an orphan tag.
func goldenItems() []gc.Item {
	return []gc.Item{
		{MachineOSConfig: "layered", Build: "layered-a", Source: gc.SourceBuild, Image: "reg:5000/os/layered@sha256:aaaa", Size: 3 << 20,
			InUseBy: []string{"MachineOSBuild/layered-a", "MachineOSConfig/layered"}, Action: gc.ActionKeep},
		{MachineOSConfig: "layered", Build: "layered-b", Source: gc.SourceBuild, Image: "reg:5000/os/layered@sha256:bbbb", Size: 1536,
			InUseBy: []string{}, Action: gc.ActionDelete},
		{MachineOSConfig: "layered", Build: "layered-old", Source: gc.SourceTombstone, Image: "reg:5000/os/layered@sha256:cccc", Size: 0,
			InUseBy: []string{"Node/worker-0"}, Action: gc.ActionKeep},
		{MachineOSConfig: "other", Build: "other-x", Source: gc.SourceRegistryTag, Image: "reg:5000/os/other@sha256:dddd", Size: 512,
			InUseBy: []string{}, Action: gc.ActionDelete},
	}
}

func TestFormatImagesGolden(t *testing.T) {
	dry := FormatImages(ImagesReport{DryRun: true, Images: goldenItems()})
	assert.Equal(t, `MACHINEOSCONFIG  BUILD                  IMAGE                            SIZE     IN USE BY                                         ACTION
layered          layered-a              reg:5000/os/layered@sha256:aaaa  3.0 MiB  MachineOSBuild/layered-a,MachineOSConfig/layered  keep
layered          layered-b              reg:5000/os/layered@sha256:bbbb  1.5 KiB  -                                                 would delete
layered          layered-old (deleted)  reg:5000/os/layered@sha256:cccc  -        Node/worker-0                                     keep
other            other-x (tag only)     reg:5000/os/other@sha256:dddd    512 B    -                                                 would delete
2 of 4 images would be deleted (2.0 KiB)
`, dry)

	done := goldenItems()
	done[1].Action = gc.ActionDeleted
	done[3].Action, done[3].Error = gc.ActionFailed, "deleting reg:5000/os/other@sha256:dddd: authentication required"
	assert.Equal(t, `MACHINEOSCONFIG  BUILD                  IMAGE                            SIZE     IN USE BY                                         ACTION
layered          layered-a              reg:5000/os/layered@sha256:aaaa  3.0 MiB  MachineOSBuild/layered-a,MachineOSConfig/layered  keep
layered          layered-b              reg:5000/os/layered@sha256:bbbb  1.5 KiB  -                                                 deleted
layered          layered-old (deleted)  reg:5000/os/layered@sha256:cccc  -        Node/worker-0                                     keep
other            other-x (tag only)     reg:5000/os/other@sha256:dddd    512 B    -                                                 failed: deleting reg:5000/os/other@sha256:dddd: authentication required
1 of 4 images deleted (1.5 KiB freed)
`, FormatImages(ImagesReport{Images: done}))
}

func TestImagesJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, writeJSON(&buf, ImagesReport{DryRun: true, Images: goldenItems()[1:2]}))
	assert.Equal(t, `{
    "dryRun": true,
    "bytesFreed": 0,
    "images": [
        {
            "machineOSConfig": "layered",
            "build": "layered-b",
            "source": "MachineOSBuild",
            "image": "reg:5000/os/layered@sha256:bbbb",
            "size": 1536,
            "inUseBy": [],
            "action": "delete"
        }
    ]
}
`, buf.String())
}

// TestPruneImages runs `prune images` against a real API server and a real TLS+htpasswd registry, with no
// collector running: the dry run lists every image with its reasons, --confirm deletes exactly the unused
// ones and what recorded them.
func TestPruneImages(t *testing.T) {
	e := gctest.Start(t)
	const mosc = "layered"
	e.CreateMOSC(t, mosc, "layered", nil) // default retention: current + 3
	builds := []string{"layered-a", "layered-b", "layered-c", "layered-d", "layered-e"}
	imgs := e.Push(t, builds...)
	e.SetCurrent(t, mosc, builds[0], imgs[0])
	now := time.Now()
	for i, n := range builds {
		e.CreateBuild(t, mosc, n, imgs[i], mcfgv1.MachineOSBuildSucceeded, now.Add(time.Duration(i)*time.Minute))
		e.CreateDigestConfigMap(t, n, imgs[i])
	}
	// layered-b carries the collector's finalizer: the command removes it after deleting the image.
	b := &mcfgv1.MachineOSBuild{}
	require.NoError(t, e.C.Get(e.Ctx, client.ObjectKey{Name: "layered-b"}, b))
	controllerutil.AddFinalizer(b, gc.FinalizerName)
	require.NoError(t, e.C.Update(e.Ctx, b))
	extra := e.Push(t, "layered-old", "layered-pinned", "layered-orphan", "unrelated")
	for i, n := range []string{"layered-old", "layered-pinned"} {
		require.NoError(t, e.C.Create(e.Ctx, gc.NewTombstone(gctest.Namespace,
			gc.Target{Image: extra[i], PushSecret: gctest.PushSecret, MachineOSConfig: mosc, MachineOSBuild: n}, nil, "")))
	}
	e.CreateNode(t, "worker-0", "worker", extra[1])

	want := map[string]struct{ action, source, inUse string }{
		"layered-a":      {gc.ActionKeep, gc.SourceBuild, "MachineOSBuild/layered-a,MachineOSConfig/layered"},
		"layered-b":      {gc.ActionDelete, gc.SourceBuild, ""},
		"layered-c":      {gc.ActionKeep, gc.SourceBuild, "MachineOSBuild/layered-c"},
		"layered-d":      {gc.ActionKeep, gc.SourceBuild, "MachineOSBuild/layered-d"},
		"layered-e":      {gc.ActionKeep, gc.SourceBuild, "MachineOSBuild/layered-e"},
		"layered-old":    {gc.ActionDelete, gc.SourceTombstone, ""},
		"layered-pinned": {gc.ActionKeep, gc.SourceTombstone, "Node/worker-0"},
		"layered-orphan": {gc.ActionDelete, gc.SourceRegistryTag, ""},
	}
	r := run(t, e.C, "images", "-o", "json")
	require.NoError(t, r.err, r.stderr)
	var report ImagesReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &report), r.stdout)
	assert.True(t, report.DryRun)
	assert.Empty(t, report.Warnings)
	got := map[string]struct{ action, source, inUse string }{}
	for _, it := range report.Images {
		got[it.Build] = struct{ action, source, inUse string }{it.Action, it.Source, strings.Join(it.InUseBy, ",")}
		assert.Positive(t, it.Size, it.Build)
		assert.Equal(t, mosc, it.MachineOSConfig)
	}
	assert.Equal(t, want, got)

	r = run(t, e.C, "images")
	require.NoError(t, r.err)
	assert.Equal(t, ImagesDryRunNotice+"\n", r.stderr)
	assert.Equal(t, 3, strings.Count(r.stdout, "would delete"), r.stdout)
	assert.Contains(t, r.stdout, "3 of 8 images would be deleted")
	for i := range imgs {
		assert.True(t, e.Exists(t, imgs[i]), "a dry run deletes nothing")
	}

	r = run(t, e.C, "images", "--confirm")
	require.NoError(t, r.err, r.stderr)
	t.Log("\n" + r.stdout)
	assert.Equal(t, 3, strings.Count(r.stdout, " deleted\n"), r.stdout)
	assert.Contains(t, r.stdout, "3 of 8 images deleted")
	deleted := map[string]bool{imgs[1]: true, extra[0]: true, extra[2]: true}
	for _, img := range append(append([]string{}, imgs...), extra...) {
		assert.Equal(t, !deleted[img], e.Exists(t, img), img)
	}
	assert.True(t, apierrors.IsNotFound(e.C.Get(e.Ctx, client.ObjectKey{Name: "layered-b"}, &mcfgv1.MachineOSBuild{})), "build b deleted")
	for name, wantGone := range map[string]bool{"digest-layered-b": true, "digest-layered-c": false,
		gc.TombstoneName(extra[0]): true, gc.TombstoneName(extra[1]): false} {
		err := e.C.Get(e.Ctx, client.ObjectKey{Namespace: gctest.Namespace, Name: name}, &corev1.ConfigMap{})
		assert.Equal(t, wantGone, apierrors.IsNotFound(err), name)
	}

	r = run(t, e.C, "images", "-o", "json")
	require.NoError(t, r.err)
	report = ImagesReport{}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &report))
	for _, it := range report.Images {
		assert.Equal(t, gc.ActionKeep, it.Action, it.Build)
	}
	assert.Len(t, report.Images, 5)
}
