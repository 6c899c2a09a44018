package rollout

import (
	"fmt"
	"strings"
)

// MultipleCustomPoolsError says a node matches more than one custom pool. Such a node belongs to no pool and
// is left alone until its labels or the pools change.
type MultipleCustomPoolsError struct {
	Node  string
	Pools []string
}

func (e *MultipleCustomPoolsError) Error() string {
	return fmt.Sprintf("node %s belongs to %d custom pools (%s), cannot proceed with this node",
		e.Node, len(e.Pools), strings.Join(e.Pools, ", "))
}
