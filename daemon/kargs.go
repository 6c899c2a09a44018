package daemon

import (
	"fmt"
	"slices"
	"strings"
)

// RPMOSTree is the rpm-ostree binary the daemon runs.
const RPMOSTree = "rpm-ostree"

// SplitKernelArgs splits a kernel command line fragment into arguments the way the kernel does: runs of
// spaces, tabs and newlines separate arguments, except inside double quotes, which are kept in the argument
// (`foo="a b" bar` is `foo="a b"` and `bar`). A quote left open is ErrUnterminatedQuote.
func SplitKernelArgs(s string) ([]string, error) {
	var (
		out     []string
		cur     strings.Builder
		inQuote bool
		inArg   bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			inArg = true
			cur.WriteRune(r)
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == '\r'):
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			inArg = true
			cur.WriteRune(r)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("splitting kernel arguments %q: %w", s, ErrUnterminatedQuote)
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out, nil
}

// ParseKernelArgs splits every entry of a MachineConfig's spec.kernelArguments (an entry may hold several
// arguments) into one list, in order.
func ParseKernelArgs(entries []string) ([]string, error) {
	var out []string
	for i, e := range entries {
		args, err := SplitKernelArgs(e)
		if err != nil {
			return nil, fmt.Errorf("spec.kernelArguments[%d]: %w", i, err)
		}
		out = append(out, args...)
	}
	return out, nil
}

// KargsDelta returns the arguments to delete and to append to move a node's config-managed kernel arguments
// from old to new (both already split). Arguments both share as a common prefix stay where they are; the
// rest of old is deleted and the rest of new appended, so the config's arguments keep their order. When a
// deleted argument also occurs in the kept prefix, deleting it could remove the kept one, so everything of
// old is deleted and everything of new appended (what the MCO always does). Equal lists give nothing.
func KargsDelta(old, new []string) (del, add []string) {
	k := 0
	for k < len(old) && k < len(new) && old[k] == new[k] {
		k++
	}
	for _, a := range old[k:] {
		if slices.Contains(old[:k], a) {
			k = 0
			break
		}
	}
	return slices.Clone(old[k:]), slices.Clone(new[k:])
}

// KargsArgs returns the rpm-ostree arguments (after the binary name) that move a node's kernel arguments
// from the old config's spec.kernelArguments to the new one's: `kargs --delete-if-present=<arg>…
// --append=<arg>…`. It returns nil when nothing changes.
func KargsArgs(oldEntries, newEntries []string) ([]string, error) {
	old, err := ParseKernelArgs(oldEntries)
	if err != nil {
		return nil, fmt.Errorf("parsing current kernel arguments: %w", err)
	}
	new, err := ParseKernelArgs(newEntries)
	if err != nil {
		return nil, fmt.Errorf("parsing new kernel arguments: %w", err)
	}
	del, add := KargsDelta(old, new)
	if len(del) == 0 && len(add) == 0 {
		return nil, nil
	}
	args := make([]string, 0, 1+len(del)+len(add))
	args = append(args, "kargs")
	for _, a := range del {
		args = append(args, "--delete-if-present="+a)
	}
	for _, a := range add {
		args = append(args, "--append="+a)
	}
	return args, nil
}
