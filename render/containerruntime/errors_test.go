package containerruntime

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestOffenders(t *testing.T) {
	errs := field.ErrorList{
		field.Invalid(field.NewPath("imagetagmirrorsets/t: spec").Child("imageTagMirrors").Index(0).Child("source"), "x", "bad"),
		field.Invalid(field.NewPath("releaseImage"), "X/Y", "bad pull spec"),
		field.Invalid(field.NewPath("imagedigestmirrorsets/b: spec").Child("imageDigestMirrors").Index(1), "x", "bad"),
		field.Forbidden(field.NewPath("images/cluster: spec").Child("registrySources", "allowedRegistries"), "only one"),
		field.Invalid(field.NewPath("imagedigestmirrorsets/a: spec").Child("imageDigestMirrors").Index(0), "x", "bad"),
		field.Invalid(field.NewPath("imagedigestmirrorsets/b: spec").Child("imageDigestMirrors").Index(0), "x", "bad"),
	}
	got := Offenders(errs)
	type row struct {
		resource, name string
		n              int
	}
	var rows []row
	for _, o := range got {
		rows = append(rows, row{o.Resource, o.Name, len(o.Errs)})
	}
	assert.Equal(t, []row{
		{"imagedigestmirrorsets", "a", 1},
		{"imagedigestmirrorsets", "b", 2},
		{"images", "cluster", 1},
		{"imagetagmirrorsets", "t", 1},
		{"", "", 1},
	}, rows)
	require.Len(t, got[1].Errs, 2)
	assert.Equal(t, "imagedigestmirrorsets/b: spec.imageDigestMirrors[1]", got[1].Errs[0].Field, "errors keep their order")
	assert.Equal(t, "releaseImage", got[4].Errs[0].Field)
	assert.Empty(t, Offenders(nil))
}

func TestTruncateNote(t *testing.T) {
	tests := []struct {
		name string
		in   string
		cut  bool
	}{
		{name: "short", in: "hello"},
		{name: "exactly the limit", in: strings.Repeat("a", maxNoteBytes)},
		{name: "too long", in: strings.Repeat("a", maxNoteBytes+1), cut: true},
		{name: "too long, multi-byte runes", in: strings.Repeat("é", maxNoteBytes), cut: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := truncateNote(tc.in)
			assert.LessOrEqual(t, len(got), maxNoteBytes)
			assert.True(t, utf8.ValidString(got))
			if !tc.cut {
				assert.Equal(t, tc.in, got)
				return
			}
			assert.True(t, strings.HasSuffix(got, "…"))
			assert.True(t, strings.HasPrefix(tc.in, strings.TrimSuffix(got, "…")))
		})
	}
}
