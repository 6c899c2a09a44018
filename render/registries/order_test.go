package registries

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestOrderMirrors(t *testing.T) {
	t.Parallel()
	const src = "src.example"
	tests := []struct {
		name  string
		lists [][]string
		want  []string
	}{
		{
			name:  "a single list keeps its order",
			lists: [][]string{{"z.example", "y.example", "x.example"}},
			want:  []string{"z.example", "y.example", "x.example"},
		},
		{
			name:  "(B, C) and (A, B) merge to (A, B, C)",
			lists: [][]string{{"b.example", "c.example"}, {"a.example", "b.example"}},
			want:  []string{"a.example", "b.example", "c.example"},
		},
		{
			name:  "overlapping lists keep both orders",
			lists: [][]string{{"local.example"}, {"local2.example", "r2.example", "r1.example"}, {"r1.example", "r0.example"}},
			want:  []string{"local.example", "local2.example", "r2.example", "r1.example", "r0.example"},
		},
		{
			name:  "unrelated lists interleave lexicographically",
			lists: [][]string{{"m3.example"}, {"m1.example"}, {"m2.example"}},
			want:  []string{"m1.example", "m2.example", "m3.example"},
		},
		{
			name:  "a two-way cycle starts at the smaller repository",
			lists: [][]string{{"b.example", "a.example"}, {"a.example", "b.example"}},
			want:  []string{"a.example", "b.example"},
		},
		{
			name:  "a cycle is entered only after what leads into it",
			lists: [][]string{{"z.example", "c.example", "b.example"}, {"b.example", "c.example"}},
			want:  []string{"z.example", "b.example", "c.example"},
		},
		{
			name:  "breaking a cycle does not break edges leaving it",
			lists: [][]string{{"y.example", "x.example"}, {"x.example", "y.example"}, {"x.example", "a.example"}},
			want:  []string{"x.example", "a.example", "y.example"},
		},
		{
			name:  "a three-way cycle",
			lists: [][]string{{"c.example", "a.example"}, {"a.example", "b.example"}, {"b.example", "c.example"}},
			want:  []string{"a.example", "b.example", "c.example"},
		},
		{
			name:  "the source is dropped when it ends up last",
			lists: [][]string{{"m.example", src}},
			want:  []string{"m.example"},
		},
		{
			name:  "the source stays where the lists put it before other mirrors",
			lists: [][]string{{"z.example", src, "y.example"}, {src, "y.example", "x.example"}},
			want:  []string{"z.example", src, "y.example", "x.example"},
		},
		{
			name:  "repeated mirrors in one list",
			lists: [][]string{{"a.example", "a.example", "b.example"}},
			want:  []string{"a.example", "b.example"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, orderMirrors(src, tc.lists))
			assert.Equal(t, tc.want, orderMirrors(src, reversed(tc.lists)), "the order of the lists must not matter")
		})
	}
}
