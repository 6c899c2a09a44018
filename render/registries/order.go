package registries

import (
	"maps"
	"slices"

	configv1 "github.com/openshift/api/config/v1"
)

// mergedSet is the single mirror list one source gets from all the entries of one kind that configure it.
type mergedSet struct {
	source  string
	mirrors []string
	// neverContactSource is set when any entry for the source says NeverContactSource.
	neverContactSource bool
}

// mergeMirrorSets merges the entries of one kind per source, in source order. Entries whose mirrors only repeat
// their source are ignored. The mirror order of each source is orderMirrors' merge of the entries' lists.
func mergeMirrorSets(entries []mirrorEntry, kind mirrorKind) []mergedSet {
	lists := map[string][][]string{}
	never := map[string]bool{}
	for _, e := range entries {
		if e.kind != kind || !e.hasRealMirror() {
			continue
		}
		lists[e.source] = append(lists[e.source], e.mirrors)
		if e.policy == configv1.NeverContactSource {
			never[e.source] = true
		}
	}
	var out []mergedSet
	for _, source := range slices.Sorted(maps.Keys(lists)) {
		out = append(out, mergedSet{
			source:             source,
			mirrors:            orderMirrors(source, lists[source]),
			neverContactSource: never[source],
		})
	}
	return out
}

// orderMirrors merges several preference-ordered mirror lists of one source into one list that keeps every
// list's order where the lists agree: each list contributes the edges m[i]→m[i+1], plus last→source when the
// source itself is not listed (the source is tried after the mirrors). The graph is sorted topologically, ties
// going to the lexicographically smallest repository and cycles broken deterministically (see
// precedenceGraph.sorted). The source is dropped when it ends up last, because registries.conf tries it last
// anyway. E.g. (B, C) and (A, B) give (A, B, C).
func orderMirrors(source string, lists [][]string) []string {
	g := precedenceGraph{}
	for _, l := range lists {
		for _, m := range l {
			g.addNode(m)
		}
		for i := 0; i+1 < len(l); i++ {
			g.addEdge(l[i], l[i+1])
		}
		if len(l) > 0 && !slices.Contains(l, source) {
			g.addEdge(l[len(l)-1], source)
		}
	}
	order := g.sorted()
	if n := len(order); n > 0 && order[n-1] == source {
		order = order[:n-1]
	}
	return order
}

// precedenceGraph is a directed graph of "tried before" edges between repositories: node → its successors.
type precedenceGraph map[string]map[string]bool

func (g precedenceGraph) addNode(n string) {
	if g[n] == nil {
		g[n] = map[string]bool{}
	}
}

func (g precedenceGraph) addEdge(from, to string) {
	g.addNode(from)
	g.addNode(to)
	if from != to {
		g[from][to] = true
	}
}

// sorted returns every node once, each after all its predecessors where the graph allows it: repeatedly the
// lexicographically smallest node without pending predecessors. When only cycles remain, the smallest node of a
// cycle that nothing outside the cycle leads to goes next, which breaks that cycle and no other edge.
func (g precedenceGraph) sorted() []string {
	nodes := slices.Sorted(maps.Keys(g))
	pending := map[string]int{} // number of predecessors not yet emitted
	for _, n := range nodes {
		for s := range g[n] {
			pending[s]++
		}
	}
	done := map[string]bool{}
	out := make([]string, 0, len(nodes))
	for len(out) < len(nodes) {
		next, found := "", false
		for _, n := range nodes {
			if !done[n] && pending[n] == 0 {
				next, found = n, true
				break
			}
		}
		if !found {
			next = g.cycleBreaker(nodes, done)
		}
		done[next] = true
		out = append(out, next)
		for s := range g[next] {
			pending[s]--
		}
	}
	return out
}

// cycleBreaker returns the smallest remaining node all of whose remaining ancestors are also its descendants,
// i.e. a node of a cycle no other remaining node leads into. A finite graph always has one.
func (g precedenceGraph) cycleBreaker(nodes []string, done map[string]bool) string {
	reach := map[string]map[string]bool{}
	for _, n := range nodes {
		if !done[n] {
			reach[n] = g.reachable(n, done)
		}
	}
	for _, n := range nodes {
		if done[n] {
			continue
		}
		sourceOfCycle := true
		for m := range reach {
			if m != n && reach[m][n] && !reach[n][m] {
				sourceOfCycle = false
				break
			}
		}
		if sourceOfCycle {
			return n
		}
	}
	for _, n := range nodes { // not reached: kept so that sorted always terminates
		if !done[n] {
			return n
		}
	}
	return ""
}

// reachable returns the nodes reachable from n through nodes that are not done (n excluded unless on a cycle).
func (g precedenceGraph) reachable(n string, done map[string]bool) map[string]bool {
	seen := map[string]bool{}
	stack := []string{n}
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for s := range g[cur] {
			if !done[s] && !seen[s] {
				seen[s] = true
				stack = append(stack, s)
			}
		}
	}
	return seen
}
