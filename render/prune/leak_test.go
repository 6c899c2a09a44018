package prune

import (
	"testing"

	"github.com/imagemode/imagemode/internal/leakcheck"
)

// TestMain fails the package when a test leaves a goroutine running.
func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }
