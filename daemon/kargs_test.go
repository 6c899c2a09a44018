package daemon

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitKernelArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{name: "empty", in: ""},
		{name: "only blanks", in: " \t\n "},
		{name: "one", in: "nosmt", want: []string{"nosmt"}},
		{name: "several with runs of blanks", in: "  a=1\tb  c=3\n", want: []string{"a=1", "b", "c=3"}},
		{name: "quoted value kept whole with its quotes", in: `foo="a b" bar`, want: []string{`foo="a b"`, "bar"}},
		{name: "quoted whole argument", in: `"x y"=1 z`, want: []string{`"x y"=1`, "z"}},
		{name: "empty quotes", in: `a="" b`, want: []string{`a=""`, "b"}},
		{name: "only quotes", in: `""`, want: []string{`""`}},
		{name: "quote closes mid-argument", in: `dyndbg="file x.c +p"rest next`, want: []string{`dyndbg="file x.c +p"rest`, "next"}},
		{name: "single quotes are ordinary", in: `a='x y'`, want: []string{`a='x`, `y'`}},
		{name: "unterminated quote", in: `foo="a b`, wantErr: ErrUnterminatedQuote},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := SplitKernelArgs(tc.in)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestKargsDelta(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		old, new          []string
		wantDel, wantAppd []string
	}{
		{name: "both empty"},
		{name: "equal", old: []string{"a", "b"}, new: []string{"a", "b"}},
		{name: "added at the end", old: []string{"a"}, new: []string{"a", "b"}, wantAppd: []string{"b"}},
		{name: "removed at the end", old: []string{"a", "b"}, new: []string{"a"}, wantDel: []string{"b"}},
		{name: "from nothing", new: []string{"a", "b"}, wantAppd: []string{"a", "b"}},
		{name: "to nothing", old: []string{"a", "b"}, wantDel: []string{"a", "b"}},
		{name: "changed in the middle keeps the prefix", old: []string{"a", "b", "c"}, new: []string{"a", "x", "c"}, wantDel: []string{"b", "c"}, wantAppd: []string{"x", "c"}},
		{name: "reordered", old: []string{"a", "b"}, new: []string{"b", "a"}, wantDel: []string{"a", "b"}, wantAppd: []string{"b", "a"}},
		{
			name: "deleted argument repeats a kept one: delete all, append all",
			old:  []string{"console=tty0", "x", "console=tty0"}, new: []string{"console=tty0", "x"},
			wantDel: []string{"console=tty0", "x", "console=tty0"}, wantAppd: []string{"console=tty0", "x"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			del, add := KargsDelta(tc.old, tc.new)
			assert.Equal(t, tc.wantDel, nilIfEmpty(del), "delete")
			assert.Equal(t, tc.wantAppd, nilIfEmpty(add), "append")
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestKargsArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		old, new []string
		want     []string
		wantErr  error
	}{
		{name: "no change", old: []string{"a b"}, new: []string{"a", "b"}},
		{
			name: "entries split, quotes kept",
			old:  []string{"nosmt"}, new: []string{`nosmt foo="a b"`, "bar"},
			want: []string{"kargs", `--append=foo="a b"`, "--append=bar"},
		},
		{
			name: "delete then append",
			old:  []string{"a=1 keep", "b"}, new: []string{"a=2 keep"},
			want: []string{"kargs", "--delete-if-present=a=1", "--delete-if-present=keep", "--delete-if-present=b", "--append=a=2", "--append=keep"},
		},
		{name: "bad new entry", new: []string{`x="`}, wantErr: ErrUnterminatedQuote},
		{name: "bad old entry", old: []string{`x="`}, wantErr: ErrUnterminatedQuote},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := KargsArgs(tc.old, tc.new)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
